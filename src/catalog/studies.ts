import type { Knex } from 'knex';
import { isPostgres, type Db } from '../db/connection.js';
import { joinLatestStatus, latestStatusColumns } from './study-status.js';
import { countOf, orWhereMatches } from './sql.js';

/**
 * Studies and their series as the REST API lists them (src/records/studies.ts shapes them): study
 * rows with their patient and latest analysis/report state, a study's series, where instances are.
 */

/** A study with its patient (`patient_pk`…) and status columns (study-status.ts). */
export interface StudyRow {
  id: number | string;
  study_instance_uid: string;
  study_date: string | null;
  study_time: string | null;
  accession_number: string | null;
  study_description: string | null;
  study_id: string | null;
  referring_physician_name: string | null;
  modalities_in_study: string | null;
  num_series: number | string;
  num_instances: number | string;
  created_at: unknown;
  last_received_at: unknown;
  patient_pk: number | string;
  patient_id: string;
  issuer_of_patient_id: string | null;
  patient_name: string | null;
  patient_name_norm: string | null;
  analysis_id: number | string | null;
  analysis_status: string | null;
  analysis_progress_stage: string | null;
  analysis_progress_percent: number | string | null;
  /** JSON array of the latest analysis's safety flags. */
  analysis_safety_flags: string | null;
  report_id: number | string | null;
  report_status: string | null;
  report_version: number | string | null;
  report_signed_by: string | null;
  report_signer_name: string | null;
  report_signed_at: unknown;
}

export interface SeriesRow {
  id: number | string;
  series_instance_uid: string;
  modality: string | null;
  series_number: number | string | null;
  series_description: string | null;
  body_part_examined: string | null;
  num_instances: number | string;
  created_at: unknown;
}

/** The study list's orders: newest study first, patient name A→Z, or AI status (busy first). */
export const STUDY_SORTS = ['date', 'patient', 'status'] as const;
export type StudySort = (typeof STUDY_SORTS)[number];

/** A keyset position: the sort key values of the last row of the previous page (studyCursorValues). */
export type StudyCursorValues = Array<string | number | null>;

/** Filters of the study list; dates as DICOM DA (YYYYMMDD). */
export interface StudyRowFilter {
  patientId?: string;
  /** The patient's index id (FHIR `patient=`). */
  patientPk?: number;
  studyInstanceUid?: string;
  accession?: string;
  dateFrom?: string;
  dateTo?: string;
  /** Studies with a series of this modality. */
  modality?: string;
  /** Patient name (contains, case-insensitive) or Patient ID (prefix). */
  patient?: string;
  /** The latest analysis's status; `none`: the study has no analysis. */
  aiStatus?: string;
  /** The latest report's states (any of); `none` among them: studies without a report. */
  reportStates?: string[];
  sort?: StudySort;
  /** Keyset paging: rows after this position in `sort` order (offset is then ignored). */
  after?: StudyCursorValues;
  limit: number;
  offset: number;
}

const studyColumns = [
  'st.id',
  'st.study_instance_uid',
  'st.study_date',
  'st.study_time',
  'st.accession_number',
  'st.study_description',
  'st.study_id',
  'st.referring_physician_name',
  'st.modalities_in_study',
  'st.num_series',
  'st.num_instances',
  'st.created_at',
  'st.last_received_at',
  'p.id as patient_pk',
  'p.patient_id',
  'p.issuer_of_patient_id',
  'p.patient_name',
  'p.patient_name_norm',
];

/** The AI status order of sort=status: work in progress, then failures, then done, then nothing. */
const AI_STATUS_RANK =
  "CASE la.status WHEN 'running' THEN 0 WHEN 'queued' THEN 1 WHEN 'failed' THEN 2 WHEN 'succeeded' THEN 3 WHEN 'cancelled' THEN 4 ELSE 5 END";
const AI_STATUS_RANKS: Record<string, number> = { running: 0, queued: 1, failed: 2, succeeded: 3, cancelled: 4 };

/** One sort key: an SQL expression over `st`/`p`/`la`, its direction, and whether it can be NULL (NULLs sort last). */
interface SortKey {
  sql: string;
  dir: 'asc' | 'desc';
  nullable: boolean;
}

/**
 * The keys of each order, ending with the study id so the order is total. sort=date is exactly
 * the studies_list_order index (migration 005), so a page is an index range read whatever its depth.
 */
