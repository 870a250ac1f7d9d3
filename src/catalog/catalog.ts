import type { Knex } from 'knex';
import type { Db } from '../db/connection.js';
import type { SequenceItems } from '../dicom/indexed-sequences.js';
import { writeSequenceItems } from './sequence-index.js';

/** Everything the index keeps about one stored instance. */
export interface InstanceRecord {
  patient: {
    patientId: string;
    issuerOfPatientId: string;
    patientName?: string;
    patientBirthDate?: string;
    patientSex?: string;
  };
  study: {
    studyInstanceUid: string;
    studyDate?: string;
    studyTime?: string;
    accessionNumber?: string;
    referringPhysicianName?: string;
    studyDescription?: string;
    studyId?: string;
    timezoneOffsetFromUtc?: string;
  };
  series: {
    seriesInstanceUid: string;
    modality?: string;
    seriesNumber?: number;
    seriesDescription?: string;
    bodyPartExamined?: string;
    performedProcedureStepStartDate?: string;
    performedProcedureStepStartTime?: string;
  };
  /**
   * Items of the indexed sequences (study- and series-level ones together). Absent: the
   * instance says nothing about them and the stored items stay; present: they replace them.
   */
  sequences?: SequenceItems;
  instance: {
    sopInstanceUid: string;
    sopClassUid: string;
    instanceNumber?: number;
    rows?: number;
    columns?: number;
    numberOfFrames?: number;
    bitsAllocated?: number;
    transferSyntaxUid: string;
    sizeBytes: number;
    storageKey: string;
    /** SHA-256 (hex) of the blob as stored. */
    sha256?: string;
    source: string;
    sourceAeTitle?: string;
    /** Not indexed: why no forwarding rule may send this instance automatically (set by the ingest caller). */
    holdForwarding?: string;
  };
}

export interface StoredInstanceRow {
  id: number;
  series_pk: number;
  sop_instance_uid: string;
  sop_class_uid: string;
  series_instance_uid: string;
  study_instance_uid: string;
  transfer_syntax_uid: string;
  size_bytes: number;
  storage_key: string;
  instance_number: number | null;
  /** When this version of the instance was stored (ISO text); with the key it names one stored blob, for caches. */
  stored_at?: string;
  /** SHA-256 (hex) of the blob; null for instances stored before it was kept (filled on first read). */
  sha256?: string | null;
}

export interface IndexResult {
  instancePk: number;
  seriesPk: number;
  studyPk: number;
  /** The row this instance replaced, when it was already indexed. */
  replaced?: { storageKey: string; seriesPk: number };
}

/**
 * Values longer than their VR allows do occur in the wild; the index keeps a clipped copy (the
 * blob keeps the original) rather than refusing the instance or failing on PostgreSQL's varchar.
 */
/** Integer columns are 32-bit on PostgreSQL; an out-of-range IS value is not indexed. */
function int32(v: number | undefined): number | null {
  return v !== undefined && Number.isInteger(v) && v >= -2147483648 && v <= 2147483647 ? v : null;
}

function clip(v: string | undefined, max: number): string | null {
  if (v === undefined || v === '') return null;
  return v.length > max ? v.slice(0, max) : v;
}

/** Upper-cased PN for case-insensitive matching (PS3.4 C.2.2.2.1 allows it for PN). */
export function normalizePersonName(name: string | undefined): string | null {
  return name ? name.toUpperCase() : null;
}

async function upsertReturningId(
  trx: Knex.Transaction,
  table: string,
  row: Record<string, unknown>,
  conflict: string[],
  merge: string[],
): Promise<number> {
  const [res] = (await trx(table).insert(row).onConflict(conflict).merge(merge).returning('id')) as Array<{ id: number }>;
  return Number(res!.id);
}

/**
 * Index one instance in a single transaction: patient, study, series and instance rows, then the
 * denormalised counts QIDO-RS/C-FIND return. Counts are recomputed rather than incremented so
 * an overwrite, a re-send or a moved instance can never make them drift.
 */
