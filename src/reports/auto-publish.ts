import { getAnalysis, type Analysis } from '../analysis/analyses.js';
import type { Config } from '../config.js';
import type { Db, Trx } from '../db/connection.js';
import { JobError } from '../jobs/errors.js';
import type { JobQueue } from '../jobs/queue.js';
import type { JobRow } from '../jobs/types.js';
import { typedHandler, type JobHandlers } from '../jobs/worker.js';
import { forwardingHold } from './publish.js';
import { publishJobHandler, REPORT_PUBLISH_JOB } from './publish-job.js';
import { reportOfAnalysis } from './report-store.js';
import { createReport, type Actor, type WorkflowDeps } from './workflow.js';

/**
 * Auto-publish (AUTO_PUBLISH, on with AUTO_ANALYZE by default): an automatic analysis that
 * succeeds gets its draft report and the draft's SR and PDF in the study, with no one asking.
 * The analysis job queues `report.autodraft` {analysisId} in the transaction that stores its
 * outcome; that job drafts the report as the node itself (createReport: one report per analysis,
 * so a second node or a rerun after a crash finds the first), whose report.publish job then
 * publishes it. Forwarding rules with `aiResults` send both objects on like any AI result.
 *
 * Held back (the draft is not made; a person can still make it with POST /api/reports):
 * - a model that is not validated (its SHA-256 not trusted), unless MEDGEMMA_ALLOW_UNVALIDATED_MODEL;
 * - a blocking safety flag (BLOCKING_SAFETY_RULES).
 * GET /api/analysis/{id} says which (`auto_publish`).
 */

export const REPORT_AUTODRAFT_JOB = 'report.autodraft';

/** Who drafts an automatic report: the node, audited as a system actor. */
const AUTO_PUBLISH_ACTOR: Actor = { username: 'radiant-ai', role: 'service', system: true };

/**
 * Safety rules whose hit keeps a draft from leaving on its own (src/medgemma/safety-gate.ts):
 * - phi_echo: the model wrote the patient's identifiers back; they are redacted in what is
 *   published, but an answer that copies the header is one a person should read first;
 * - truncated: the answer hit the token limit, so findings or the impression may be missing;
 * - thinking_unterminated: reasoning text may have run into the answer.
 * Wording rules (definitive_diagnosis, certainty) are flagged in the draft for the reader, not held.
 */
export const BLOCKING_SAFETY_RULES: readonly string[] = ['phi_echo', 'truncated', 'thinking_unterminated'];

export interface AutoPublishConfig {
  /** AUTO_PUBLISH. */
  autoPublish: boolean;
  /** MEDGEMMA_ALLOW_UNVALIDATED_MODEL. */
  allowUnvalidatedModel: boolean;
}

export function autoPublishConfig(c: Config): AutoPublishConfig {
  return {
    autoPublish: c.analysis.autoPublish,
    allowUnvalidatedModel: c.medgemma.allowUnvalidatedModel,
  };
}

export type AutoPublishGate = { publish: true } | { publish: false; reason: string };

/** The gate of auto-publishing, on what the analysis recorded (pure). */
export function mayAutoPublish(a: Analysis, c: AutoPublishConfig): AutoPublishGate {
  // The rule that holds the objects from forwarding: the model recorded with the analysis is validated, or allowed.
  if (forwardingHold(a, c.allowUnvalidatedModel))
    return {
      publish: false,
      reason: `model ${a.model?.name ?? 'unknown'} is not validated (its SHA-256 is not trusted) and MEDGEMMA_ALLOW_UNVALIDATED_MODEL is false`,
    };
  const blocking = a.safetyFlags.filter((f) => BLOCKING_SAFETY_RULES.includes(f.rule));
  if (blocking.length) {
    const hits = [...new Set(blocking.map((f) => `${f.rule} (${typeof f.target === 'number' ? `finding ${f.target + 1}` : f.target})`))];
    return { publish: false, reason: `blocking safety flag${hits.length > 1 ? 's' : ''}: ${hits.join(', ')}` };
  }
  return { publish: true };
}

