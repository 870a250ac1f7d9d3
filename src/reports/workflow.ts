import { RadiantError } from '../errors.js';
import type { Config } from '../config.js';
import type { Db, Trx } from '../db/connection.js';
import type { EventBus, ReportChangedEvent } from '../events.js';
import type { Role } from '../auth/permissions.js';
import { getAnalysis, type Analysis } from '../analysis/analyses.js';
import { isUniqueViolation } from '../catalog/sql.js';
import { seriesRow } from '../catalog/studies.js';
import type { JobQueue } from '../jobs/queue.js';
import { deliveryOptions, reportDeliveriesHook } from '../integrations/deliveries.js';
import { acceptUndecided, applyPatch, bodyFromAnalysis, rejectedFindings, type BodyPatch, type ReportBody } from './body.js';
import type { ReportState } from './content.js';
import { currentObjects, forwardingHold, PublishError, versionUids } from './publish.js';
import { enqueuePublish, REPORT_PUBLISH_JOB, reportEventStatus, signerOf, type ReportNodeDeps } from './publish-job.js';
import { getReport, insertReport, reportOfAnalysis, writeVersion, type Report } from './report-store.js';

/**
 * The review workflow: draft (AI) → preliminary (edited) → final (signed) → amended. Every
 * change is a new version (who, when, what changed) and an audit row. The draft and every
 * signed version are published as DICOM (SR + Encapsulated PDF) by a report.publish job queued
 * in the transaction that writes the version (src/reports/publish-job.ts); signing and amending
 * publish new objects that name the previous ones as predecessors, never overwrite them. The
 * deliveries to the hospital's systems follow the recording of those objects (onPublished).
 */

export class ReportWorkflowError extends RadiantError {
  constructor(kind: 'invalid-input' | 'forbidden' | 'not-found' | 'conflict' | 'unprocessable', code: string, message: string) {
    super(kind, message, { code });
    this.name = 'ReportWorkflowError';
  }
}

/** What the workflow needs: the node's parts for building reports, and the queue that publishes them. */
export interface WorkflowDeps extends ReportNodeDeps {
  jobs: JobQueue;
  /** Announces each report.publish job (job-due), so the worker that publishes starts at once. */
  events?: EventBus;
}

export interface Actor {
  username: string;
  role: Role;
  userId?: number;
  /** The node itself (auto-publish), audited as a system actor. */
  system?: boolean;
}

/** The publishing a change queued: its report.publish job and the UIDs its objects get. */
export interface PublishTicket {
  jobId: number;
  version: number;
  srSopInstanceUid: string;
  pdfSopInstanceUid: string;
}

/** The workflow's deps from the node's parts (the composition root, the report routes). */
export function workflowDeps(p: Omit<WorkflowDeps, 'jobs' | 'node'> & { queue: JobQueue; config: Config }): WorkflowDeps {
  const { db, storage, ingestor, audit, log, events, queue, config, renderer } = p;
  return {
    db,
    storage,
    ingestor,
    audit,
    log,
    renderer,
    allowUnvalidatedModel: config.medgemma.allowUnvalidatedModel,
    events,
    jobs: queue,
    node: { aeTitle: config.dicom.aeTitle, institutionName: config.institutionName },
    // Deliveries to the hospital's systems (HL7 to a RIS, FHIR push): queued when a version's objects are recorded.
    onPublished: reportDeliveriesHook({ queue, events, options: deliveryOptions(config) }),
  };
}

/** The audit's note that forwarding rules will hold this report's objects (an unvalidated model). */
function heldFor(d: WorkflowDeps, analysis: Analysis): { forwardingHeld?: string } {
  const why = forwardingHold(analysis, d.allowUnvalidatedModel ?? false);
  return why ? { forwardingHeld: why } : {};
}

const actorType = (by: Actor) => (by.system ? ('system' as const) : ('user' as const));

function technique(a: Analysis, seriesDescription: string | null, modality: string | null): string {
  const what = `${modality ?? 'Imaging'} series${seriesDescription ? ` "${seriesDescription}"` : ''}`;
  return `${what}; ${a.images.length} image(s) reviewed by the AI model (${a.model?.name ?? 'unknown model'}${a.model?.quantization ? `, ${a.model.quantization}` : ''}).`;
}

async function loadAnalysis(db: Db, id: number): Promise<Analysis> {
  const a = await getAnalysis(db, id);
  if (!a) throw new ReportWorkflowError('not-found', 'not_found', `analysis ${id} not found`);
  return a;
}