export async function indexInstance(db: Db, rec: InstanceRecord, now = new Date()): Promise<IndexResult> {
  return db.transaction((trx) => indexInstanceIn(trx, rec, now));
}

/** The same, inside a transaction the caller owns. */
export async function indexInstanceIn(trx: Knex.Transaction, rec: InstanceRecord, now = new Date()): Promise<IndexResult> {
  const [res] = await indexInstancesIn(trx, [rec], now);
  return res!;
}

/**
 * Several instances in one transaction (the index writer's batch), ending in the state indexing
 * them one after the other would leave, in fewer statements: a patient, study or series row the
 * same as the one just written for it is not written again, each series' and study's indexed
 * sequences are written from the last instance that carries them, and the counts are recomputed
 * once per series and study. `each` runs after each instance's row is written (the writer's hooks).
 */
export async function indexInstancesIn(
  trx: Knex.Transaction,
  recs: InstanceRecord[],
  now = new Date(),
  each?: (rec: InstanceRecord, res: IndexResult) => Promise<void>,
): Promise<IndexResult[]> {
  const ts = now.toISOString();
  const upsert = lastRowUpserter(trx);
  const owners: Array<{ patientPk: number; studyPk: number; seriesPk: number }> = [];
  for (const rec of recs) {
    const patientPk = await upsert(
      'patients',
      {
        patient_id: rec.patient.patientId.slice(0, 64),
        issuer_of_patient_id: rec.patient.issuerOfPatientId.slice(0, 64),
        patient_name: clip(rec.patient.patientName, 324),
        patient_name_norm: clip(normalizePersonName(rec.patient.patientName) ?? undefined, 324),
        patient_birth_date: clip(rec.patient.patientBirthDate, 8),
        patient_sex: clip(rec.patient.patientSex, 16),
        created_at: ts,
        updated_at: ts,
      },
      ['patient_id', 'issuer_of_patient_id'],
      ['patient_name', 'patient_name_norm', 'patient_birth_date', 'patient_sex', 'updated_at'],
    );
    const studyPk = await upsert(
      'studies',
      {
        study_instance_uid: rec.study.studyInstanceUid,
        patient_pk: patientPk,
        study_date: clip(rec.study.studyDate, 8),
        study_time: clip(rec.study.studyTime, 16),
        accession_number: clip(rec.study.accessionNumber, 16),
        referring_physician_name: clip(rec.study.referringPhysicianName, 324),
        study_description: clip(rec.study.studyDescription, 64),
        study_id: clip(rec.study.studyId, 16),
        timezone_offset_from_utc: clip(rec.study.timezoneOffsetFromUtc, 16),
        created_at: ts,
        last_received_at: ts,
      },
      ['study_instance_uid'],
      [
        'patient_pk',
        'study_date',
        'study_time',
        'accession_number',
        'referring_physician_name',
        'study_description',
        'study_id',
        'timezone_offset_from_utc',
        // The node's own AI results are not arrivals: they must not re-open the study for
        // the analysis pipeline's study-stable clock.
        ...(rec.instance.source === 'ai' ? [] : ['last_received_at']),
      ],
    );
    const seriesPk = await upsert(
      'series',
      {
        series_instance_uid: rec.series.seriesInstanceUid,
        study_pk: studyPk,
        modality: clip(rec.series.modality, 16),
        series_number: int32(rec.series.seriesNumber),
        series_description: clip(rec.series.seriesDescription, 64),
        body_part_examined: clip(rec.series.bodyPartExamined, 16),
        performed_procedure_step_start_date: clip(rec.series.performedProcedureStepStartDate, 8),
        performed_procedure_step_start_time: clip(rec.series.performedProcedureStepStartTime, 16),
        created_at: ts,
        last_received_at: ts,
      },
      ['series_instance_uid'],
      [
        'study_pk',
        'modality',
        'series_number',
        'series_description',
        'body_part_examined',
        'performed_procedure_step_start_date',
        'performed_procedure_step_start_time',
        'last_received_at',
      ],
    );
    owners.push({ patientPk, studyPk, seriesPk });
  }

  // Sequence items are replaced by each instance that carries them: only the last one of each
  // series (series-level sequences) and of each study (study-level ones) decides what stays.
  const lastForSeries = new Map<number, number>();
  const lastForStudy = new Map<number, number>();
  recs.forEach((rec, i) => {
    if (!rec.sequences) return;
    lastForSeries.set(owners[i]!.seriesPk, i);
    lastForStudy.set(owners[i]!.studyPk, i);
  });

  // Which instances are already indexed (replaced ones): one read for the batch. An instance
  // sent twice within the batch replaces its own first copy, so those batches go one by one.
  const sops = recs.map((r) => r.instance.sopInstanceUid);
  const distinct = new Set(sops).size === sops.length;
  const previousRows = new Map<string, { storage_key: string; series_pk: number }>();
  if (distinct) for (const r of await indexedInstances(trx, sops)) previousRows.set(r.sop_instance_uid, r);

  const rows = recs.map((rec, i) => instanceRow(rec, owners[i]!.seriesPk, ts));
  const ids = new Map<string, number>();
  if (distinct) {
    for (const r of await upsertInstances(trx, rows)) ids.set(r.sop_instance_uid, Number(r.id));
  }

  const results: IndexResult[] = [];
  const moved: number[] = [];
  for (const [i, rec] of recs.entries()) {
    const { studyPk, seriesPk } = owners[i]!;
    if (rec.sequences) {
      const levels = { series: lastForSeries.get(seriesPk) === i, study: lastForStudy.get(studyPk) === i };
      if (levels.series || levels.study) await writeSequenceItems(trx, rec.sequences, { studyPk, seriesPk }, levels);
    }
    const sop = rec.instance.sopInstanceUid;
    let previous = previousRows.get(sop);
    let instancePk = ids.get(sop);
    if (!distinct) {
      [previous] = await indexedInstances(trx, [sop]);
      [instancePk] = (await upsertInstances(trx, [rows[i]!])).map((r) => Number(r.id));
    }
    if (previous && Number(previous.series_pk) !== seriesPk) moved.push(Number(previous.series_pk));
    const res: IndexResult = {
      instancePk: instancePk!,
      seriesPk,
      studyPk,
      replaced: previous ? { storageKey: previous.storage_key, seriesPk: Number(previous.series_pk) } : undefined,
    };
    results.push(res);
    if (each) await each(rec, res);
  }

  await refreshSeriesCountsOf(trx, [...new Set(owners.map((o) => o.seriesPk))]);
  await refreshStudyCountsOf(trx, [...new Set(owners.map((o) => o.studyPk))]);
  // An instance that moved to another series (its Series UID changed on re-send): fix the old
  // series and study, and drop them when nothing is left in them.
  for (const seriesPk of new Set(moved)) await removeIfEmpty(trx, seriesPk);
  return results;
}

