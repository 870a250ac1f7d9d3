import type { Db, Trx } from '../db/connection.js';
import { countOf } from './sql.js';

/**
 * The reports and their versions (reports, report_versions). src/reports/report-store.ts gives
 * them their domain shape and src/reports/workflow.ts the rules (who may change what, optimistic
 * versions); this module reads and writes the rows.
 */

export interface ReportRow {
  id: number;
  study_instance_uid: string;
  analysis_id: number;
  /** One of src/reports/content.ts' report states (the column holds what was written). */
  state: string;
  version: number;
  include_ai_disclaimer: boolean | number;
  /** JSON: the report body. */
  content: string;
  created_by: string | null;
  signed_by: string | null;
  signer_name: string | null;
  signed_at: string | Date | null;
  sr_sop_instance_uid: string | null;
  pdf_sop_instance_uid: string | null;
  sr_series_instance_uid: string | null;
  pdf_series_instance_uid: string | null;
  /** The analysis id, unique: one report per analysis (migration 015); NULL on older duplicates. */
  one_per_analysis: number | null;
  created_at: string | Date;
  updated_at: string | Date;
}

export type NewReportRow = Pick<
  ReportRow,
  'study_instance_uid' | 'analysis_id' | 'include_ai_disclaimer' | 'content' | 'created_by' | 'created_at' | 'updated_at'
>;

export interface ReportVersionRow {
  version: number;
  state: string;
  /** create, edit, sign or amend. */
  action: string;
  changed_by: string | null;
  changed_at: string | Date;
  /** JSON: the changes of this version. */
  changes: string;
  /** JSON: the report body of this version. */
  content: string;
  reason: string | null;
  sr_sop_instance_uid: string | null;
  pdf_sop_instance_uid: string | null;
}

export type NewReportVersionRow = Omit<ReportVersionRow, 'sr_sop_instance_uid' | 'pdf_sop_instance_uid'> & { report_id: number };

/** What a new version changes on its report row. */
export type ReportVersionColumns = Pick<ReportRow, 'state' | 'version' | 'content'> &
  Partial<Pick<ReportRow, 'signed_by' | 'signer_name' | 'signed_at'>> & { updated_at: string };

export async function reportRow(db: Db | Trx, id: number): Promise<ReportRow | undefined> {
  return (await db('reports').where({ id }).first()) as ReportRow | undefined;
}

/** The report's versions, oldest first. */
export async function reportVersionRows(db: Db | Trx, reportId: number): Promise<ReportVersionRow[]> {
  return (await db('report_versions').where({ report_id: reportId }).orderBy('version')) as ReportVersionRow[];
}

/** The report of an analysis (the one that holds its one_per_analysis key, else the oldest). */
export async function reportOfAnalysisRow(db: Db | Trx, analysisId: number): Promise<ReportRow | undefined> {
  return (await db('reports').where({ analysis_id: analysisId }).orderByRaw('one_per_analysis IS NULL').orderBy('id').first()) as
    | ReportRow
    | undefined;
}

/** One version of a report. */
export async function reportVersionRow(db: Db | Trx, reportId: number, version: number): Promise<ReportVersionRow | undefined> {
  return (await db('report_versions').where({ report_id: reportId, version }).first()) as ReportVersionRow | undefined;
}

/**
 * Inserts a report at version 1, state draft; returns its id. A second report of the same
 * analysis violates reports_one_per_analysis (isUniqueViolation): the caller reads the first.
 */
export async function insertReportRow(trx: Trx, r: NewReportRow): Promise<number> {
  const [row] = await trx('reports')
    .insert({ ...r, one_per_analysis: r.analysis_id, state: 'draft', version: 1 })
    .returning('id');
  return Number(typeof row === 'object' ? (row as { id: number }).id : row);
}