/** Queues the publishing of `version` in `trx`; the ticket names the job and the objects to come. */
async function queuePublish(
  d: WorkflowDeps,
  trx: Trx,
  report: Pick<Report, 'id' | 'studyInstanceUid' | 'createdAt'>,
  version: number,
): Promise<PublishTicket> {
  const job = await enqueuePublish(trx, d.jobs, report.id, version);
  const uids = versionUids(report, version);
  return { jobId: job.id, version, srSopInstanceUid: uids.sr.sop, pdfSopInstanceUid: uids.pdf.sop };
}

function announce(d: WorkflowDeps): void {
  d.events?.emit('job-due', { kind: REPORT_PUBLISH_JOB, runAt: new Date() });
}

/** report-changed, for the worklist's live rows. */
function changed(
  d: WorkflowDeps,
  r: Pick<Report, 'id' | 'studyInstanceUid' | 'version' | 'state'>,
  event: ReportChangedEvent['event'],
): void {
  d.events?.emit('report-changed', {
    reportId: r.id,
    studyInstanceUid: r.studyInstanceUid,
    version: r.version,
    status: reportEventStatus(r.state),
    event,
  });
}

/**
 * Waits up to timeoutMs for a change's publishing: done (the report names the new objects) or
 * not yet (queued, running, or waiting to retry). A job that failed for good throws its reason.
 */
export async function awaitPublished(
  d: WorkflowDeps,
  reportId: number,
  ticket: PublishTicket,
  timeoutMs: number,
): Promise<{ report: Report; done: boolean }> {
  const job = await d.jobs.waitFor(ticket.jobId, timeoutMs);
  if (job?.status === 'failed' || job?.status === 'cancelled')
    throw new PublishError(`publishing report ${reportId} v${ticket.version} failed: ${job.error ?? job.status}`);
  const report = await mustGet(d, reportId);
  return { report, done: job?.status === 'succeeded' || report.srSopInstanceUid === ticket.srSopInstanceUid };
}

export interface CreateReport {
  studyInstanceUid: string;
  analysisId: number;
  includeAiDisclaimer: boolean;
}

/**
 * The draft report of a finished analysis, its publishing queued with it. One report per
 * analysis (reports_one_per_analysis): when the analysis already has one, that one is answered
 * (created: false, nothing queued), whoever made it and whichever node got there first.
 */
export async function createReport(
  d: WorkflowDeps,
  req: CreateReport,
  by: Actor,
): Promise<{ report: Report; created: boolean; publish: PublishTicket | null }> {
  const analysis = await loadAnalysis(d.db, req.analysisId);
  if (analysis.studyInstanceUid !== req.studyInstanceUid)
    throw new ReportWorkflowError('unprocessable', 'analysis_of_other_study', `analysis ${analysis.id} is of another study`);
  if (analysis.status !== 'succeeded')
    throw new ReportWorkflowError(
      'conflict',
      'analysis_not_done',
      `analysis ${analysis.id} is ${analysis.status}; a report needs a finished analysis`,
    );
  const existing = await reportOfAnalysis(d.db, analysis.id);
  if (existing) return { report: existing, created: false, publish: null };
  const series = analysis.seriesInstanceUid ? await seriesRow(d.db, analysis.seriesInstanceUid) : undefined;
  const body = bodyFromAnalysis(analysis, technique(analysis, series?.series_description ?? null, series?.modality ?? null));
  const now = new Date();
  let made: { id: number; publish: PublishTicket };
  try {
    made = await d.db.transaction(async (trx) => {
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
      const created = { id: reportId, studyInstanceUid: req.studyInstanceUid, createdAt: now.toISOString() };
      const publish = await queuePublish(d, trx, created, 1);
      return { id: reportId, publish };
    });
  } catch (err) {
    // Another request or node drafted this analysis's report meanwhile: that one it is.
    const winner = isUniqueViolation(err) ? await reportOfAnalysis(d.db, analysis.id) : undefined;
    if (!winner) throw err;
    return { report: winner, created: false, publish: null };
  }
  announce(d);
  const report = (await getReport(d.db, made.id))!;
  changed(d, report, 'created');
  await d.audit.record({
    actorType: actorType(by),
    actor: by.username,
    action: 'report.created',
    resourceType: 'report',
    resourceId: String(made.id),
    studyInstanceUid: report.studyInstanceUid,
    outcome: 'success',
    details: {
      analysis: analysis.id,
      version: 1,
      sr: made.publish.srSopInstanceUid,
      pdf: made.publish.pdfSopInstanceUid,
      publishJob: made.publish.jobId,
      ...heldFor(d, analysis),
    },
  });
  return { report, created: true, publish: made.publish };
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
  const analysis = await loadAnalysis(d.db, r.analysisId);
  const { body, changes } = applyPatch(r.body, patch, { images: analysis.images.length });
  if (!changes.length) return r;
  const version = await d.db.transaction((trx) =>
    writeVersion(
      trx,
      { reportId: id, expectedVersion: r.version, state: 'preliminary', action: 'edit', by: by.username, changes, body },
      new Date(),
    ),
  );
  await d.audit.record({
    actorType: actorType(by),
    actor: by.username,
    action: 'report.edited',
    resourceType: 'report',
    resourceId: String(id),
    studyInstanceUid: r.studyInstanceUid,
    outcome: 'success',
    details: { version, fields: changes.map((c) => c.field), ...decisionsOf(changes) },
  });
  const edited = (await getReport(d.db, id))!;
  changed(d, edited, 'edited');
  return edited;
}