function instanceRow(rec: InstanceRecord, seriesPk: number, ts: string): Record<string, unknown> {
  return {
    sop_instance_uid: rec.instance.sopInstanceUid,
    series_pk: seriesPk,
    sop_class_uid: rec.instance.sopClassUid,
    instance_number: int32(rec.instance.instanceNumber),
    rows: int32(rec.instance.rows),
    columns: int32(rec.instance.columns),
    number_of_frames: int32(rec.instance.numberOfFrames),
    bits_allocated: int32(rec.instance.bitsAllocated),
    transfer_syntax_uid: rec.instance.transferSyntaxUid,
    size_bytes: rec.instance.sizeBytes,
    storage_key: rec.instance.storageKey,
    sha256: rec.instance.sha256 ?? null,
    source: rec.instance.source,
    source_ae_title: clip(rec.instance.sourceAeTitle, 16),
    stored_at: ts,
  };
}

const instanceMerge = [
  'series_pk',
  'sop_class_uid',
  'instance_number',
  'rows',
  'columns',
  'number_of_frames',
  'bits_allocated',
  'transfer_syntax_uid',
  'size_bytes',
  'storage_key',
  'sha256',
  'source',
  'source_ae_title',
  'stored_at',
];

/** Instance rows (distinct SOP Instance UIDs) inserted or updated in one statement; their ids by UID. */
async function upsertInstances(
  trx: Knex.Transaction,
  rows: Array<Record<string, unknown>>,
): Promise<Array<{ id: number; sop_instance_uid: string }>> {
  return (await trx('instances')
    .insert(rows)
    .onConflict('sop_instance_uid')
    .merge(instanceMerge)
    .returning(['id', 'sop_instance_uid'])) as Array<{
    id: number;
    sop_instance_uid: string;
  }>;
}

