import type { Db, Trx } from '../db/connection.js';
import { countOf, isoTimestamp } from './sql.js';

/**
 * The hospital integrations (migrations/021_integrations.ts): outbound endpoints results are sent
 * to, and the delivery log of what was sent to each. What an integration sends and when is the
 * business of src/integrations; these rows say where, and what came of each delivery.
 */

export const INTEGRATION_KINDS = ['hl7-mllp', 'fhir'] as const;
export type IntegrationKind = (typeof INTEGRATION_KINDS)[number];

/** sign: signed and amended versions; draft: the AI draft when it is published. */
export const INTEGRATION_TRIGGERS = ['sign', 'draft'] as const;
export type IntegrationTrigger = (typeof INTEGRATION_TRIGGERS)[number];

export interface Integration {
  id: number;
  name: string;
  kind: IntegrationKind;
  enabled: boolean;
  triggers: IntegrationTrigger[];
  timeoutMs: number;
  /** hl7-mllp: the RIS's MLLP listener. */
  host: string | null;
  port: number | null;
  tls: boolean;
  /** hl7-mllp: MSH-5 and MSH-6. */
  receivingApplication: string | null;
  receivingFacility: string | null;
  /** fhir: the server's base URL. */
  baseUrl: string | null;
  /** fhir: sent as "Authorization: Bearer …"; never shown by the API. */
  bearerToken: string | null;
}

export type IntegrationInput = Omit<Integration, 'id'>;

interface Row {
  id: number | string;
  name: string;
  kind: IntegrationKind;
  enabled: boolean | number;
  triggers: string;
  timeout_ms: number | string;
  host: string | null;
  port: number | string | null;
  tls: boolean | number;
  receiving_application: string | null;
  receiving_facility: string | null;
  base_url: string | null;
  bearer_token: string | null;
}

function parseTriggers(text: string): IntegrationTrigger[] {
  const all = JSON.parse(text) as unknown;
  return Array.isArray(all) ? all.filter((t): t is IntegrationTrigger => (INTEGRATION_TRIGGERS as readonly unknown[]).includes(t)) : [];
}

function fromRow(r: Row): Integration {
  return {
    id: Number(r.id),
    name: r.name,
    kind: r.kind,
    enabled: Boolean(r.enabled),
    triggers: parseTriggers(r.triggers),
    timeoutMs: Number(r.timeout_ms),
    host: r.host,
    port: r.port === null ? null : Number(r.port),
    tls: Boolean(r.tls),
    receivingApplication: r.receiving_application,
    receivingFacility: r.receiving_facility,
    baseUrl: r.base_url,
    bearerToken: r.bearer_token,
  };
}

function toRow(n: Partial<IntegrationInput>): Partial<Row> {
  const out: Partial<Row> = {};
  if (n.name !== undefined) out.name = n.name;
  if (n.kind !== undefined) out.kind = n.kind;
  if (n.enabled !== undefined) out.enabled = n.enabled;
  if (n.triggers !== undefined) out.triggers = JSON.stringify([...new Set(n.triggers)]);
  if (n.timeoutMs !== undefined) out.timeout_ms = n.timeoutMs;
  if (n.host !== undefined) out.host = n.host;
  if (n.port !== undefined) out.port = n.port;
  if (n.tls !== undefined) out.tls = n.tls;
  if (n.receivingApplication !== undefined) out.receiving_application = n.receivingApplication;
  if (n.receivingFacility !== undefined) out.receiving_facility = n.receivingFacility;
  if (n.baseUrl !== undefined) out.base_url = n.baseUrl;
  if (n.bearerToken !== undefined) out.bearer_token = n.bearerToken;
  return out;
}

export async function listIntegrations(db: Db): Promise<Integration[]> {
  return ((await db('integrations').orderBy('name')) as Row[]).map(fromRow);
}

export async function getIntegration(db: Db | Trx, id: number): Promise<Integration | undefined> {
  const r = (await db('integrations').where({ id }).first()) as Row | undefined;
  return r ? fromRow(r) : undefined;
}

/**
 * The enabled integrations of `kind` that send on `trigger`: what a report change delivers to
 * (src/integrations/deliveries.ts queues one delivery per integration found, in the change's
 * own transaction).
 */
export async function integrationsFor(db: Db | Trx, kind: IntegrationKind, trigger: IntegrationTrigger): Promise<Integration[]> {
  const rows = ((await db('integrations').where({ kind, enabled: true }).orderBy('id')) as Row[]).map(fromRow);
  return rows.filter((i) => i.triggers.includes(trigger));
}

export async function createIntegration(db: Db, n: IntegrationInput): Promise<Integration> {
  const ts = new Date().toISOString();
  const [row] = (await db('integrations')
    .insert({ ...toRow(n), created_at: ts, updated_at: ts })
    .returning('*')) as Row[];
  return fromRow(row!);
}

export async function updateIntegration(db: Db, id: number, n: Partial<IntegrationInput>): Promise<Integration | undefined> {
  const changed = await db('integrations')
    .where({ id })
    .update({ ...toRow(n), updated_at: new Date().toISOString() });
  return changed ? getIntegration(db, id) : undefined;
}

