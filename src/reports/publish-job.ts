import type { AuditLog } from '../audit/audit.js';
import type { Backoff } from '../backoff.js';
import { findInstance } from '../catalog/catalog.js';
import { findUserRow } from '../catalog/users.js';
import { personDisplayName, userPersonName } from '../auth/users.js';
import type { Db, Trx } from '../db/connection.js';
import { IMPLEMENTATION_VERSION_NAME } from '../dicom/implementation.js';
import { ENCAPSULATED_PDF_SOP_CLASS as ENCAPSULATED_PDF } from '../dicom/uids.js';
import { getAnalysis, type Analysis } from '../analysis/analyses.js';
import { JobError } from '../jobs/errors.js';
import type { JobQueue } from '../jobs/queue.js';
import type { JobRow } from '../jobs/types.js';
import { typedHandler, type JobHandler } from '../jobs/worker.js';
import type { EventBus, ReportChangedEvent } from '../events.js';
import type { ImageRef, ReportContent, ReportSigner, ReportState } from './content.js';
import { buildContent } from './content-builder.js';
import { publishVersion, versionUids, type PublishDeps, type Published } from './publish.js';
import { getReport, getVersion, listVersions, type Report, type ReportVersion } from './report-store.js';
import { COMPREHENSIVE_3D_SR_SOP_CLASS as COMPREHENSIVE_3D_SR } from './sr/sr-builder.js';

/**
 * Publishing a report version is a job (`report.publish` {reportId, version}) on the one job
 * runner: the workflow enqueues it in the transaction that writes the version, so a version is
 * never committed without the work that publishes it, and a crash after the commit still
 * publishes. The handler rebuilds the version's content from what the version row holds (body,
 * state, author and time, amendment reason) and is safe to repeat: a version whose objects are
 * recorded is done at once, the objects' UIDs are the version's own (versionUids), and an object
 * already stored counts as stored.
 */

export const REPORT_PUBLISH_JOB = 'report.publish';

export interface ReportPublishPayload {
  reportId: number;
  version: number;
}

export interface ReportPublishResult extends ReportPublishPayload {
  srSopInstanceUid: string;
  pdfSopInstanceUid: string;
  /** The version's objects were recorded before this run: nothing was built. */
  already: boolean;
  timings?: Published['timings'];
}

/** Retries: a store that failed (storage, database) is tried again soon, then less often. */
const PUBLISH_BACKOFF: Backoff = { baseMs: 2_000, maxMs: 2 * 60_000 };
const PUBLISH_ATTEMPTS = 6;

/** What building and storing a version needs of the node. */
export interface ReportNodeDeps extends PublishDeps {
  audit: AuditLog;
  node: { aeTitle: string; institutionName: string | null };
  /** Announces each published version (report-changed). */
  events?: EventBus;
}

/** A report state as report-changed events name it: unsigned drafts, signed, amended. */
export function reportEventStatus(state: ReportState): ReportChangedEvent['status'] {
  if (state === 'final') return 'signed';
  return state === 'amended' ? 'amended' : 'draft';
}

export function nodeIdentity(d: Pick<ReportNodeDeps, 'node'>): ReportContent['node'] {
  return {
    aeTitle: d.node.aeTitle,
    institutionName: d.node.institutionName,
    softwareVersion: IMPLEMENTATION_VERSION_NAME,
    manufacturer: 'RadiantAI',
  };
}

/**
 * The signer as the SR and PDF name them: the user's full name and credentials when known ("Doe^Jane^^^MD",
 * shown "Jane Doe, MD"), at the signing time.
 */
export async function signerOf(d: Pick<ReportNodeDeps, 'db' | 'node'>, username: string, at: string): Promise<ReportSigner> {
  const u = await findUserRow(d.db, { username });
  const name = userPersonName({ username, fullName: u?.full_name ?? null, credentials: u?.credentials ?? null });
  return { name, display: personDisplayName(name), username, organization: d.node.institutionName ?? 'RadiantAI node', at };
}

/** Queues the publishing of `version` inside the transaction that writes it. */
export async function enqueuePublish(trx: Trx, queue: JobQueue, reportId: number, version: number): Promise<JobRow> {
  return queue.enqueueIn<ReportPublishPayload>(trx, {
    kind: REPORT_PUBLISH_JOB,
    payload: { reportId, version },
    dedupeKey: `report.publish:${reportId}:${version}`,
    maxAttempts: PUBLISH_ATTEMPTS,
  });
}

function parsePayload(p: unknown): ReportPublishPayload {
  const { reportId, version } = (p ?? {}) as { reportId?: unknown; version?: unknown };
  const ok = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;
  if (!ok(reportId) || !ok(version)) throw new TypeError('reportId and version must be positive integers');
  return { reportId, version };
}