async function indexedInstances(
  trx: Knex.Transaction,
  sops: string[],
): Promise<Array<{ sop_instance_uid: string; storage_key: string; series_pk: number }>> {
  return (await trx('instances').select('sop_instance_uid', 'storage_key', 'series_pk').whereIn('sop_instance_uid', sops)) as Array<{
    sop_instance_uid: string;
    storage_key: string;
    series_pk: number;
  }>;
}

/**
 * upsertReturningId that skips a row identical to the one it last wrote for the same conflict
 * key in this transaction (the rest of a series arriving in one batch), answering its id.
 */
function lastRowUpserter(trx: Knex.Transaction) {
  const last = new Map<string, { row: string; id: number }>();
  return async (table: string, row: Record<string, unknown>, conflict: string[], merge: string[]): Promise<number> => {
    const key = JSON.stringify([table, ...conflict.map((c) => row[c])]);
    const text = JSON.stringify([row, merge]);
    const seen = last.get(key);
    if (seen?.row === text) return seen.id;
    const id = await upsertReturningId(trx, table, row, conflict, merge);
    last.set(key, { row: text, id });
    return id;
  };
}

/** Recount a series' instances (also used when instances are deleted). */
export async function refreshSeriesCounts(trx: Knex.Transaction, seriesPk: number): Promise<void> {
  await refreshSeriesCountsOf(trx, [seriesPk]);
}

/** Recount several series' instances in one statement. */
async function refreshSeriesCountsOf(trx: Knex.Transaction, seriesPks: number[]): Promise<void> {
  await trx('series')
    .whereIn('id', seriesPks)
    .update({ num_instances: trx('instances').count('*').where('series_pk', trx.ref('series.id')) });
}

/** Recount a study's series and instances and its ModalitiesInStudy. */
export async function refreshStudyCounts(trx: Knex.Transaction, studyPk: number): Promise<void> {
  await refreshStudyCountsOf(trx, [studyPk]);
}

/** The same for several studies: their modalities read in one query, then one update each. */
async function refreshStudyCountsOf(trx: Knex.Transaction, studyPks: number[]): Promise<void> {
  const modalities = (await trx('series')
    .distinct('study_pk', 'modality')
    .whereIn('study_pk', studyPks)
    .whereNotNull('modality')
    .orderBy(['study_pk', 'modality'])) as Array<{ study_pk: number; modality: string }>;
  for (const studyPk of studyPks) {
    const list = modalities.filter((m) => Number(m.study_pk) === studyPk).map((m) => m.modality);
    await trx('studies')
      .where('id', studyPk)
      .update({
        num_series: trx('series').count('*').where('study_pk', studyPk),
        num_instances: trx('instances').count('*').whereIn('series_pk', trx('series').select('id').where('study_pk', studyPk)),
        modalities_in_study: list.join('\\') || null,
      });
  }
}

