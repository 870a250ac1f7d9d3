import type { Db, Trx } from '../db/connection.js';

/**
 * The AI analyses (medgemma_analyses) with their findings and measurements. src/analysis/analyses.ts
 * gives them their domain shape (JSON columns parsed, timestamps as ISO strings); this module reads
 * and writes the rows.
 */

export type AnalysisStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
/** auto: AUTO_ANALYZE; workitem: a UPS workitem the node performs (src/ups/performer.ts); both are published by the node. */
export type AnalysisTrigger = 'manual' | 'auto' | 'workitem';

export interface AnalysisRow {
  id: number;
  study_instance_uid: string;
  status: AnalysisStatus;
  /** One of src/medgemma/prompts' analysis types (the column holds what was written). */
  analysis_type: string;
  trigger: AnalysisTrigger;
  requested_by: string | null;
  clinical_indication: string | null;
  focus: string | null;
  job_id: number | null;
  progress_stage: string | null;
  progress_percent: number | null;
  source_received_at: string | null;
  series_instance_uid: string | null;
  volume_id: number | null;
  prior_study_instance_uid: string | null;
  model_name: string | null;
  model_sha256: string | null;
  model_quantization: string | null;
  mmproj_sha256: string | null;
  backend: string | null;
  prompt_template_id: string | null;
  prompt_template_version: string | null;
  prompt_hash: string | null;
  prompt_text: string | null;
  /** JSON columns: images, safety_flags, timings, selection, model_identity, provenance. */
  images: string | null;
  impression: string | null;
  comparison: string | null;
  technical_limitations: string | null;
  raw_text: string | null;
  safety_flags: string | null;
  timings: string | null;
  selection: string | null;
  model_identity: string | null;
  provenance: string | null;
  error: string | null;
  created_at: string | Date;
  started_at: string | Date | null;
  finished_at: string | Date | null;
}

/** Columns to change on an analysis row. */
export type AnalysisColumns = Partial<Record<keyof AnalysisRow, unknown>>;

export type NewAnalysisRow = Pick<
  AnalysisRow,
  | 'study_instance_uid'
  | 'analysis_type'
  | 'trigger'
  | 'requested_by'
  | 'clinical_indication'
  | 'focus'
  | 'source_received_at'
  | 'created_at'
>;

export interface FindingRow {
  idx: number;
  description: string;
  anatomical_location: string | null;
  laterality: string | null;
  category: string | null;
  severity: string | null;
  confidence: number;
  /** JSON: number[]. */
  image_indices: string;
  recommendation: string | null;
  /** JSON: { imageIndex, box }. */
  region: string | null;
}

export interface MeasurementRow {
  idx: number;
  finding: string | null;
  quantity: string;
  value: number;
  unit: string;
}

/** Inserts a queued analysis; returns its id. */
export async function insertAnalysisRow(db: Db | Trx, a: NewAnalysisRow): Promise<number> {
  const [row] = await db('medgemma_analyses')
    .insert({ ...a, status: 'queued' })
    .returning('id');
  return Number(typeof row === 'object' ? (row as { id: number }).id : row);
}

export async function updateAnalysisRow(db: Db | Trx, id: number, fields: AnalysisColumns): Promise<void> {
  await db('medgemma_analyses').where({ id }).update(fields);
}

/** Moves a queued or running analysis to `status`; false when it had already finished. */
export async function markAnalysisRow(db: Db | Trx, id: number, status: AnalysisStatus, fields: AnalysisColumns = {}): Promise<boolean> {
  const n = await db('medgemma_analyses')
    .where({ id })
    .whereIn('status', ['queued', 'running'])
    .update({ status, ...fields });
  return n > 0;
}

/**
 * Cancels the study's queued automatic analyses other than `exceptId` (superseded by it): at most
 * one automatic analysis waits per study.
 */
export async function supersedeQueuedAutoAnalyses(
  db: Db,
  studyInstanceUid: string,
  exceptId: number,
  fields: { error: string; finished_at: string },
): Promise<void> {
  await db('medgemma_analyses')
    .where({ study_instance_uid: studyInstanceUid, trigger: 'auto', status: 'queued' })
    .andWhereNot({ id: exceptId })
    .update({ status: 'cancelled', ...fields });
}

export async function analysisRow(db: Db, id: number): Promise<AnalysisRow | undefined> {
  return (await db('medgemma_analyses').where({ id }).first()) as AnalysisRow | undefined;
}

/** The study's analyses, newest first. */
export async function studyAnalysisRows(db: Db, studyInstanceUid: string): Promise<AnalysisRow[]> {
  return (await db('medgemma_analyses').where({ study_instance_uid: studyInstanceUid }).orderBy('id', 'desc')) as AnalysisRow[];
}

/** The study's latest analysis of this status. */
export async function latestAnalysisRow(db: Db, studyInstanceUid: string, status: AnalysisStatus): Promise<AnalysisRow | undefined> {
  return (await db('medgemma_analyses').where({ study_instance_uid: studyInstanceUid, status }).orderBy('id', 'desc').first()) as
    | AnalysisRow
    | undefined;
}

/** `study_instance_uid` and `source_received_at` of the automatic analyses of these studies. */
export async function autoAnalysisArrivals(
  db: Db,
  studyInstanceUids: string[],
): Promise<Array<{ study_instance_uid: string; source_received_at: string | null }>> {
  const out: Array<{ study_instance_uid: string; source_received_at: string | null }> = [];
  for (let i = 0; i < studyInstanceUids.length; i += 500) {
    const done = (await db('medgemma_analyses')
      .whereIn('study_instance_uid', studyInstanceUids.slice(i, i + 500))
      .andWhere({ trigger: 'auto' })
      .select('study_instance_uid', 'source_received_at')) as Array<{ study_instance_uid: string; source_received_at: string | null }>;
    out.push(...done);
  }
  return out;
}

export async function findingRows(db: Db, analysisId: number): Promise<FindingRow[]> {
  return (await db('findings').where({ analysis_id: analysisId }).orderBy('idx')) as FindingRow[];
}

export async function measurementRows(db: Db, analysisId: number): Promise<MeasurementRow[]> {
  return (await db('measurements').where({ analysis_id: analysisId }).orderBy('idx')) as MeasurementRow[];
}

/**
 * Stores an outcome: the analysis row's `fields` with status succeeded, and its findings and
 * measurements, in one transaction, only while the analysis is queued or running. A retried job
 * that had already stored replaces its items instead of doubling them. False: it had finished.
 * `also` writes in the same transaction what must commit with the outcome (follow-up jobs).
 */
export async function storeAnalysisOutcome(
  db: Db,
  id: number,
  fields: AnalysisColumns,
  findings: FindingRow[],
  measurements: MeasurementRow[],
  also?: (trx: Trx) => Promise<void>,
): Promise<boolean> {
  return db.transaction(async (trx) => {
    const n = await trx('medgemma_analyses')
      .where({ id })
      .whereIn('status', ['queued', 'running'])
      .update({ ...fields, status: 'succeeded' });
    if (n === 0) return false;
    await trx('findings').where({ analysis_id: id }).delete();
    await trx('measurements').where({ analysis_id: id }).delete();
    if (findings.length) await trx('findings').insert(findings.map((f) => ({ analysis_id: id, ...f })));
    if (measurements.length) await trx('measurements').insert(measurements.map((m) => ({ analysis_id: id, ...m })));
    if (also) await also(trx);
    return true;
  });
}
