import { tag } from '../dicom/dictionary.js';
import { INDEXED_SEQUENCES } from '../dicom/indexed-sequences.js';

/**
 * The attributes the query engine can match on and return: one table shared by QIDO-RS and
 * (later) C-FIND. Each names its DICOM keyword, tag, VR, the level of the index it lives at and
 * the column that holds it (qualified with the alias the engine gives that table: p patients,
 * st studies, se series, i instances).
 */

export type Level = 'patient' | 'study' | 'series' | 'instance';

export const LEVEL_RANK: Record<Level, number> = { patient: 0, study: 1, series: 2, instance: 3 };

/** How a query value for the attribute is parsed and matched (PS3.4 C.2.2.2). */
export type MatchKind =
  /** Single value, wildcard (case-sensitive), `\` list of values. */
  | 'string'
  /** As string, but case-insensitive on an upper-cased column; fuzzy matching when asked. */
  | 'pn'
  /** Single value or list of UIDs; no wildcards. */
  | 'uid'
  /** DA: single value or range. */
  | 'date'
  /** TM: single value or range. */
  | 'time'
  /** IS/US: single integer or `\` list. */
  | 'int'
  /** A `\`-joined multi-valued column matched as "contains one of" (ModalitiesInStudy). */
  | 'multi'
  /** Not in the index (constant or computed when answering): returned, never matched on. */
  | 'none'
  /** An indexed sequence (table sequence_items): matched through its item attributes. */
  | 'sequence';

export interface AttributeDef {
  keyword: string;
  /** Eight upper-case hex digits, as DICOM JSON names it. */
  tag: string;
  vr: string;
  level: Level;
  kind: MatchKind;
  /** Qualified column (alias.column); absent for constants and computed attributes. */
  column?: string;
  /** For PN: the upper-cased column to match on, or `upper` to match on upper(column). */
  normColumn?: string;
  /** A constant value (SpecificCharacterSet, InstanceAvailability). */
  constant?: string;
  /** For a sequence: the item attributes the index keeps (each kind 'string' or 'uid', no column). */
  items?: readonly AttributeDef[];
}

