import { RadiantError } from '../errors.js';
import type { AuditLog } from '../audit/audit.js';
import type { Db } from '../db/connection.js';
import type { Logger } from '../logger.js';
import type { Ingestor } from '../ingest/ingest.js';
import type { Role } from '../auth/permissions.js';
import { getAnalysis, type Analysis } from '../analysis/analyses.js';
import { seriesRow } from '../catalog/studies.js';
import { findUserRow } from '../catalog/users.js';
import { IMPLEMENTATION_VERSION_NAME } from '../dicom/implementation.js';
import type { Renderer } from '../dicom/render/renderer.js';
import type { BlobStorage } from '../../storage/types.js';
import { applyPatch, bodyFromAnalysis, type BodyPatch, type ReportBody } from './body.js';
import type { ReportContent, ReportSigner, ReportState } from './content.js';
import { buildContent } from './content-builder.js';
import { currentObjects, publishVersion, type Published } from './publish.js';
import { getReport, insertReport, writeVersion, type Report } from './report-store.js';

/**
 * The review workflow: draft (AI) → preliminary (edited) → final (signed) → amended. Every
 * change is a new version (who, when, what changed) and an audit row. The draft and every
 * signed version are published as DICOM (SR + Encapsulated PDF); signing and amending publish
 * new objects that name the previous ones as predecessors, never overwrite them.
 */

export class ReportWorkflowError extends RadiantError {
  constructor(kind: 'invalid-input' | 'forbidden' | 'not-found' | 'conflict' | 'unprocessable', code: string, message: string) {
    super(kind, message, { code });
    this.name = 'ReportWorkflowError';
  }
}

export interface WorkflowDeps {
  db: Db;
  storage: BlobStorage;
  ingestor: Ingestor;
  audit: AuditLog;
  log: Logger;
  /** The node's render pipeline (PDF key images). */
  renderer: Renderer;
  node: { aeTitle: string; institutionName: string | null };
  /** MEDGEMMA_ALLOW_UNVALIDATED_MODEL (publish.ts forwardingHold). */
  allowUnvalidatedModel?: boolean;
}

export interface Actor {
  username: string;
  role: Role;
  userId?: number;
}

function nodeIdentity(d: WorkflowDeps): ReportContent['node'] {
  return {
    aeTitle: d.node.aeTitle,
    institutionName: d.node.institutionName,
    softwareVersion: IMPLEMENTATION_VERSION_NAME,
    manufacturer: 'RadiantAI',
  };
}

function technique(a: Analysis, seriesDescription: string | null, modality: string | null): string {
  const what = `${modality ?? 'Imaging'} series${seriesDescription ? ` "${seriesDescription}"` : ''}`;
  return `${what}; ${a.images.length} image(s) reviewed by the AI model (${a.model?.name ?? 'unknown model'}${a.model?.quantization ? `, ${a.model.quantization}` : ''}).`;
}

async function loadAnalysis(db: Db, id: number): Promise<Analysis> {
  const a = await getAnalysis(db, id);
  if (!a) throw new ReportWorkflowError('not-found', 'not_found', `analysis ${id} not found`);
  return a;
}

async function contentFor(
  d: WorkflowDeps,
  report: Report,
  analysis: Analysis,
  body: ReportBody,
  extra: { signer: ReportSigner | null; reason: string | null; predecessors: ReturnType<typeof currentObjects> },
): Promise<ReportContent> {
  return buildContent(d.db, analysis, body, {
    reportId: report.id,
    version: report.version,
    state: report.state,
    includeDisclaimer: report.includeAiDisclaimer,
    signer: extra.signer,
    amendmentReason: extra.reason,
    predecessors: extra.predecessors,
    createdAt: report.updatedAt,
    node: nodeIdentity(d),
  });
}

export interface CreateReport {
  studyInstanceUid: string;
  analysisId: number;
  includeAiDisclaimer: boolean;
}

export async function createReport(d: WorkflowDeps, req: CreateReport, by: Actor): Promise<{ report: Report; published: Published }> {
  const analysis = await loadAnalysis(d.db, req.analysisId);
  if (analysis.studyInstanceUid !== req.studyInstanceUid)
    throw new ReportWorkflowError('unprocessable', 'analysis_of_other_study', `analysis ${analysis.id} is of another study`);
  if (analysis.status !== 'succeeded')
    throw new ReportWorkflowError(
      'conflict',
      'analysis_not_done',
      `analysis ${analysis.id} is ${analysis.status}; a report needs a finished analysis`,
    );
  const series = analysis.seriesInstanceUid ? await seriesRow(d.db, analysis.seriesInstanceUid) : undefined;
  const body = bodyFromAnalysis(analysis, technique(analysis, series?.series_description ?? null, series?.modality ?? null));
  const now = new Date();
  const id = await d.db.transaction(async (trx) => {
    const reportId = await insertReport(
      trx,
      {
        studyInstanceUid: req.studyInstanceUid,
        analysisId: analysis.id,
        includeAiDisclaimer: req.includeAiDisclaimer,
        body,
        createdBy: by.username,
      },
      now,
    );
    await writeVersion(
      trx,
      {
        reportId,
        expectedVersion: 1,
        state: 'draft',
        action: 'create',
        by: by.username,
        changes: [{ field: 'report', from: null, to: `draft from analysis ${analysis.id}` }],
        body,
      },
      now,
    );
    return reportId;
  });
  const report = (await getReport(d.db, id))!;
  const published = await publishVersion(
    d,
    report,
    analysis,
    body,
    await contentFor(d, report, analysis, body, { signer: null, reason: null, predecessors: [] }),
  );
  await d.audit.record({
    actorType: 'user',
    actor: by.username,
    action: 'report.created',
    resourceType: 'report',
    resourceId: String(id),
    studyInstanceUid: report.studyInstanceUid,
    outcome: 'success',
    details: {
      analysis: analysis.id,
      version: 1,
      sr: published.srSopInstanceUid,
      pdf: published.pdfSopInstanceUid,
      ...(published.forwardingHeld ? { forwardingHeld: published.forwardingHeld } : {}),
    },
  });
  return { report: (await getReport(d.db, id))!, published };
}