async function removeIfEmpty(trx: Knex.Transaction, seriesPk: number): Promise<void> {
  const series = (await trx('series').select('study_pk').where('id', seriesPk).first()) as { study_pk: number } | undefined;
  if (!series) return;
  await refreshSeriesCounts(trx, seriesPk);
  await trx('series').where({ id: seriesPk, num_instances: 0 }).delete();
  const studyPk = Number(series.study_pk);
  await refreshStudyCounts(trx, studyPk);
  await trx('studies').where({ id: studyPk, num_series: 0 }).delete();
}

const instanceColumns = [
  'i.id',
  'i.series_pk',
  'i.sop_instance_uid',
  'i.sop_class_uid',
  'se.series_instance_uid',
  'st.study_instance_uid',
  'i.transfer_syntax_uid',
  'i.size_bytes',
  'i.storage_key',
  'i.instance_number',
  'i.stored_at',
  'i.sha256',
];

function instanceQuery(db: Db) {
  return db('instances as i')
    .join('series as se', 'se.id', 'i.series_pk')
    .join('studies as st', 'st.id', 'se.study_pk')
    .select(instanceColumns);
}

function toRow(r: StoredInstanceRow): StoredInstanceRow {
  const storedAt = r.stored_at as unknown;
  return {
    ...r,
    id: Number(r.id),
    series_pk: Number(r.series_pk),
    size_bytes: Number(r.size_bytes),
    stored_at: storedAt instanceof Date ? storedAt.toISOString() : String(storedAt),
  };
}

export async function findInstance(db: Db, sopInstanceUid: string): Promise<StoredInstanceRow | undefined> {
  const row = (await instanceQuery(db).where('i.sop_instance_uid', sopInstanceUid).first()) as StoredInstanceRow | undefined;
  return row && toRow(row);
}

/** The instances of a study, or of one series or one instance in it, in display order. */
export async function listInstances(db: Db, scope: { study: string; series?: string; instance?: string }): Promise<StoredInstanceRow[]> {
  const q = instanceQuery(db).where('st.study_instance_uid', scope.study);
  if (scope.series !== undefined) q.where('se.series_instance_uid', scope.series);
  if (scope.instance !== undefined) q.where('i.sop_instance_uid', scope.instance);
  const rows = (await q.orderBy([
    { column: 'se.series_number' },
    { column: 'se.id' },
    { column: 'i.instance_number' },
    { column: 'i.id' },
  ])) as StoredInstanceRow[];
  return rows.map(toRow);
}

export function listStudyInstances(db: Db, studyInstanceUid: string): Promise<StoredInstanceRow[]> {
  return listInstances(db, { study: studyInstanceUid });
}

export interface StudySummary {
  study_instance_uid: string;
  patient_id: string;
  patient_name: string | null;
  study_date: string | null;
  accession_number: string | null;
  modalities_in_study: string | null;
  num_series: number;
  num_instances: number;
}

export async function getStudySummary(db: Db, studyInstanceUid: string): Promise<StudySummary | undefined> {
  const row = (await db('studies as st')
    .join('patients as p', 'p.id', 'st.patient_pk')
    .select(
      'st.study_instance_uid',
      'p.patient_id',
      'p.patient_name',
      'st.study_date',
      'st.accession_number',
      'st.modalities_in_study',
      'st.num_series',
      'st.num_instances',
    )
    .where('st.study_instance_uid', studyInstanceUid)
    .first()) as StudySummary | undefined;
  return row && { ...row, num_series: Number(row.num_series), num_instances: Number(row.num_instances) };
}

export async function countInstances(db: Db): Promise<number> {
  const [row] = (await db('instances').count({ n: '*' })) as Array<{ n: number | string }>;
  return Number(row!.n);
}

/** The Patient ID of each study (by Study Instance UID) the index holds; for audit rows. */
export async function patientIdsOfStudies(db: Db, studyInstanceUids: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (studyInstanceUids.length === 0) return out;
  const rows = (await db('studies as st')
    .join('patients as p', 'p.id', 'st.patient_pk')
    .select('st.study_instance_uid', 'p.patient_id')
    .whereIn('st.study_instance_uid', [...new Set(studyInstanceUids)])) as Array<{ study_instance_uid: string; patient_id: string }>;
  for (const r of rows) out.set(r.study_instance_uid, r.patient_id);
  return out;
}