/** Moves the report to a new version only if it is still at `expectedVersion`; false when it changed since. */
export async function updateReportVersion(trx: Trx, id: number, expectedVersion: number, changes: ReportVersionColumns): Promise<boolean> {
  const n = await trx('reports').where({ id, version: expectedVersion }).update(changes);
  return n > 0;
}

export async function insertReportVersionRow(trx: Trx, row: NewReportVersionRow): Promise<void> {
  await trx('report_versions').insert(row);
}

/** Records the DICOM objects published for a version (and makes them the report's current ones). */
export async function setPublishedObjects(
  db: Db | Trx,
  reportId: number,
  version: number,
  sr: { sop: string; series: string },
  pdf: { sop: string; series: string },
): Promise<void> {
  await db.transaction(async (trx) => {
    await trx('report_versions')
      .where({ report_id: reportId, version })
      .update({ sr_sop_instance_uid: sr.sop, pdf_sop_instance_uid: pdf.sop });
    await trx('reports').where({ id: reportId, version }).update({
      sr_sop_instance_uid: sr.sop,
      pdf_sop_instance_uid: pdf.sop,
      sr_series_instance_uid: sr.series,
      pdf_series_instance_uid: pdf.series,
    });
  });
}

/** A study's reports, oldest first. */
export async function reportRowsOfStudy(db: Db | Trx, studyInstanceUid: string): Promise<ReportRow[]> {
  return (await db('reports').where({ study_instance_uid: studyInstanceUid }).orderBy('id')) as ReportRow[];
}

/**
 * Reports changed at or after `from` and created at or before `to` (ISO strings; either open):
 * every report a finding decision in [from, to] can be on. At most `limit`, oldest first.
 */
export async function reportRowsChangedBetween(db: Db, range: { from?: string; to?: string; limit: number }): Promise<ReportRow[]> {
  const q = db('reports');
  if (range.from) q.where('updated_at', '>=', range.from);
  if (range.to) q.where('created_at', '<=', range.to);
  return (await q.orderBy('id').limit(range.limit)) as ReportRow[];
}

/** The FHIR DiagnosticReport/Observation search over reports: patient, study, states, study date range (DA). */
export interface ReportSearch {
  patientPk?: number;
  studyInstanceUid?: string;
  states?: string[];
  dateFrom?: string;
  dateTo?: string;
  limit: number;
  offset: number;
}

/** Matching report ids, oldest first, and how many match. */
export async function reportSearchRows(db: Db, q: ReportSearch): Promise<{ total: number; ids: number[] }> {
  const base = db('reports as r').join('studies as st', 'st.study_instance_uid', 'r.study_instance_uid');
  if (q.patientPk !== undefined) base.where('st.patient_pk', q.patientPk);
  if (q.studyInstanceUid !== undefined) base.where('r.study_instance_uid', q.studyInstanceUid);
  if (q.states) base.whereIn('r.state', q.states);
  if (q.dateFrom !== undefined) base.where('st.study_date', '>=', q.dateFrom);
  if (q.dateTo !== undefined) base.where('st.study_date', '<=', q.dateTo);
  const total = await countOf(base);
  const rows = (await base.clone().select('r.id').orderBy('r.id').limit(q.limit).offset(q.offset)) as Array<{ id: number }>;
  return { total, ids: rows.map((r) => Number(r.id)) };
}

/** Each model that drafted a report (SHA-256 and name as recorded) with its newest report: the FHIR Device read. */
export async function reportModels(db: Db): Promise<Array<{ sha256: string | null; name: string | null; reportId: number }>> {
  const rows = (await db('reports as r')
    .join('medgemma_analyses as a', 'a.id', 'r.analysis_id')
    .groupBy('a.model_sha256', 'a.model_name')
    .select('a.model_sha256', 'a.model_name')
    .max({ report_id: 'r.id' })) as Array<{ model_sha256: string | null; model_name: string | null; report_id: number }>;
  return rows.map((r) => ({ sha256: r.model_sha256, name: r.model_name, reportId: Number(r.report_id) }));
}
