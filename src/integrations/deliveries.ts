import type { AuditLog } from '../audit/audit.js';
import type { Backoff } from '../backoff.js';
import type { Config } from '../config.js';
import type { Db, Trx } from '../db/connection.js';
import type { EventBus } from '../events.js';
import type { Logger } from '../logger.js';
import {
  INTEGRATION_KINDS,
  insertDelivery,
  integrationsFor,
  recordAttempt,
  setDeliveryJob,
  type Delivery,
  type Integration,
  type IntegrationKind,
  type IntegrationTrigger,
} from '../catalog/integrations.js';
import { JobError } from '../jobs/errors.js';
import type { JobQueue } from '../jobs/queue.js';
import type { ReportState } from '../reports/content.js';
import type { PublishedHook } from '../reports/publish.js';

/**
 * What a report version sends to the hospital's systems, decided in one place: when the
 * version's SR and PDF are recorded (the report.publish job, src/reports/publish.ts), one
 * delivery (a row of the delivery log) and one job per enabled integration whose triggers name
 * the version are queued in that same transaction. Recorded, not written: a FHIR push carries
 * the PDF and the SR, and the RIS hears of a version when the EHR does, never of one whose DICOM
 * objects could not be made. A peer that is down never holds up ingest, analysis or signing:
 * each delivery is a job of the one runner, retried with back-off until its attempts run out
 * (then it is the dead letter: the delivery `failed`, retried through the API).
 * Kinds: 'hl7-mllp' (the `hl7.send` job, src/integrations/hl7-send.ts), 'fhir' (the `fhir.push`
 * job, src/fhir/push.ts).
 */

export const HL7_SEND_JOB = 'hl7.send';
export const FHIR_PUSH_JOB = 'fhir.push';

/** The job kind that sends a delivery of each kind of integration. */
export const DELIVERY_JOBS: Readonly<Record<IntegrationKind, string>> = { 'hl7-mllp': HL7_SEND_JOB, fhir: FHIR_PUSH_JOB };

export interface DeliveryJobPayload {
  deliveryId: number;
}

export interface DeliveryOptions {
  /** Attempts of each delivery's job per kind (HL7_MAX_ATTEMPTS, FHIR_PUSH_MAX_ATTEMPTS); then the dead letter. */
  maxAttempts: Readonly<Record<IntegrationKind, number>>;
}

export function deliveryOptions(config: Pick<Config, 'hl7' | 'fhirPush'>): DeliveryOptions {
  return { maxAttempts: { 'hl7-mllp': config.hl7.maxAttempts, fhir: config.fhirPush.maxAttempts } };
}

interface ReportChange {
  reportId: number;
  version: number;
  trigger: IntegrationTrigger;
}

/** Which trigger a published version answers to: the AI draft, or a signed (amended) version. */
function triggerOf(state: ReportState): IntegrationTrigger | undefined {
  if (state === 'draft') return 'draft';
  if (state === 'final' || state === 'amended') return 'sign';
  // Edits (preliminary) are not published, so never delivered.
  return undefined;
}

export function parseDeliveryPayload(p: unknown): DeliveryJobPayload {
  const id = (p as { deliveryId?: unknown } | null)?.deliveryId;
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 1) throw new TypeError('deliveryId must be a positive integer');
  return { deliveryId: id };
}

/** Queues the job that sends the delivery row, in `trx`; answers the job's id. */
export async function queueDeliveryJob(
  trx: Db | Trx,
  queue: JobQueue,
  integration: Pick<Integration, 'kind'>,
  deliveryId: number,
  o: DeliveryOptions,
): Promise<number> {
  const kind = DELIVERY_JOBS[integration.kind];
  const job = await queue.enqueueIn<DeliveryJobPayload>(trx, {
    kind,
    payload: { deliveryId },
    dedupeKey: `${kind}:${deliveryId}`,
    maxAttempts: o.maxAttempts[integration.kind],
  });
  return job.id;
}