const SORT_KEYS: Record<StudySort, SortKey[]> = {
  date: [
    { sql: 'st.study_date', dir: 'desc', nullable: true },
    { sql: 'st.study_time', dir: 'desc', nullable: true },
    { sql: 'st.id', dir: 'desc', nullable: false },
  ],
  patient: [
    { sql: 'p.patient_name_norm', dir: 'asc', nullable: true },
    { sql: 'st.id', dir: 'asc', nullable: false },
  ],
  status: [
    { sql: AI_STATUS_RANK, dir: 'asc', nullable: false },
    { sql: 'st.id', dir: 'desc', nullable: false },
  ],
};

/** The key values of a row in `sort` order: the cursor that pages after it. */
export function studyCursorValues(sort: StudySort, r: StudyRow): StudyCursorValues {
  if (sort === 'patient') return [r.patient_name_norm ?? null, Number(r.id)];
  if (sort === 'status') return [AI_STATUS_RANKS[r.analysis_status ?? ''] ?? 5, Number(r.id)];
  return [r.study_date ?? null, r.study_time ?? null, Number(r.id)];
}

interface Segment {
  sql: string;
  bindings: Array<string | number>;
  /**
   * How much of the first key's ORDER BY the segment's WHERE fixes: `null-term` its `(key IS NULL)`
   * (constant here), `all` the key itself (all NULL). SQLite reads the index in order only when
   * such constant terms are left out of the ORDER BY; PostgreSQL gives the same order either way.
   */
  fixed?: 'null-term' | 'all';
}

/** "Comes after the cursor" from key `from` on, as nested comparisons (NULLs last). */
function afterFrom(keys: SortKey[], values: StudyCursorValues, from: number): Segment {
  const bindings: Array<string | number> = [];
  const build = (i: number): string => {
    const k = keys[i]!;
    const v = values[i];
    const op = k.dir === 'asc' ? '>' : '<';
    const last = i === keys.length - 1;
    if (v === null || v === undefined) {
      // NULLs last: after a NULL come only NULLs, ordered by the following keys.
      return last ? '1 = 0' : `(${k.sql} IS NULL AND ${build(i + 1)})`;
    }
    if (last) {
      bindings.push(v);
      return `${k.sql} ${op} ?`;
    }
    bindings.push(v, v);
    const rest = build(i + 1);
    return `(${k.nullable ? `${k.sql} IS NULL OR ` : ''}${k.sql} ${op} ? OR (${k.sql} = ? AND ${rest}))`;
  };
  return { sql: build(from), bindings };
}

/**
 * The rows after the cursor as index ranges, read in turn until the page is full. With a
 * nullable first key (the date) the rows with a value come first, then those without: one
 * range each, `(key IS NULL) = false AND key <= cursor` being a seek into the list index
 * (migration 005's leading columns), not a scan from its start. So page 480 of 100 000 studies
 * costs what page 1 does (README, HTTP: the figures; test/worklist-paging.test.ts).
 */
function afterCursor(db: Db, keys: SortKey[], values: StudyCursorValues): Segment[] {
  const k = keys[0]!;
  if (!k.nullable) return [afterFrom(keys, values, 0)];
  const [no, yes] = isPostgres(db) ? ['FALSE', 'TRUE'] : ['0', '1'];
  const v = values[0];
  const rest = afterFrom(keys, values, 1);
  const nulls: Segment = { sql: `(${k.sql} IS NULL) = ${yes} AND ${k.sql} IS NULL`, bindings: [], fixed: 'all' };
  if (v === null || v === undefined) return [{ ...nulls, sql: `${nulls.sql} AND ${rest.sql}`, bindings: rest.bindings }];
  const op = k.dir === 'asc' ? '>' : '<';
  return [
    {
      sql: `(${k.sql} IS NULL) = ${no} AND ${k.sql} ${op}= ? AND (${k.sql} ${op} ? OR (${k.sql} = ? AND ${rest.sql}))`,
      bindings: [v, v, v, ...rest.bindings],
      fixed: 'null-term',
    },
    nulls,
  ];
}

function orderBySortKeys(q: Knex.QueryBuilder, keys: SortKey[], fixed?: Segment['fixed']): void {
  keys.forEach((k, i) => {
    if (i === 0 && fixed === 'all') return;
    // `(col IS NULL)` as the index spells it: both databases then read the order from the index.
    if (k.nullable && !(i === 0 && fixed === 'null-term')) q.orderByRaw(`(${k.sql} IS NULL)`);
    q.orderByRaw(`${k.sql} ${k.dir}`);
  });
}