/** Its delivery log goes with it (ON DELETE CASCADE). */
export async function deleteIntegration(db: Db, id: number): Promise<boolean> {
  return (await db('integrations').where({ id }).delete()) > 0;
}

// ---------------------------------------------------------------------------------------------
// The delivery log

export type DeliveryStatus = 'queued' | 'delivered' | 'failed';

export interface Delivery {
  id: number;
  integrationId: number;
  reportId: number | null;
  reportVersion: number | null;
  trigger: IntegrationTrigger;
  status: DeliveryStatus;
  attempts: number;
  jobId: number | null;
  messageId: string | null;
  /** The message as sent (PHI). */
  payload: string | null;
  /** The peer's answer as received. */
  response: string | null;
  responseCode: string | null;
  error: string | null;
  createdAt: string;
  lastAttemptAt: string | null;
  deliveredAt: string | null;
}

interface DeliveryRow {
  id: number | string;
  integration_id: number | string;
  report_id: number | string | null;
  report_version: number | string | null;
  trigger: IntegrationTrigger;
  status: DeliveryStatus;
  attempts: number | string;
  job_id: number | string | null;
  message_id: string | null;
  payload: string | null;
  response: string | null;
  response_code: string | null;
  error: string | null;
  created_at: string | Date;
  last_attempt_at: string | Date | null;
  delivered_at: string | Date | null;
}

const num = (v: number | string | null): number | null => (v === null ? null : Number(v));

function deliveryFromRow(r: DeliveryRow): Delivery {
  return {
    id: Number(r.id),
    integrationId: Number(r.integration_id),
    reportId: num(r.report_id),
    reportVersion: num(r.report_version),
    trigger: r.trigger,
    status: r.status,
    attempts: Number(r.attempts),
    jobId: num(r.job_id),
    messageId: r.message_id,
    payload: r.payload,
    response: r.response,
    responseCode: r.response_code,
    error: r.error,
    createdAt: isoTimestamp(r.created_at)!,
    lastAttemptAt: isoTimestamp(r.last_attempt_at),
    deliveredAt: isoTimestamp(r.delivered_at),
  };
}

/** A queued delivery, in the transaction of the change that causes it. */
export async function insertDelivery(
  trx: Db | Trx,
  d: { integrationId: number; reportId: number | null; reportVersion: number | null; trigger: IntegrationTrigger },
  now = new Date(),
): Promise<number> {
  const [row] = (await trx('integration_deliveries')
    .insert({
      integration_id: d.integrationId,
      report_id: d.reportId,
      report_version: d.reportVersion,
      trigger: d.trigger,
      status: 'queued',
      attempts: 0,
      created_at: now.toISOString(),
    })
    .returning('id')) as Array<{ id: number | string } | number>;
  return Number(typeof row === 'object' ? row.id : row);
}

export async function setDeliveryJob(trx: Db | Trx, id: number, jobId: number): Promise<void> {
  await trx('integration_deliveries').where({ id }).update({ job_id: jobId });
}

export async function getDelivery(db: Db, id: number): Promise<Delivery | undefined> {
  const r = (await db('integration_deliveries').where({ id }).first()) as DeliveryRow | undefined;
  return r ? deliveryFromRow(r) : undefined;
}

/** The message as built on the first attempt: retries send the same one (same MSH-10). */
export async function setDeliveryPayload(db: Db, id: number, messageId: string, payload: string): Promise<void> {
  await db('integration_deliveries').where({ id }).whereNull('payload').update({ message_id: messageId, payload });
}

/** One attempt's outcome: delivered, still queued (to be retried) or failed (the dead letter). */
export async function recordAttempt(
  db: Db,
  id: number,
  o: { status: DeliveryStatus; response: string | null; responseCode: string | null; error: string | null },
  now = new Date(),
): Promise<void> {
  const ts = now.toISOString();
  await db('integration_deliveries')
    .where({ id })
    .update({
      status: o.status,
      attempts: db.raw('attempts + 1'),
      response: o.response,
      response_code: o.responseCode,
      error: o.error,
      last_attempt_at: ts,
      ...(o.status === 'delivered' ? { delivered_at: ts } : {}),
    });
}

/** A failed delivery back to queued with its new job, in one transaction; false when it was not failed. */
export async function requeueFailedDelivery(trx: Db | Trx, id: number, jobId: () => Promise<number>): Promise<boolean> {
  const n = await trx('integration_deliveries').where({ id, status: 'failed' }).update({ status: 'queued', error: null });
  if (n === 0) return false;
  await setDeliveryJob(trx, id, await jobId());
  return true;
}

export async function listDeliveries(
  db: Db,
  q: { integrationId: number; status?: DeliveryStatus; limit: number; offset: number },
): Promise<{ total: number; items: Delivery[] }> {
  const base = db('integration_deliveries').where({ integration_id: q.integrationId });
  if (q.status) base.where({ status: q.status });
  const total = await countOf(base);
  const rows = (await base.clone().orderBy('id', 'desc').limit(q.limit).offset(q.offset)) as DeliveryRow[];
  return { total, items: rows.map(deliveryFromRow) };
}
