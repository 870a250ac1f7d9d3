import type { RouterInstance } from '@koa/router';
import { z } from 'zod';
import { parsePk } from '../../records/schemas.js';
import {
  createIntegration,
  deleteIntegration,
  getDelivery,
  getIntegration,
  INTEGRATION_TRIGGERS,
  listDeliveries,
  listIntegrations,
  requeueFailedDelivery,
  updateIntegration,
  type Delivery,
  type Integration,
  type IntegrationInput,
} from '../../catalog/integrations.js';
import { isUniqueViolation } from '../../catalog/sql.js';
import { DELIVERY_JOBS, deliveryOptions, queueDeliveryJob } from '../../integrations/deliveries.js';
import { testIntegration } from '../../integrations/test-connection.js';
import { readJson } from '../body.js';
import { HttpError } from '../errors.js';
import type { RouteDeps } from '../deps.js';
import type { AppContext, AppState } from '../state.js';
import { documentRoutes, E, GUARDED, idParams, json, ok, secured } from '../api-doc.js';

const name = z.string().trim().min(1).max(128);
const triggers = z.array(z.enum(INTEGRATION_TRIGGERS)).min(1);
const timeoutMs = z.number().int().min(100).max(60_000);
const host = z
  .string()
  .trim()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z0-9.:[\]_-]+$/, 'host name or IP address');
const port = z.number().int().min(1).max(65535);
/** HD namespace ID (MSH-5, MSH-6): printable, no HL7 delimiters. */
const hd = z
  .string()
  .trim()
  .max(227)
  .regex(/^[^|^~\\&\x00-\x1f]*$/, 'no HL7 delimiters (| ^ ~ \\ &)')
  .nullable();
const baseUrl = z.url({ protocol: /^https?$/ }).max(1024);
/** Sent as "Authorization: Bearer …"; never read back. */
const bearerToken = z
  .string()
  .max(8192)
  .regex(/^[\x21-\x7e]+$/, 'a token: printable ASCII without spaces')
  .nullable();

const hl7Body = z.strictObject({
  kind: z.literal('hl7-mllp'),
  name,
  enabled: z.boolean().default(true),
  triggers: triggers.default(['sign']),
  timeout_ms: timeoutMs.default(10_000),
  host,
  port,
  tls: z.boolean().default(false),
  receiving_application: hd.default(null),
  receiving_facility: hd.default(null),
});
const fhirBody = z.strictObject({
  kind: z.literal('fhir'),
  name,
  enabled: z.boolean().default(true),
  triggers: triggers.default(['sign']),
  timeout_ms: timeoutMs.default(10_000),
  base_url: baseUrl,
  bearer_token: bearerToken.default(null),
});
const createBody = z.discriminatedUnion('kind', [hl7Body, fhirBody]);
const updateBody = z.strictObject({
  name: name.optional(),
  enabled: z.boolean().optional(),
  triggers: triggers.optional(),
  timeout_ms: timeoutMs.optional(),
  host: host.optional(),
  port: port.optional(),
  tls: z.boolean().optional(),
  receiving_application: hd.optional(),
  receiving_facility: hd.optional(),
  base_url: baseUrl.optional(),
  bearer_token: bearerToken.optional(),
});
const HL7_ONLY = ['host', 'port', 'tls', 'receiving_application', 'receiving_facility'] as const;
const FHIR_ONLY = ['base_url', 'bearer_token'] as const;

const deliveriesQuery = z.object({
  status: z.enum(['queued', 'delivered', 'failed']).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
  offset: z.coerce.number().int().min(0).default(0),
});

function toInput(b: z.infer<typeof updateBody>): Partial<IntegrationInput> {
  const out: Partial<IntegrationInput> = {};
  if (b.name !== undefined) out.name = b.name;
  if (b.enabled !== undefined) out.enabled = b.enabled;
  if (b.triggers !== undefined) out.triggers = b.triggers;
  if (b.timeout_ms !== undefined) out.timeoutMs = b.timeout_ms;
  if (b.host !== undefined) out.host = b.host;
  if (b.port !== undefined) out.port = b.port;
  if (b.tls !== undefined) out.tls = b.tls;
  if (b.receiving_application !== undefined) out.receivingApplication = b.receiving_application || null;
  if (b.receiving_facility !== undefined) out.receivingFacility = b.receiving_facility || null;
  if (b.base_url !== undefined) out.baseUrl = b.base_url;
  if (b.bearer_token !== undefined) out.bearerToken = b.bearer_token;
  return out;
}

function view(i: Integration) {
  const common = { id: i.id, name: i.name, kind: i.kind, enabled: i.enabled, triggers: i.triggers, timeout_ms: i.timeoutMs };
  if (i.kind === 'fhir')
    // Whether a token is set, never the token.
    return { ...common, base_url: i.baseUrl, bearer_token_set: i.bearerToken !== null };
  return {
    ...common,
    host: i.host,
    port: i.port,
    tls: i.tls,
    receiving_application: i.receivingApplication,
    receiving_facility: i.receivingFacility,
  };
}