/** One page of studies in `sort` order (newest first by default), and how many match. */
export async function studyRows(db: Db, f: StudyRowFilter): Promise<{ total: number; rows: StudyRow[] }> {
  const sort = f.sort ?? 'date';
  // The latest analysis and report are joined for counting only where a filter needs them.
  const statusJoined = f.aiStatus !== undefined || f.reportStates !== undefined;
  const filtered = (withPatients: boolean) => {
    const q = db('studies as st');
    if (withPatients) q.join('patients as p', 'p.id', 'st.patient_pk');
    if (f.patientId !== undefined) q.where('p.patient_id', f.patientId);
    if (f.patientPk !== undefined) q.where('st.patient_pk', f.patientPk);
    if (f.studyInstanceUid !== undefined) q.where('st.study_instance_uid', f.studyInstanceUid);
    if (f.accession !== undefined) q.where('st.accession_number', f.accession);
    if (f.dateFrom !== undefined) q.where('st.study_date', '>=', f.dateFrom);
    if (f.dateTo !== undefined) q.where('st.study_date', '<=', f.dateTo);
    if (f.modality !== undefined) {
      const modality = f.modality;
      q.whereExists((e) => e.select(db.raw('1')).from('series as se').where('se.study_pk', db.ref('st.id')).where('se.modality', modality));
    }
    if (f.patient !== undefined) {
      const text = f.patient;
      q.where((b) => {
        orWhereMatches(db, b, 'p.patient_name_norm', text.toUpperCase(), 'contains');
        orWhereMatches(db, b, 'p.patient_id', text, 'prefix');
      });
    }
    if (statusJoined) joinLatestStatus(db, q);
    if (f.aiStatus === 'none') q.whereNull('la.id');
    else if (f.aiStatus !== undefined) q.where('la.status', f.aiStatus);
    if (f.reportStates !== undefined) {
      const states = f.reportStates.filter((s) => s !== 'none');
      const none = f.reportStates.includes('none');
      q.where((b) => {
        if (states.length) b.orWhereIn('lr.state', states);
        if (none) b.orWhereNull('lr.id');
      });
    }
    return q;
  };
  // Every study has its patient: the count joins patients only to filter on them (PostgreSQL
  // counts 100 000 studies in a fraction of the joined count's time).
  const total = await countOf(filtered(f.patientId !== undefined || f.patient !== undefined));
  const page = filtered(true);
  if (!statusJoined) joinLatestStatus(db, page);
  page.select([...studyColumns, ...latestStatusColumns]);
  const keys = SORT_KEYS[sort];
  if (!f.after) {
    orderBySortKeys(page, keys);
    return { total, rows: (await page.limit(f.limit).offset(f.offset)) as StudyRow[] };
  }
  const rows: StudyRow[] = [];
  for (const seg of afterCursor(db, keys, f.after)) {
    const q = page.clone().whereRaw(seg.sql, seg.bindings);
    orderBySortKeys(q, keys, seg.fixed);
    rows.push(...((await q.limit(f.limit - rows.length)) as StudyRow[]));
    if (rows.length >= f.limit) break;
  }
  return { total, rows };
}

export async function studyRow(db: Db, ref: { pk: number } | { uid: string }): Promise<StudyRow | undefined> {
  const q = joinLatestStatus(db, db('studies as st').join('patients as p', 'p.id', 'st.patient_pk')).select([
    ...studyColumns,
    ...latestStatusColumns,
  ]);
  if ('pk' in ref) q.where('st.id', ref.pk);
  else q.where('st.study_instance_uid', ref.uid);
  return (await q.first()) as StudyRow | undefined;
}

const seriesColumns = [
  'id',
  'series_instance_uid',
  'modality',
  'series_number',
  'series_description',
  'body_part_examined',
  'num_instances',
  'created_at',
];

/** A series by its UID. */
export async function seriesRow(db: Db, seriesInstanceUid: string): Promise<SeriesRow | undefined> {
  return (await db('series').where({ series_instance_uid: seriesInstanceUid }).first(seriesColumns)) as SeriesRow | undefined;
}

/** A study's series by series number (none last), then arrival. */
export async function seriesRowsOfStudy(db: Db, studyPk: number): Promise<SeriesRow[]> {
  return (await db('series')
    .select(seriesColumns)
    .where('study_pk', studyPk)
    .orderByRaw('CASE WHEN series_number IS NULL THEN 1 ELSE 0 END')
    .orderBy('series_number')
    .orderBy('id')) as SeriesRow[];
}

