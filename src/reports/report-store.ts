import { RadiantError } from '../errors.js';
import type { Db, Trx } from '../db/connection.js';
import {
  insertReportRow,
  insertReportVersionRow,
  reportOfAnalysisRow,
  reportRow,
  reportRowsChangedBetween,
  reportRowsOfStudy,
  reportVersionRow,
  reportVersionRows,
  updateReportVersion,
  type ReportRow,
  type ReportVersionRow,
} from '../catalog/reports.js';
import type { ReportState } from './content.js';
import type { Change, ReportBody } from './body.js';

export interface Report {
  id: number;
  studyInstanceUid: string;
  analysisId: number;
  state: ReportState;
  version: number;
  includeAiDisclaimer: boolean;
  body: ReportBody;
  createdBy: string | null;
  signedBy: string | null;
  signerName: string | null;
  signedAt: string | null;
  srSopInstanceUid: string | null;
  pdfSopInstanceUid: string | null;
  srSeriesInstanceUid: string | null;
  pdfSeriesInstanceUid: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface ReportVersion {
  version: number;
  state: ReportState;
  action: 'create' | 'edit' | 'sign' | 'amend';
  changedBy: string | null;
  changedAt: string;
  changes: Change[];
  body: ReportBody;
  reason: string | null;
  srSopInstanceUid: string | null;
  pdfSopInstanceUid: string | null;
}

const iso = (v: string | Date | null): string | null => (v === null ? null : new Date(v).toISOString());

function fromRow(r: ReportRow): Report {
  return {
    id: Number(r.id),
    studyInstanceUid: r.study_instance_uid,
    analysisId: Number(r.analysis_id),
    state: r.state as ReportState,
    version: Number(r.version),
    includeAiDisclaimer: Boolean(r.include_ai_disclaimer),
    body: JSON.parse(r.content) as ReportBody,
    createdBy: r.created_by,
    signedBy: r.signed_by,
    signerName: r.signer_name,
    signedAt: iso(r.signed_at),
    srSopInstanceUid: r.sr_sop_instance_uid,
    pdfSopInstanceUid: r.pdf_sop_instance_uid,
    srSeriesInstanceUid: r.sr_series_instance_uid,
    pdfSeriesInstanceUid: r.pdf_series_instance_uid,
    createdAt: iso(r.created_at) ?? '',
    updatedAt: iso(r.updated_at) ?? '',
  };
}

export async function getReport(db: Db | Trx, id: number): Promise<Report | undefined> {
  const r = await reportRow(db, id);
  return r && fromRow(r);
}

function versionFromRow(r: ReportVersionRow): ReportVersion {
  return {
    version: Number(r.version),
    state: r.state as ReportState,
    action: r.action as ReportVersion['action'],
    changedBy: r.changed_by,
    changedAt: iso(r.changed_at) ?? '',
    changes: JSON.parse(r.changes) as Change[],
    body: JSON.parse(r.content) as ReportBody,
    reason: r.reason,
    srSopInstanceUid: r.sr_sop_instance_uid,
    pdfSopInstanceUid: r.pdf_sop_instance_uid,
  };
}

export async function listVersions(db: Db, reportId: number): Promise<ReportVersion[]> {
  return (await reportVersionRows(db, reportId)).map(versionFromRow);
}

export async function getVersion(db: Db, reportId: number, version: number): Promise<ReportVersion | undefined> {
  const r = await reportVersionRow(db, reportId, version);
  return r && versionFromRow(r);
}

/** A study's reports, oldest first. */
export async function reportsOfStudy(db: Db, studyInstanceUid: string): Promise<Report[]> {
  return (await reportRowsOfStudy(db, studyInstanceUid)).map(fromRow);
}

/** Reports that can hold a change made in [from, to] (changed since `from`, created by `to`). */
export async function reportsChangedBetween(db: Db, range: { from?: string; to?: string; limit: number }): Promise<Report[]> {
  return (await reportRowsChangedBetween(db, range)).map(fromRow);
}

/** The report of an analysis (there is one: reports_one_per_analysis). */
export async function reportOfAnalysis(db: Db | Trx, analysisId: number): Promise<Report | undefined> {
  const r = await reportOfAnalysisRow(db, analysisId);
  return r && fromRow(r);
}

export interface NewReport {
  studyInstanceUid: string;
  analysisId: number;
  includeAiDisclaimer: boolean;
  body: ReportBody;
  createdBy: string | null;
}

export async function insertReport(trx: Trx, r: NewReport, now: Date): Promise<number> {
  return insertReportRow(trx, {
    study_instance_uid: r.studyInstanceUid,
    analysis_id: r.analysisId,
    include_ai_disclaimer: r.includeAiDisclaimer,
    content: JSON.stringify(r.body),
    created_by: r.createdBy,
    created_at: now.toISOString(),
    updated_at: now.toISOString(),
  });
}

export interface VersionWrite {
  reportId: number;
  /** The version the change was made on: a concurrent change in between makes this fail. */
  expectedVersion: number;
  state: ReportState;
  action: ReportVersion['action'];
  by: string | null;
  changes: Change[];
  body: ReportBody;
  reason?: string | null;
  signer?: { username: string; name: string; at: string } | null;
}

export class ReportConflictError extends RadiantError {
  constructor(message: string) {
    super('conflict', message, { code: 'version_conflict' });
    this.name = 'ReportConflictError';
  }
}

/** Writes a new version (optimistic: only on top of expectedVersion), returns its number. */
export async function writeVersion(trx: Trx, w: VersionWrite, now: Date): Promise<number> {
  const version = w.expectedVersion + (w.action === 'create' ? 0 : 1);
  if (w.action !== 'create') {
    const moved = await updateReportVersion(trx, w.reportId, w.expectedVersion, {
      state: w.state,
      version,
      content: JSON.stringify(w.body),
      updated_at: now.toISOString(),
      ...(w.signer ? { signed_by: w.signer.username, signer_name: w.signer.name, signed_at: w.signer.at } : {}),
    });
    if (!moved) throw new ReportConflictError(`report ${w.reportId} changed since version ${w.expectedVersion}: reload and try again`);
  }
  await insertReportVersionRow(trx, {
    report_id: w.reportId,
    version,
    state: w.state,
    action: w.action,
    changed_by: w.by,
    changed_at: now.toISOString(),
    changes: JSON.stringify(w.changes),
    content: JSON.stringify(w.body),
    reason: w.reason ?? null,
  });
  return version;
}