/** The radiologist's calls on the model's findings in a change, for the audit trail (rejections with their reason). */
function decisionsOf(changes: ReturnType<typeof applyPatch>['changes']): { decisions?: string[] } {
  const decisions = changes
    .filter((c) => c.field.endsWith(' decision'))
    .map((c) => `${c.field.replace(/ decision$/, '')}: ${String(c.to)}`);
  return decisions.length ? { decisions } : {};
}

function mustBeRadiologist(by: Actor): void {
  // Signing is a clinical act: only radiologists, not admins or service accounts.
  if (by.role !== 'radiologist')
    throw new ReportWorkflowError('forbidden', 'not_a_radiologist', 'only a radiologist can sign or amend a report');
}

async function signed(
  d: WorkflowDeps,
  r: Report,
  analysis: Analysis,
  body: ReportBody,
  state: ReportState,
  action: 'sign' | 'amend',
  by: Actor,
  changes: ReturnType<typeof applyPatch>['changes'],
  reason: string | null,
): Promise<{ report: Report; publish: PublishTicket }> {
  const at = new Date();
  const signer = await signerOf(d, by.username, at.toISOString());
  const publish = await d.db.transaction(async (trx) => {
    const version = await writeVersion(
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
    );
    const ticket = await queuePublish(d, trx, r, version);
    return ticket;
  });
  announce(d);
  await d.audit.record({
    actorType: actorType(by),
    actor: by.username,
    action: action === 'sign' ? 'report.signed' : 'report.amended',
    resourceType: 'report',
    resourceId: String(r.id),
    studyInstanceUid: r.studyInstanceUid,
    outcome: 'success',
    details: {
      version: publish.version,
      state,
      sr: publish.srSopInstanceUid,
      pdf: publish.pdfSopInstanceUid,
      publishJob: publish.jobId,
      predecessors: currentObjects(r).map((p) => p.sopInstanceUid),
      // Listed here, left out of the published report.
      rejectedFindings: rejectedFindings(body),
      ...decisionsOf(changes),
      ...heldFor(d, analysis),
    },
  });
  const report = (await getReport(d.db, r.id))!;
  changed(d, report, action === 'sign' ? 'signed' : 'amended');
  return { report, publish };
}

export async function signReport(
  d: WorkflowDeps,
  id: number,
  by: Actor,
  expectedVersion?: number,
): Promise<{ report: Report; publish: PublishTicket }> {
  mustBeRadiologist(by);
  const r = await mustGet(d, id);
  if (r.state === 'final' || r.state === 'amended')
    throw new ReportWorkflowError('conflict', 'already_signed', `report ${id} is already ${r.state}`);
  if (expectedVersion !== undefined && expectedVersion !== r.version)
    throw new ReportWorkflowError('conflict', 'version_conflict', `report ${id} is at version ${r.version}, not ${expectedVersion}`);
  // Signing accepts the model's findings the radiologist left as they were.
  const { body, changes } = acceptUndecided(r.body);
  return signed(
    d,
    r,
    await loadAnalysis(d.db, r.analysisId),
    body,
    'final',
    'sign',
    by,
    [{ field: 'state', from: r.state, to: 'final' }, ...changes],
    null,
  );
}

export async function amendReport(
  d: WorkflowDeps,
  id: number,
  reason: string,
  patch: BodyPatch | undefined,
  by: Actor,
): Promise<{ report: Report; publish: PublishTicket }> {
  mustBeRadiologist(by);
  const r = await mustGet(d, id);
  if (r.state !== 'final' && r.state !== 'amended')
    throw new ReportWorkflowError('conflict', 'not_signed', `report ${id} is ${r.state}: edit it with PATCH and sign it`);
  const analysis = await loadAnalysis(d.db, r.analysisId);
  const { body, changes } = patch ? applyPatch(r.body, patch, { images: analysis.images.length }) : { body: r.body, changes: [] };
  return signed(d, r, analysis, body, 'amended', 'amend', by, [{ field: 'state', from: r.state, to: 'amended' }, ...changes], reason);
}