const defs: AttributeDef[] = [
  // Any level: constants and values computed when answering.
  { keyword: 'SpecificCharacterSet', tag: tag('SpecificCharacterSet'), vr: 'CS', level: 'patient', kind: 'none', constant: 'ISO_IR 192' },
  { keyword: 'InstanceAvailability', tag: tag('InstanceAvailability'), vr: 'CS', level: 'patient', kind: 'none', constant: 'ONLINE' },
  // Filled in by the caller (QIDO-RS knows its base URL; C-FIND has no such thing).
  { keyword: 'RetrieveURL', tag: tag('RetrieveURL'), vr: 'UR', level: 'patient', kind: 'none' },

  // Patient (patients p)
  {
    keyword: 'PatientName',
    tag: tag('PatientName'),
    vr: 'PN',
    level: 'patient',
    kind: 'pn',
    column: 'p.patient_name',
    normColumn: 'p.patient_name_norm',
  },
  { keyword: 'PatientID', tag: tag('PatientID'), vr: 'LO', level: 'patient', kind: 'string', column: 'p.patient_id' },
  {
    keyword: 'IssuerOfPatientID',
    tag: tag('IssuerOfPatientID'),
    vr: 'LO',
    level: 'patient',
    kind: 'string',
    column: 'p.issuer_of_patient_id',
  },
  { keyword: 'PatientBirthDate', tag: tag('PatientBirthDate'), vr: 'DA', level: 'patient', kind: 'date', column: 'p.patient_birth_date' },
  { keyword: 'PatientSex', tag: tag('PatientSex'), vr: 'CS', level: 'patient', kind: 'string', column: 'p.patient_sex' },

  // Study (studies st)
  { keyword: 'StudyInstanceUID', tag: tag('StudyInstanceUID'), vr: 'UI', level: 'study', kind: 'uid', column: 'st.study_instance_uid' },
  { keyword: 'StudyDate', tag: tag('StudyDate'), vr: 'DA', level: 'study', kind: 'date', column: 'st.study_date' },
  { keyword: 'StudyTime', tag: tag('StudyTime'), vr: 'TM', level: 'study', kind: 'time', column: 'st.study_time' },
  { keyword: 'AccessionNumber', tag: tag('AccessionNumber'), vr: 'SH', level: 'study', kind: 'string', column: 'st.accession_number' },
  {
    keyword: 'ModalitiesInStudy',
    tag: tag('ModalitiesInStudy'),
    vr: 'CS',
    level: 'study',
    kind: 'multi',
    column: 'st.modalities_in_study',
  },
  {
    keyword: 'ReferringPhysicianName',
    tag: tag('ReferringPhysicianName'),
    vr: 'PN',
    level: 'study',
    kind: 'pn',
    column: 'st.referring_physician_name',
    normColumn: 'upper',
  },
  { keyword: 'StudyDescription', tag: tag('StudyDescription'), vr: 'LO', level: 'study', kind: 'string', column: 'st.study_description' },
  { keyword: 'StudyID', tag: tag('StudyID'), vr: 'SH', level: 'study', kind: 'string', column: 'st.study_id' },
  // SOP Common, but one study's instances share it; kept per study (migration 017).
  {
    keyword: 'TimezoneOffsetFromUTC',
    tag: tag('TimezoneOffsetFromUTC'),
    vr: 'SH',
    level: 'study',
    kind: 'string',
    column: 'st.timezone_offset_from_utc',
  },
  {
    keyword: 'NumberOfStudyRelatedSeries',
    tag: tag('NumberOfStudyRelatedSeries'),
    vr: 'IS',
    level: 'study',
    kind: 'int',
    column: 'st.num_series',
  },
  {
    keyword: 'NumberOfStudyRelatedInstances',
    tag: tag('NumberOfStudyRelatedInstances'),
    vr: 'IS',
    level: 'study',
    kind: 'int',
    column: 'st.num_instances',
  },

  // Series (series se)
  { keyword: 'SeriesInstanceUID', tag: tag('SeriesInstanceUID'), vr: 'UI', level: 'series', kind: 'uid', column: 'se.series_instance_uid' },
  { keyword: 'Modality', tag: tag('Modality'), vr: 'CS', level: 'series', kind: 'string', column: 'se.modality' },
  {
    keyword: 'SeriesDescription',
    tag: tag('SeriesDescription'),
    vr: 'LO',
    level: 'series',
    kind: 'string',
    column: 'se.series_description',
  },
  { keyword: 'BodyPartExamined', tag: tag('BodyPartExamined'), vr: 'CS', level: 'series', kind: 'string', column: 'se.body_part_examined' },
  { keyword: 'SeriesNumber', tag: tag('SeriesNumber'), vr: 'IS', level: 'series', kind: 'int', column: 'se.series_number' },
  {
    keyword: 'NumberOfSeriesRelatedInstances',
    tag: tag('NumberOfSeriesRelatedInstances'),
    vr: 'IS',
    level: 'series',
    kind: 'int',
    column: 'se.num_instances',
  },
  {
    keyword: 'PerformedProcedureStepStartDate',
    tag: tag('PerformedProcedureStepStartDate'),
    vr: 'DA',
    level: 'series',
    kind: 'date',
    column: 'se.performed_procedure_step_start_date',
  },
  {
    keyword: 'PerformedProcedureStepStartTime',
    tag: tag('PerformedProcedureStepStartTime'),
    vr: 'TM',
    level: 'series',
    kind: 'time',
    column: 'se.performed_procedure_step_start_time',
  },

  // Instance (instances i)
  { keyword: 'SOPClassUID', tag: tag('SOPClassUID'), vr: 'UI', level: 'instance', kind: 'uid', column: 'i.sop_class_uid' },
  { keyword: 'SOPInstanceUID', tag: tag('SOPInstanceUID'), vr: 'UI', level: 'instance', kind: 'uid', column: 'i.sop_instance_uid' },
  {
    keyword: 'AvailableTransferSyntaxUID',
    tag: tag('AvailableTransferSyntaxUID'),
    vr: 'UI',
    level: 'instance',
    kind: 'uid',
    column: 'i.transfer_syntax_uid',
  },
  { keyword: 'InstanceNumber', tag: tag('InstanceNumber'), vr: 'IS', level: 'instance', kind: 'int', column: 'i.instance_number' },
  { keyword: 'NumberOfFrames', tag: tag('NumberOfFrames'), vr: 'IS', level: 'instance', kind: 'int', column: 'i.number_of_frames' },
  { keyword: 'Rows', tag: tag('Rows'), vr: 'US', level: 'instance', kind: 'int', column: 'i.rows' },
  { keyword: 'Columns', tag: tag('Columns'), vr: 'US', level: 'instance', kind: 'int', column: 'i.columns' },
  { keyword: 'BitsAllocated', tag: tag('BitsAllocated'), vr: 'US', level: 'instance', kind: 'int', column: 'i.bits_allocated' },
];

