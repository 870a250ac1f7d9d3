import { randomBytes } from 'node:crypto';
import type { Backoff } from '../backoff.js';
import type { Logger } from '../logger.js';
import { getAnalysis } from '../analysis/analyses.js';
import { getDelivery, getIntegration, setDeliveryPayload, type Integration } from '../catalog/integrations.js';
import { orderForAccession } from '../catalog/orders.js';
import { JobError } from '../jobs/errors.js';
import type { JobRow } from '../jobs/types.js';
import { typedHandler, type JobHandlers } from '../jobs/worker.js';
import { buildContent } from '../reports/content-builder.js';
import { nodeIdentity, signerOf, type ReportNodeDeps } from '../reports/publish-job.js';
import { getReport, getVersion } from '../reports/report-store.js';
import { procedureCode } from '../reports/sr/codes.js';
import { HL7_SEND_JOB, parseDeliveryPayload, settleAttempt, type DeliveryJobPayload } from './deliveries.js';
import { sendMllp, MllpError, type Ack } from './hl7/mllp-client.js';
import { buildOru, type OruInput } from './hl7/oru.js';

/**
 * The `hl7.send` job: one delivery of the delivery log to its RIS. The ORU^R01 is built from the
 * report version on the first attempt and stored with the delivery (retries send the same message,
 * the same MSH-10); each attempt's ACK (or why there was none) is recorded on the delivery.
 * AA: delivered. AR: rejected, not retried (the dead letter at once). AE, no ACK in time, no
 * connection: retried with back-off until the job's attempts run out (then the dead letter).
 * The message is PHI: it goes to the index, never to the log.
 */

export interface Hl7SendDeps extends ReportNodeDeps {
  log: Logger;
  /** Back-off between attempts (HL7_RETRY_BASE_MS). */
  retry: Backoff;
}

export interface Hl7SendResult {
  deliveryId: number;
  ack: string;
}

/** MSH-10 (ST, 20 characters at most): the delivery's id and a random part, unique across databases. */
export function newControlId(prefix: string | number): string {
  return `R${prefix}.${randomBytes(4).toString('hex')}`.slice(0, 20);
}

/** The ORU^R01 of a report version, for `integration`. */
export async function oruFor(
  d: ReportNodeDeps,
  integration: Integration,
  reportId: number,
  version: number,
  controlId: string,
): Promise<string> {
  const final = (why: string) => new JobError(why, { retryable: false });
  const report = await getReport(d.db, reportId);
  if (!report) throw final(`report ${reportId} does not exist`);
  const v = await getVersion(d.db, reportId, version);
  if (!v) throw final(`report ${reportId} has no version ${version}`);
  const analysis = await getAnalysis(d.db, report.analysisId);
  if (!analysis) throw final(`the analysis of report ${reportId} is gone`);
  const signer = v.action === 'sign' || v.action === 'amend' ? await signerOf(d, v.changedBy ?? 'unknown', v.changedAt) : null;
  const c = await buildContent(d.db, analysis, v.body, {
    reportId,
    version,
    state: v.state,
    includeDisclaimer: report.includeAiDisclaimer,
    signer,
    amendmentReason: v.reason,
    predecessors: [],
    createdAt: v.changedAt,
    node: nodeIdentity(d),
  });
  const order = c.study.accessionNumber ? await orderForAccession(d.db, c.study.accessionNumber) : undefined;
  const input: OruInput = {
    controlId,
    at: new Date(),
    sendingFacility: d.node.institutionName ?? d.node.aeTitle,
    receivingApplication: integration.receivingApplication,
    receivingFacility: integration.receivingFacility,
    patient: c.patient,
    study: c.study,
    order: order ? { placerOrderNumber: order.placerOrderNumber, fillerOrderNumber: order.fillerOrderNumber } : null,
    // The SR's procedure code (modality and body part), so the RIS and the SR name the same procedure.
    procedure: { code: procedureCode(c.modality, c.bodyPart), text: c.procedure },
    state: c.state,
    versionAt: v.changedAt,
    signer: signer && { username: signer.username, name: signer.name },
    findings: c.findings.map((f) => ({
      number: f.number,
      description: f.description,
      anatomicalLocation: f.anatomicalLocation,
      laterality: f.laterality,
      confidence: f.confidence,
      recommendation: f.recommendation,
      author: f.author ?? 'ai',
    })),
    impression: c.impression,
    disclaimer: c.disclaimer,
  };
  return buildOru(input);
}

function target(i: Integration) {
  if (!i.host || !i.port) throw new JobError(`integration ${i.id} has no host and port`, { retryable: false });
  return { host: i.host, port: i.port, tls: i.tls, timeoutMs: i.timeoutMs };
}

async function sendDelivery(d: Hl7SendDeps, job: JobRow<DeliveryJobPayload>): Promise<Hl7SendResult> {
  const { db } = d;
  const id = job.payload.deliveryId;
  const final = (why: string) => new JobError(why, { retryable: false });
  let delivery = await getDelivery(db, id);
  if (!delivery) throw final(`delivery ${id} does not exist (its integration was removed)`);
  if (delivery.status === 'delivered') return { deliveryId: id, ack: delivery.responseCode ?? 'AA' };
  const integration = await getIntegration(db, delivery.integrationId);
  if (!integration) throw final(`integration ${delivery.integrationId} was removed`);
  if (delivery.payload === null) {
    if (delivery.reportId === null || delivery.reportVersion === null) throw final(`delivery ${id} names no report version`);
    const controlId = newControlId(id);
    await setDeliveryPayload(db, id, controlId, await oruFor(d, integration, delivery.reportId, delivery.reportVersion, controlId));
    delivery = (await getDelivery(db, id))!;
  }
  const attempt = { delivery, integration, job, actor: HL7_SEND_JOB };
  const give = async (why: string, retryable: boolean, ack: Ack | null) =>
    (await settleAttempt(d, attempt, { response: ack?.raw ?? null, code: ack?.code ?? null, error: why, retryable, backoff: d.retry }))!;
  let ack: Ack;
  try {
    ack = await sendMllp(target(integration), delivery.payload!);
  } catch (err) {
    if (!(err instanceof MllpError)) throw err;
    throw await give(err.message, true, null);
  }
  if (ack.controlId && ack.controlId !== delivery.messageId)
    throw await give(`the ACK acknowledges ${ack.controlId}, not ${delivery.messageId}`, true, ack);
  if (ack.code === 'AA' || ack.code === 'CA') {
    await settleAttempt(d, attempt, { response: ack.raw, code: ack.code, error: null });
    return { deliveryId: id, ack: ack.code };
  }
  const why = `${ack.code}${ack.text ? `: ${ack.text}` : ''}`;
  // AR (CR): the peer rejects the message itself; sending it again changes nothing.
  throw await give(why, !(ack.code === 'AR' || ack.code === 'CR'), ack);
}

export function hl7JobHandlers(d: Hl7SendDeps): JobHandlers {
  return {
    [HL7_SEND_JOB]: typedHandler<DeliveryJobPayload, Hl7SendResult>(parseDeliveryPayload, (job) => sendDelivery(d, job)),
  };
}