/**
 * The objects the version before `version` published (or will: its own job may still be queued,
 * and its UIDs are known in advance), named by the new version's objects as predecessors.
 */
async function predecessorsOf(db: Db, report: Report, version: number): Promise<ImageRef[]> {
  const prev = (await listVersions(db, report.id)).filter((v) => v.version < version && v.action !== 'edit').at(-1);
  if (!prev) return [];
  const own = versionUids(report, prev.version);
  const refs: ImageRef[] = [];
  const add = async (sopClassUid: string, recorded: string | null, uids: { sop: string; series: string }) => {
    const sop = recorded ?? uids.sop;
    // Objects published before their UIDs were derived (random UIDs): the index knows their series.
    const series = sop === uids.sop ? uids.series : (await findInstance(db, sop))?.series_instance_uid;
    if (series) refs.push({ sopClassUid, sopInstanceUid: sop, seriesInstanceUid: series });
  };
  await add(COMPREHENSIVE_3D_SR, prev.srSopInstanceUid, own.sr);
  await add(ENCAPSULATED_PDF, prev.pdfSopInstanceUid, own.pdf);
  // Its text rendition, made only when that version had regions: named once it is in the index.
  if (await findInstance(db, own.text.sop))
    refs.push({ sopClassUid: COMPREHENSIVE_3D_SR, sopInstanceUid: own.text.sop, seriesInstanceUid: own.text.series });
  return refs;
}

/**
 * What a published version says, rebuilt from its row (body, state, author and time, amendment
 * reason): the content its SR and PDF were written from, and the FHIR resources are mapped from.
 */
export async function versionContent(
  d: Pick<ReportNodeDeps, 'db' | 'node'>,
  report: Report,
  v: ReportVersion,
  analysis: Analysis,
): Promise<ReportContent> {
  const signer = v.action === 'sign' || v.action === 'amend' ? await signerOf(d, v.changedBy ?? 'unknown', v.changedAt) : null;
  return buildContent(d.db, analysis, v.body, {
    reportId: report.id,
    version: v.version,
    state: v.state,
    includeDisclaimer: report.includeAiDisclaimer,
    signer,
    amendmentReason: v.reason,
    predecessors: await predecessorsOf(d.db, report, v.version),
    createdAt: v.changedAt,
    node: nodeIdentity(d),
  });
}

/** One report.publish run. */
export async function publishReportVersion(d: ReportNodeDeps, reportId: number, version: number): Promise<ReportPublishResult> {
  const final = (why: string) => new JobError(why, { retryable: false });
  const report = await getReport(d.db, reportId);
  if (!report) throw final(`report ${reportId} does not exist`);
  const v = await getVersion(d.db, reportId, version);
  if (!v) throw final(`report ${reportId} has no version ${version}`);
  if (v.action === 'edit') throw final(`report ${reportId} v${version} is an edit: only drafts and signed versions are published`);
  if (v.srSopInstanceUid && v.pdfSopInstanceUid)
    return { reportId, version, srSopInstanceUid: v.srSopInstanceUid, pdfSopInstanceUid: v.pdfSopInstanceUid, already: true };
  const analysis = await getAnalysis(d.db, report.analysisId);
  if (!analysis) throw final(`the analysis of report ${reportId} is gone`);
  const content = await versionContent(d, report, v, analysis);
  let published: Published;
  try {
    published = await publishVersion(d, report, analysis, content, versionUids(report, version));
  } catch (err) {
    throw new JobError(`publishing report ${reportId} v${version} failed: ${(err as Error).message}`, {
      retryable: true,
      backoff: PUBLISH_BACKOFF,
      cause: err,
    });
  }
  await d.audit.record({
    actorType: 'system',
    actor: REPORT_PUBLISH_JOB,
    action: 'report.published',
    resourceType: 'report',
    resourceId: String(reportId),
    studyInstanceUid: report.studyInstanceUid,
    outcome: 'success',
    details: {
      version,
      state: v.state,
      sr: published.srSopInstanceUid,
      ...(published.textSrSopInstanceUid ? { text_sr: published.textSrSopInstanceUid } : {}),
      pdf: published.pdfSopInstanceUid,
    },
  });
  d.events?.emit('report-changed', {
    reportId,
    studyInstanceUid: report.studyInstanceUid,
    version,
    status: reportEventStatus(v.state),
    event: 'published',
  });
  return {
    reportId,
    version,
    srSopInstanceUid: published.srSopInstanceUid,
    pdfSopInstanceUid: published.pdfSopInstanceUid,
    already: false,
    timings: published.timings,
  };
}

export function publishJobHandler(d: ReportNodeDeps): JobHandler {
  return typedHandler<ReportPublishPayload, ReportPublishResult>(parsePayload, (job) =>
    publishReportVersion(d, job.payload.reportId, job.payload.version),
  );
}