/** The deliveries of a report change, queued in its transaction; answers the job kinds queued. */
async function queueReportDeliveries(trx: Trx, queue: JobQueue, change: ReportChange, o: DeliveryOptions): Promise<Set<string>> {
  const kinds = new Set<string>();
  for (const kind of INTEGRATION_KINDS)
    for (const integration of await integrationsFor(trx, kind, change.trigger)) {
      const deliveryId = await insertDelivery(trx, {
        integrationId: integration.id,
        reportId: change.reportId,
        reportVersion: change.version,
        trigger: change.trigger,
      });
      await setDeliveryJob(trx, deliveryId, await queueDeliveryJob(trx, queue, integration, deliveryId, o));
      kinds.add(DELIVERY_JOBS[kind]);
    }
  return kinds;
}

/**
 * The hook publishing runs in the transaction that records a version's SR and PDF: that
 * version's deliveries. An AI draft that forwarding rules hold (an unvalidated model, not
 * allowed) is delivered nowhere either; a signed version is the radiologist's and always is.
 */
export function reportDeliveriesHook(p: { queue: JobQueue; events?: EventBus; options: DeliveryOptions }): PublishedHook {
  return async (trx, v) => {
    const trigger = triggerOf(v.state);
    if (!trigger || (trigger === 'draft' && v.forwardingHeld)) return;
    const kinds = await queueReportDeliveries(trx, p.queue, { reportId: v.reportId, version: v.version, trigger }, p.options);
    // Wake the service worker once the jobs are committed (a hint: it polls as well).
    if (kinds.size)
      void trx.executionPromise.then(
        () => {
          for (const kind of kinds) p.events?.emit('job-due', { kind, runAt: new Date() });
        },
        () => undefined,
      );
  };
}

interface AttemptDeps {
  db: Db;
  audit: AuditLog;
  log: Logger;
}

/** One attempt's answer from the peer, or why there was none. */
interface AttemptOutcome {
  /** The peer's answer as received (an ACK, a FHIR transaction-response or OperationOutcome). */
  response: string | null;
  /** MSA-1, or the HTTP status. */
  code: string | null;
  /** Why it failed; null when delivered. */
  error: string | null;
}

/**
 * Records one attempt of a delivery (its row and an `integration.delivery` audit row, never the
 * message itself): delivered, or failed: still queued while retryable attempts remain, else the
 * dead letter. A failure answers the JobError for the job to throw (retried with `backoff`).
 */
export async function settleAttempt(
  d: AttemptDeps,
  a: { delivery: Delivery; integration: Integration; job: { attempts: number; maxAttempts: number }; actor: string },
  o: AttemptOutcome & { retryable?: boolean; backoff?: Backoff; details?: Record<string, unknown> },
): Promise<JobError | undefined> {
  const { delivery, integration } = a;
  const delivered = o.error === null;
  const dead = !delivered && (!o.retryable || a.job.attempts >= a.job.maxAttempts);
  await recordAttempt(d.db, delivery.id, {
    status: delivered ? 'delivered' : dead ? 'failed' : 'queued',
    response: o.response,
    responseCode: o.code,
    error: o.error,
  });
  await d.audit.record({
    actorType: 'system',
    actor: a.actor,
    action: 'integration.delivery',
    resourceType: 'integration',
    resourceId: String(integration.id),
    outcome: delivered ? 'success' : 'failure',
    details: {
      kind: integration.kind,
      delivery: delivery.id,
      report: delivery.reportId,
      version: delivery.reportVersion,
      code: o.code,
      ...(delivered ? { messageId: delivery.messageId } : { error: o.error, dead }),
      ...o.details,
    },
  });
  const facts = { integration: integration.id, kind: integration.kind, delivery: delivery.id, code: o.code };
  if (delivered) {
    d.log.info(facts, 'delivered');
    return undefined;
  }
  d.log.warn({ ...facts, dead }, 'delivery failed');
  return new JobError(`delivery ${delivery.id} to integration ${integration.id} (${integration.kind}): ${o.error}`, {
    retryable: o.retryable ?? false,
    ...(o.retryable && o.backoff ? { backoff: o.backoff } : {}),
  });
}