function deliveryView(d: Delivery) {
  return {
    id: d.id,
    integration_id: d.integrationId,
    report_id: d.reportId,
    report_version: d.reportVersion,
    trigger: d.trigger,
    status: d.status,
    dead_letter: d.status === 'failed',
    attempts: d.attempts,
    job_id: d.jobId,
    message_id: d.messageId,
    message: d.payload,
    response_code: d.responseCode,
    response: d.response,
    error: d.error,
    created_at: d.createdAt,
    last_attempt_at: d.lastAttemptAt,
    delivered_at: d.deliveredAt,
  };
}

/**
 * /api/integrations: the hospital systems results are sent to (an HL7 v2 RIS over MLLP, a FHIR
 * server): CRUD, the test button, the delivery log with its dead letters, and retrying one. Admin
 * only (`nodes:manage`): an integration decides where patient data goes. The delivery log shows
 * the messages as sent (PHI), so every read is audited.
 */
export function registerIntegrationRoutes(r: RouterInstance<AppState>, deps: RouteDeps): void {
  const { db, security, queue, config, events } = deps;
  const guard = (action: string) => security.guard('nodes:manage', action, 'integration');
  const notFound = () => new HttpError(404, 'not_found', 'integration not found');
  const conflict = (err: unknown) =>
    isUniqueViolation(err) ? new HttpError(409, 'integration_exists', 'an integration with this name exists') : err;
  const load = async (ctx: AppContext): Promise<Integration> => {
    const id = parsePk(ctx.params.id, 'integration');
    ctx.state.audit = { resourceId: String(id) };
    const i = await getIntegration(db, id);
    if (!i) throw notFound();
    return i;
  };

  r.get('/api/integrations', guard('integration.list'), async (ctx: AppContext) => {
    ctx.body = { items: (await listIntegrations(db)).map(view) };
  });

  r.post('/api/integrations', guard('integration.create'), async (ctx: AppContext) => {
    const b = await readJson(ctx, createBody);
    const input: IntegrationInput =
      b.kind === 'hl7-mllp'
        ? {
            name: b.name,
            kind: b.kind,
            enabled: b.enabled,
            triggers: b.triggers,
            timeoutMs: b.timeout_ms,
            host: b.host,
            port: b.port,
            tls: b.tls,
            receivingApplication: b.receiving_application || null,
            receivingFacility: b.receiving_facility || null,
            baseUrl: null,
            bearerToken: null,
          }
        : {
            name: b.name,
            kind: b.kind,
            enabled: b.enabled,
            triggers: b.triggers,
            timeoutMs: b.timeout_ms,
            host: null,
            port: null,
            tls: false,
            receivingApplication: null,
            receivingFacility: null,
            baseUrl: b.base_url,
            bearerToken: b.bearer_token,
          };
    const i = await createIntegration(db, input).catch((err: unknown) => {
      throw conflict(err);
    });
    ctx.state.audit = { resourceId: String(i.id), details: { name: i.name, kind: i.kind, triggers: i.triggers } };
    ctx.status = 201;
    ctx.set('Location', `${ctx.state.basePath}/api/integrations/${i.id}`);
    ctx.body = view(i);
  });

  r.get('/api/integrations/:id', guard('integration.read'), async (ctx: AppContext) => {
    ctx.body = view(await load(ctx));
  });

  r.put('/api/integrations/:id', guard('integration.update'), async (ctx: AppContext) => {
    const current = await load(ctx);
    const b = await readJson(ctx, updateBody);
    const foreign = (current.kind === 'fhir' ? HL7_ONLY : FHIR_ONLY).filter((k) => b[k] !== undefined);
    if (foreign.length) throw new HttpError(400, 'invalid_field', `${foreign.join(', ')}: not a field of a ${current.kind} integration`);
    const i = await updateIntegration(db, current.id, toInput(b)).catch((err: unknown) => {
      throw conflict(err);
    });
    if (!i) throw notFound();
    ctx.state.audit = { resourceId: String(i.id), details: { fields: Object.keys(b) } };
    ctx.body = view(i);
  });

  r.delete('/api/integrations/:id', guard('integration.delete'), async (ctx: AppContext) => {
    const id = parsePk(ctx.params.id, 'integration');
    ctx.state.audit = { resourceId: String(id) };
    if (!(await deleteIntegration(db, id))) throw notFound();
    ctx.status = 204;
  });

  r.post('/api/integrations/:id/test', guard('integration.test'), async (ctx: AppContext) => {
    const i = await load(ctx);
    const result = await testIntegration({ aeTitle: config.dicom.aeTitle, institutionName: config.institutionName }, i);
    ctx.state.audit = { resourceId: String(i.id), details: { kind: i.kind, ok: result.ok, code: result.code, detail: result.detail } };
    ctx.body = result;
  });

  r.get('/api/integrations/:id/deliveries', guard('integration.deliveries'), async (ctx: AppContext) => {
    const i = await load(ctx);
    const q = deliveriesQuery.parse(ctx.query);
    const { total, items } = await listDeliveries(db, { integrationId: i.id, ...(q.status ? { status: q.status } : {}), ...q });
    ctx.state.audit = { resourceId: String(i.id), details: { status: q.status ?? null, returned: items.length } };
    ctx.body = { total, limit: q.limit, offset: q.offset, items: items.map(deliveryView) };
  });

  r.post('/api/integrations/:id/deliveries/:deliveryId/retry', guard('integration.retry'), async (ctx: AppContext) => {
    const i = await load(ctx);
    const deliveryId = parsePk(ctx.params.deliveryId, 'delivery');
    const d = await getDelivery(db, deliveryId);
    if (!d || d.integrationId !== i.id) throw new HttpError(404, 'not_found', 'delivery not found');
    const requeued = await db.transaction((trx) =>
      requeueFailedDelivery(trx, deliveryId, () => queueDeliveryJob(trx, queue, i, deliveryId, deliveryOptions(config))),
    );
    if (!requeued) throw new HttpError(409, 'not_failed', `delivery ${deliveryId} is ${d.status}, not failed`);
    events.emit('job-due', { kind: DELIVERY_JOBS[i.kind], runAt: new Date() });
    ctx.state.audit = { resourceId: String(i.id), details: { delivery: deliveryId } };
    ctx.body = deliveryView((await getDelivery(db, deliveryId))!);
  });
}

