import type { Trx } from '../db/connection.js';
import { insertDelivery, integrationsFor, setDeliveryJob, type IntegrationTrigger } from '../catalog/integrations.js';
import type { JobQueue } from '../jobs/queue.js';

/**
 * What a report change sends to the hospital's systems: one delivery (a row of the delivery log)
 * and one job per integration that sends on the change's trigger, both in the transaction that
 * writes the report version, so a version is never committed without its deliveries and a RIS
 * that is down never holds up the change. Kinds: 'hl7-mllp' (the `hl7.send` job,
 * src/integrations/hl7-send.ts); a 'fhir' integration's push plugs in here as a `fhir.push` job.
 */

export const HL7_SEND_JOB = 'hl7.send';

export interface DeliveryJobPayload {
  deliveryId: number;
}

export interface DeliveryOptions {
  /** Attempts of each delivery's job (HL7_MAX_ATTEMPTS); a delivery out of attempts is the dead letter. */
  maxAttempts: number;
}

export interface ReportChange {
  reportId: number;
  version: number;
  trigger: IntegrationTrigger;
}

/** Queues a delivery job for the delivery row, in `trx`; answers the job's id. */
export async function queueDeliveryJob(trx: Trx, queue: JobQueue, deliveryId: number, o: DeliveryOptions): Promise<number> {
  const job = await queue.enqueueIn<DeliveryJobPayload>(trx, {
    kind: HL7_SEND_JOB,
    payload: { deliveryId },
    dedupeKey: `${HL7_SEND_JOB}:${deliveryId}`,
    maxAttempts: o.maxAttempts,
  });
  return job.id;
}

/** The deliveries of a report change, queued in its transaction; answers how many. */
export async function queueReportDeliveries(trx: Trx, queue: JobQueue, change: ReportChange, o: DeliveryOptions): Promise<number> {
  const targets = await integrationsFor(trx, 'hl7-mllp', change.trigger);
  for (const integration of targets) {
    const deliveryId = await insertDelivery(trx, {
      integrationId: integration.id,
      reportId: change.reportId,
      reportVersion: change.version,
      trigger: change.trigger,
    });
    await setDeliveryJob(trx, deliveryId, await queueDeliveryJob(trx, queue, deliveryId, o));
  }
  return targets.length;
}