/** What the index says about an instance named by its SOP Instance UID alone. */
export interface InstanceFacts {
  sopClassUid: string;
  storageKey: string;
  rows: number | null;
  columns: number | null;
  numberOfFrames: number | null;
}

/** The indexed instances among these SOP Instance UIDs, by UID; the unknown ones are absent. */
export async function instancesByUid(db: Db, sopInstanceUids: readonly string[]): Promise<Map<string, InstanceFacts>> {
  const out = new Map<string, InstanceFacts>();
  const uids = [...new Set(sopInstanceUids)];
  // Chunks keep the IN list well under SQLite's bound-parameter limit.
  for (let i = 0; i < uids.length; i += 500) {
    const rows = (await db('instances')
      .whereIn('sop_instance_uid', uids.slice(i, i + 500))
      .select('sop_instance_uid', 'sop_class_uid', 'storage_key', 'rows', 'columns', 'number_of_frames')) as Array<{
      sop_instance_uid: string;
      sop_class_uid: string;
      storage_key: string;
      rows: number | null;
      columns: number | null;
      number_of_frames: number | null;
    }>;
    for (const r of rows)
      out.set(r.sop_instance_uid, {
        sopClassUid: r.sop_class_uid,
        storageKey: r.storage_key,
        rows: r.rows,
        columns: r.columns,
        numberOfFrames: r.number_of_frames,
      });
  }
  return out;
}

/** A stored instance to send, with its study and patient. */
export interface RetrievableInstance {
  sop_class_uid: string;
  sop_instance_uid: string;
  transfer_syntax_uid: string;
  storage_key: string;
  size_bytes: number;
  sha256?: string | null;
  study_instance_uid: string;
  patient_id: string;
}

/** Which instances to retrieve: every given (non-empty) list must match; at least one should be given. */
export interface RetrieveFilter {
  patientIds?: readonly string[];
  studyInstanceUids?: readonly string[];
  seriesInstanceUids?: readonly string[];
  sopInstanceUids?: readonly string[];
}

/** The instances matching the filter, study by study in display order (C-MOVE, C-GET). */
export async function retrievableInstances(db: Db, f: RetrieveFilter): Promise<RetrievableInstance[]> {
  const q = db('instances as i')
    .join('series as se', 'se.id', 'i.series_pk')
    .join('studies as st', 'st.id', 'se.study_pk')
    .join('patients as p', 'p.id', 'st.patient_pk')
    .select('i.sop_class_uid', 'i.sop_instance_uid', 'i.transfer_syntax_uid', 'i.storage_key', 'i.size_bytes', 'i.sha256')
    .select('st.study_instance_uid', 'p.patient_id');
  if (f.patientIds?.length) q.whereIn('p.patient_id', [...f.patientIds]);
  if (f.sopInstanceUids?.length) q.whereIn('i.sop_instance_uid', [...f.sopInstanceUids]);
  if (f.seriesInstanceUids?.length) q.whereIn('se.series_instance_uid', [...f.seriesInstanceUids]);
  if (f.studyInstanceUids?.length) q.whereIn('st.study_instance_uid', [...f.studyInstanceUids]);
  const rows = (await q.orderBy([
    { column: 'st.id' },
    { column: 'se.series_number' },
    { column: 'se.id' },
    { column: 'i.instance_number' },
    { column: 'i.id' },
  ])) as RetrievableInstance[];
  return rows.map((r) => ({ ...r, size_bytes: Number(r.size_bytes) }));
}

/**
 * Records the SHA-256 of an instance stored before digests were kept (its first whole read), only
 * while its row still names that blob and has none: a re-send in between keeps its own.
 */
export async function recordInstanceSha256(db: Db, storageKey: string, sha256: string): Promise<void> {
  await db('instances').where({ storage_key: storageKey }).whereNull('sha256').update({ sha256 });
}