const integrationErrors = { 400: E[400], ...GUARDED, 404: E[404] };
const object = { type: 'object' } as const;
documentRoutes(
  secured('nodes:manage', {
    method: 'get',
    path: '/api/integrations',
    tags: ['integrations'],
    summary: 'List the hospital integrations (HL7 v2 RIS over MLLP, FHIR servers); tokens are never shown',
    responses: { 200: ok('The integrations', object), ...GUARDED },
  }),
  secured('nodes:manage', {
    method: 'post',
    path: '/api/integrations',
    tags: ['integrations'],
    summary: 'Add an integration: kind hl7-mllp (host, port, receiving application/facility) or fhir (base URL, bearer token)',
    request: { body: { required: true, content: json(createBody) } },
    responses: { 201: ok('Created', object), 400: E[400], ...GUARDED, 409: E[409] },
  }),
  secured('nodes:manage', {
    method: 'get',
    path: '/api/integrations/{id}',
    tags: ['integrations'],
    summary: 'Read an integration',
    request: { params: idParams('integration') },
    responses: { 200: ok('The integration', object), ...integrationErrors },
  }),
  secured('nodes:manage', {
    method: 'put',
    path: '/api/integrations/{id}',
    tags: ['integrations'],
    summary: 'Change an integration (fields given only; its kind stays)',
    request: { params: idParams('integration'), body: { required: true, content: json(updateBody) } },
    responses: { 200: ok('The integration', object), ...integrationErrors, 409: E[409] },
  }),
  secured('nodes:manage', {
    method: 'delete',
    path: '/api/integrations/{id}',
    tags: ['integrations'],
    summary: 'Delete an integration and its delivery log',
    request: { params: idParams('integration') },
    responses: { 204: { description: 'Deleted' }, ...integrationErrors },
  }),
  secured('nodes:manage', {
    method: 'post',
    path: '/api/integrations/{id}/test',
    tags: ['integrations'],
    summary: 'Test the connection: an MLLP test message that must be ACKed AA, or GET [base]/metadata of a FHIR server',
    request: { params: idParams('integration') },
    responses: { 200: ok('The outcome: ok, code (MSA-1 or HTTP status), detail, ms', object), ...integrationErrors },
  }),
  secured('nodes:manage', {
    method: 'get',
    path: '/api/integrations/{id}/deliveries',
    tags: ['integrations'],
    summary: 'The delivery log, newest first: each message as sent, attempts, the ACK or error; failed = dead letter',
    request: { params: idParams('integration'), query: deliveriesQuery },
    responses: { 200: ok('A page of deliveries', object), ...integrationErrors },
  }),
  secured('nodes:manage', {
    method: 'post',
    path: '/api/integrations/{id}/deliveries/{deliveryId}/retry',
    tags: ['integrations'],
    summary: 'Send a dead letter (a failed delivery) again',
    request: { params: z.object({ id: z.coerce.number().int().positive(), deliveryId: z.coerce.number().int().positive() }) },
    responses: { 200: ok('The delivery, queued again', object), ...integrationErrors, 409: E[409] },
  }),
);