/** Where stored instances landed: their study (pk and UID), series and Patient ID, by SOP Instance UID. */
export async function locateInstances(
  db: Db,
  sopInstanceUids: string[],
): Promise<Map<string, { studyPk: number; studyInstanceUid: string; seriesInstanceUid: string; patientId: string }>> {
  const out = new Map<string, { studyPk: number; studyInstanceUid: string; seriesInstanceUid: string; patientId: string }>();
  // Chunks keep the IN list well under SQLite's bound-parameter limit.
  for (let i = 0; i < sopInstanceUids.length; i += 500) {
    const rows = (await db('instances as i')
      .join('series as se', 'se.id', 'i.series_pk')
      .join('studies as st', 'st.id', 'se.study_pk')
      .join('patients as p', 'p.id', 'st.patient_pk')
      .select('i.sop_instance_uid', 'st.id as study_pk', 'st.study_instance_uid', 'se.series_instance_uid', 'p.patient_id')
      .whereIn('i.sop_instance_uid', sopInstanceUids.slice(i, i + 500))) as Array<Record<string, unknown>>;
    for (const r of rows) {
      out.set(String(r.sop_instance_uid), {
        studyPk: Number(r.study_pk),
        studyInstanceUid: String(r.study_instance_uid),
        seriesInstanceUid: String(r.series_instance_uid),
        patientId: String(r.patient_id),
      });
    }
  }
  return out;
}

/** A series of a study as the analysis pipeline's loader reads it (src/volumes/series-loader.ts). */
export interface StudySeriesRow {
  id: number;
  series_instance_uid: string;
  num_instances: number;
  last_received_at: unknown;
  modality: string | null;
  series_number: number | null;
  series_description: string | null;
  body_part_examined: string | null;
}

/** Every series of the study (by UID), by series number then arrival; empty when the study is unknown. */
export async function seriesOfStudy(db: Db, studyInstanceUid: string): Promise<StudySeriesRow[]> {
  return (await db('series as se')
    .join('studies as st', 'st.id', 'se.study_pk')
    .where('st.study_instance_uid', studyInstanceUid)
    .select(
      'se.id',
      'se.series_instance_uid',
      'se.num_instances',
      'se.last_received_at',
      'se.modality',
      'se.series_number',
      'se.series_description',
      'se.body_part_examined',
    )
    .orderBy([{ column: 'se.series_number' }, { column: 'se.id' }])) as StudySeriesRow[];
}

/** A study's UID and its patient's ID, by primary key or UID: what a request naming a study resolves to. */
export async function studyIdentity(
  db: Db,
  ref: { pk: number } | { uid: string },
): Promise<{ studyInstanceUid: string; patientId: string } | undefined> {
  const q = db('studies as st').join('patients as p', 'p.id', 'st.patient_pk').select('st.study_instance_uid', 'p.patient_id');
  if ('pk' in ref) q.where('st.id', ref.pk);
  else q.where('st.study_instance_uid', ref.uid);
  const row = (await q.first()) as { study_instance_uid: string; patient_id: string } | undefined;
  return row && { studyInstanceUid: row.study_instance_uid, patientId: row.patient_id };
}

/**
 * A study's attributes with its patient's: what a report (DICOM SR, PDF) restates, the prompt
 * context reads (never the name) and the safety gate needs to recognise an echo of the patient.
 */
export interface StudyFactsRow {
  id: number;
  patient_pk: number;
  study_instance_uid: string;
  accession_number: string | null;
  study_date: string | null;
  study_time: string | null;
  study_id: string | null;
  study_description: string | null;
  referring_physician_name: string | null;
  modalities_in_study: string | null;
  patient_name: string | null;
  patient_id: string;
  issuer_of_patient_id: string;
  patient_birth_date: string | null;
  patient_sex: string | null;
}

export async function studyFacts(db: Db, studyInstanceUid: string): Promise<StudyFactsRow | undefined> {
  return (await db('studies as st')
    .join('patients as p', 'p.id', 'st.patient_pk')
    .where('st.study_instance_uid', studyInstanceUid)
    .first(
      'st.id',
      'st.patient_pk',
      'st.study_instance_uid',
      'st.accession_number',
      'st.study_date',
      'st.study_time',
      'st.study_id',
      'st.study_description',
      'st.referring_physician_name',
      'st.modalities_in_study',
      'p.patient_name',
      'p.patient_id',
      'p.issuer_of_patient_id',
      'p.patient_birth_date',
      'p.patient_sex',
    )) as StudyFactsRow | undefined;
}

/** When the study last received an instance; undefined when it is not in the index. */
export async function studyLastReceivedAt(db: Db, studyInstanceUid: string): Promise<Date | undefined> {
  const row = (await db('studies').where({ study_instance_uid: studyInstanceUid }).first('last_received_at')) as
    | { last_received_at: string | Date }
    | undefined;
  return row && new Date(row.last_received_at);
}