export interface AutoPublishStatus {
  /** off: not for this analysis; held: the gate said no; pending: on its way; published: in the study. */
  status: 'off' | 'held' | 'pending' | 'published';
  reason: string | null;
  reportId: number | null;
}

/** What auto-publish did or will do with an analysis, for GET /api/analysis/{id}. */
export async function autoPublishStatus(db: Db, a: Analysis, c: AutoPublishConfig): Promise<AutoPublishStatus> {
  const off = (reason: string): AutoPublishStatus => ({ status: 'off', reason, reportId: null });
  if (a.trigger === 'manual') return off('requested by a person: the report is drafted on request (POST /api/reports)');
  if (!c.autoPublish) return off('AUTO_PUBLISH is off');
  const report = await reportOfAnalysis(db, a.id);
  if (report?.srSopInstanceUid) return { status: 'published', reason: null, reportId: report.id };
  if (a.status === 'queued' || a.status === 'running') return { status: 'pending', reason: 'the analysis is not finished', reportId: null };
  if (a.status !== 'succeeded') return off(`the analysis ${a.status}`);
  const gate = mayAutoPublish(a, c);
  if (!gate.publish && !report) return { status: 'held', reason: gate.reason, reportId: null };
  return { status: 'pending', reason: report ? 'publishing the draft' : 'drafting the report', reportId: report?.id ?? null };
}

/** Queues the drafting of an automatic analysis's report, in the transaction that stores its outcome. */
export async function enqueueAutodraft(trx: Trx, queue: JobQueue, analysisId: number): Promise<JobRow> {
  return queue.enqueueIn(trx, { kind: REPORT_AUTODRAFT_JOB, payload: { analysisId }, dedupeKey: `report.autodraft:${analysisId}` });
}

interface AutodraftPayload {
  analysisId: number;
}

interface AutodraftResult {
  analysisId: number;
  status: 'drafted' | 'exists' | 'held' | 'skipped';
  reason?: string;
  reportId?: number;
}

function parseAutodraft(p: unknown): AutodraftPayload {
  const id = (p as { analysisId?: unknown } | null)?.analysisId;
  if (typeof id !== 'number' || !Number.isInteger(id) || id <= 0) throw new TypeError('analysisId must be a positive integer');
  return { analysisId: id };
}

/** One report.autodraft run; safe to repeat (one report per analysis). */
async function autodraft(d: WorkflowDeps, c: AutoPublishConfig, analysisId: number): Promise<AutodraftResult> {
  const a = await getAnalysis(d.db, analysisId);
  if (!a) throw new JobError(`analysis ${analysisId} does not exist`, { retryable: false });
  if (a.status !== 'succeeded' || a.trigger === 'manual')
    return { analysisId, status: 'skipped', reason: `a ${a.trigger} analysis that is ${a.status}` };
  const gate = mayAutoPublish(a, c);
  if (!gate.publish) {
    await d.audit.record({
      actorType: 'system',
      actor: AUTO_PUBLISH_ACTOR.username,
      action: 'report.auto_publish',
      resourceType: 'analysis',
      resourceId: String(analysisId),
      studyInstanceUid: a.studyInstanceUid,
      outcome: 'failure',
      details: { held: gate.reason },
    });
    d.log.info({ analysis: analysisId, reason: gate.reason }, 'auto-publish held');
    return { analysisId, status: 'held', reason: gate.reason };
  }
  const { report, created } = await createReport(
    d,
    { studyInstanceUid: a.studyInstanceUid, analysisId, includeAiDisclaimer: true },
    AUTO_PUBLISH_ACTOR,
  );
  return { analysisId, status: created ? 'drafted' : 'exists', reportId: report.id };
}

/** The report kinds, for the node's service lane: publishing versions and automatic drafts. */
export function reportJobHandlers(d: WorkflowDeps, c: AutoPublishConfig): JobHandlers {
  return {
    [REPORT_PUBLISH_JOB]: publishJobHandler(d),
    [REPORT_AUTODRAFT_JOB]: typedHandler<AutodraftPayload, AutodraftResult>(parseAutodraft, (job) =>
      autodraft(d, c, job.payload.analysisId),
    ),
  };
}