async function mustGet(d: WorkflowDeps, id: number): Promise<Report> {
  const r = await getReport(d.db, id);
  if (!r) throw new ReportWorkflowError('not-found', 'not_found', `report ${id} not found`);
  return r;
}

/** A radiologist's or admin's edit of a draft or preliminary report: a new preliminary version, not published until signed. */
export async function editReport(d: WorkflowDeps, id: number, patch: BodyPatch, by: Actor, expectedVersion?: number): Promise<Report> {
  const r = await mustGet(d, id);
  if (r.state === 'final' || r.state === 'amended')
    throw new ReportWorkflowError('conflict', 'signed', `report ${id} is ${r.state}: change it with POST /api/reports/${id}/amend`);
  if (expectedVersion !== undefined && expectedVersion !== r.version)
    throw new ReportWorkflowError('conflict', 'version_conflict', `report ${id} is at version ${r.version}, not ${expectedVersion}`);
  const { body, changes } = applyPatch(r.body, patch);
  if (!changes.length) return r;
  const version = await d.db.transaction((trx) =>
    writeVersion(
      trx,
      { reportId: id, expectedVersion: r.version, state: 'preliminary', action: 'edit', by: by.username, changes, body },
      new Date(),
    ),
  );
  await d.audit.record({
    actorType: 'user',
    actor: by.username,
    action: 'report.edited',
    resourceType: 'report',
    resourceId: String(id),
    studyInstanceUid: r.studyInstanceUid,
    outcome: 'success',
    details: { version, fields: changes.map((c) => c.field) },
  });
  return (await getReport(d.db, id))!;
}

async function signerOf(d: WorkflowDeps, by: Actor, at: Date): Promise<ReportSigner> {
  const u = await findUserRow(d.db, { username: by.username });
  return {
    name: u?.full_name || by.username,
    username: by.username,
    organization: d.node.institutionName ?? 'RadiantAI node',
    at: at.toISOString(),
  };
}

function mustBeRadiologist(by: Actor): void {
  // Signing is a clinical act: only radiologists, not admins or service accounts.
  if (by.role !== 'radiologist')
    throw new ReportWorkflowError('forbidden', 'not_a_radiologist', 'only a radiologist can sign or amend a report');
}

async function signed(
  d: WorkflowDeps,
  r: Report,
  body: ReportBody,
  state: ReportState,
  action: 'sign' | 'amend',
  by: Actor,
  changes: ReturnType<typeof applyPatch>['changes'],
  reason: string | null,
): Promise<{ report: Report; published: Published }> {
  const at = new Date();
  const signer = await signerOf(d, by, at);
  const predecessors = currentObjects(r);
  await d.db.transaction((trx) =>
    writeVersion(
      trx,
      {
        reportId: r.id,
        expectedVersion: r.version,
        state,
        action,
        by: by.username,
        changes,
        body,
        reason,
        signer: { username: signer.username, name: signer.name, at: signer.at },
      },
      at,
    ),
  );
  const now = (await getReport(d.db, r.id))!;
  const analysis = await loadAnalysis(d.db, r.analysisId);
  const published = await publishVersion(
    d,
    now,
    analysis,
    body,
    await contentFor(d, now, analysis, body, { signer, reason, predecessors }),
  );
  await d.audit.record({
    actorType: 'user',
    actor: by.username,
    action: action === 'sign' ? 'report.signed' : 'report.amended',
    resourceType: 'report',
    resourceId: String(r.id),
    studyInstanceUid: r.studyInstanceUid,
    outcome: 'success',
    details: {
      version: now.version,
      state,
      sr: published.srSopInstanceUid,
      pdf: published.pdfSopInstanceUid,
      predecessors: predecessors.map((p) => p.sopInstanceUid),
      ...(published.forwardingHeld ? { forwardingHeld: published.forwardingHeld } : {}),
    },
  });
  return { report: (await getReport(d.db, r.id))!, published };
}

export async function signReport(
  d: WorkflowDeps,
  id: number,
  by: Actor,
  expectedVersion?: number,
): Promise<{ report: Report; published: Published }> {
  mustBeRadiologist(by);
  const r = await mustGet(d, id);
  if (r.state === 'final' || r.state === 'amended')
    throw new ReportWorkflowError('conflict', 'already_signed', `report ${id} is already ${r.state}`);
  if (expectedVersion !== undefined && expectedVersion !== r.version)
    throw new ReportWorkflowError('conflict', 'version_conflict', `report ${id} is at version ${r.version}, not ${expectedVersion}`);
  return signed(d, r, r.body, 'final', 'sign', by, [{ field: 'state', from: r.state, to: 'final' }], null);
}

export async function amendReport(
  d: WorkflowDeps,
  id: number,
  reason: string,
  patch: BodyPatch | undefined,
  by: Actor,
): Promise<{ report: Report; published: Published }> {
  mustBeRadiologist(by);
  const r = await mustGet(d, id);
  if (r.state !== 'final' && r.state !== 'amended')
    throw new ReportWorkflowError('conflict', 'not_signed', `report ${id} is ${r.state}: edit it with PATCH and sign it`);
  const { body, changes } = patch ? applyPatch(r.body, patch) : { body: r.body, changes: [] };
  return signed(d, r, body, 'amended', 'amend', by, [{ field: 'state', from: r.state, to: 'amended' }, ...changes], reason);
}