// Indexed sequences (src/dicom/indexed-sequences.ts); their items live in sequence_items.
for (const seq of INDEXED_SEQUENCES) {
  defs.push({
    keyword: seq.keyword,
    tag: seq.tag,
    vr: 'SQ',
    level: seq.level,
    kind: 'sequence',
    items: seq.items.map((a) => ({ keyword: a.keyword, tag: a.tag, vr: a.vr, level: seq.level, kind: a.vr === 'UI' ? 'uid' : 'string' })),
  });
}

export const ATTRIBUTES: readonly AttributeDef[] = defs;

const byKeyword = new Map(defs.map((d) => [d.keyword.toLowerCase(), d]));
const byTag = new Map(defs.map((d) => [d.tag, d]));

/** A keyword (any case) or a tag (`00100020`, `0010,0020`, `(0010,0020)`), or undefined. */
export function findAttribute(key: string): AttributeDef | undefined {
  const t = normaliseTag(key);
  if (t) return byTag.get(t);
  return byKeyword.get(key.toLowerCase());
}

/**
 * A query key: one attribute, or a sequence and one of its item attributes (PS3.18 §8.3.4:
 * `{attributeID}.{attributeID}`, e.g. `00400275.00401001` or
 * `RequestAttributesSequence.RequestedProcedureID`).
 */
export interface KeyPath {
  def: AttributeDef;
  /** The item attribute, when the key names one inside the sequence `def`. */
  item?: AttributeDef;
}

/**
 * The attribute a key names, or undefined: unknown keys, items of sequences the index does not
 * keep, and deeper paths are all "not supported" (ignored, or 400 when strict).
 */
export function resolveKey(key: string): KeyPath | undefined {
  const parts = key.split('.');
  if (parts.length > 2) return undefined;
  const def = findAttribute(parts[0]!);
  if (!def || parts.length === 1) return def && { def };
  if (def.kind !== 'sequence') return undefined;
  const t = normaliseTag(parts[1]!);
  const lower = parts[1]!.toLowerCase();
  const item = def.items?.find((a) => (t ? a.tag === t : a.keyword.toLowerCase() === lower));
  return item && { def, item };
}

/** The canonical spelling of a key (keywords), so a tag and a keyword for it form one list. */
export function keyName(path: KeyPath): string {
  return path.item ? `${path.def.keyword}.${path.item.keyword}` : path.def.keyword;
}

/** `00100020` / `0010,0020` / `(0010,0020)` → `00100020`, else undefined. */
export function normaliseTag(key: string): string | undefined {
  const m = /^\(?([0-9a-fA-F]{4}),?([0-9a-fA-F]{4})\)?$/.exec(key.trim());
  return m ? `${m[1]}${m[2]}`.toUpperCase() : undefined;
}

/** Attributes stored at `level` or above it (a query at series level matches study attributes). */
export function availableAt(def: AttributeDef, level: Level): boolean {
  return LEVEL_RANK[def.level] <= LEVEL_RANK[level];
}

const k = (...keywords: string[]) => keywords;

/**
 * Attributes every answer carries: PS3.18 Table 6.7.1-2 (study), 6.7.1-2a (series, instance;
 * formerly Tables 10.6.3-3 to -5), plus the identifiers of the levels above.
 */
export const REQUIRED_RETURN: Record<Exclude<Level, 'patient'>, string[]> = {
  study: k(
    'SpecificCharacterSet',
    'StudyDate',
    'StudyTime',
    'AccessionNumber',
    'InstanceAvailability',
    'ModalitiesInStudy',
    'ReferringPhysicianName',
    'TimezoneOffsetFromUTC',
    'RetrieveURL',
    'PatientName',
    'PatientID',
    'PatientBirthDate',
    'PatientSex',
    'StudyInstanceUID',
    'StudyID',
    'NumberOfStudyRelatedSeries',
    'NumberOfStudyRelatedInstances',
    'StudyDescription',
  ),
  series: k(
    'SpecificCharacterSet',
    'Modality',
    'TimezoneOffsetFromUTC',
    'SeriesDescription',
    'SeriesNumber',
    'SeriesInstanceUID',
    'NumberOfSeriesRelatedInstances',
    'PerformedProcedureStepStartDate',
    'PerformedProcedureStepStartTime',
    'RequestAttributesSequence',
    'RetrieveURL',
    'StudyInstanceUID',
    'InstanceAvailability',
  ),
  instance: k(
    'SpecificCharacterSet',
    'SOPClassUID',
    'SOPInstanceUID',
    'InstanceAvailability',
    'TimezoneOffsetFromUTC',
    'RetrieveURL',
    'InstanceNumber',
    'Rows',
    'Columns',
    'BitsAllocated',
    'NumberOfFrames',
    'StudyInstanceUID',
    'SeriesInstanceUID',
    'AvailableTransferSyntaxUID',
  ),
};
