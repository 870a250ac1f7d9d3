import type { RouteConfig } from '@asteasolutions/zod-to-openapi';
import type Koa from 'koa';
import { z } from 'zod';
import { aeTitleSchema } from '../src/dicom/ae-title.js';
import { documentRoutes, E, GUARDED, secured } from '../src/http/api-doc.js';
import { readDicomJson } from '../src/http/body.js';
import type { RouteDeps } from '../src/http/deps.js';
import { HttpError, httpStatusOf } from '../src/http/errors.js';
import type { AppRouter, AppState, BaseContext } from '../src/http/state.js';
import { QueryError } from '../src/query/match.js';
import { UpsError } from '../src/ups/state-machine.js';
import { GLOBAL_SUBSCRIPTION_UID, FILTERED_GLOBAL_SUBSCRIPTION_UID, publicView, singleDataset, text } from '../src/ups/workitem-json.js';
import type { Worklist } from '../src/ups/workitems.js';

/**
 * UPS-RS, the Worklist Service (PS3.18 §11) under /dicom-web/workitems: Create, Search, Retrieve,
 * Update, Change State, Request Cancellation, Subscribe/Unsubscribe/Suspend. The rules are the
 * worklist's (src/ups/); here they become HTTP: a refusal answers the status PS3.18 gives it with
 * its `Warning: 299 {service}: …` header. Reading and subscribing need images:read; creating,
 * updating and changing state analysis:run (a workitem asks for an analysis). Every request is
 * audited (resource type `workitem`). The event channel (WebSocket) is ups-channel.ts.
 */

const DICOM_JSON = 'application/dicom+json';
const RESERVED = new Set(['limit', 'offset', 'fuzzymatching', 'includefield']);
const MAX_LIMIT = 1000;

function warningOf(ctx: BaseContext, text: string): string {
  return `299 ${ctx.host || 'radiant'}: ${text}`;
}

/** UpsError → its HTTP status with the Warning header PS3.18 asks for; QueryError → 400. */
const upsErrors: Koa.Middleware<AppState> = async (ctx, next) => {
  try {
    await next();
  } catch (err) {
    if (err instanceof UpsError) {
      const headers: Record<string, string> = err.warning ? { Warning: warningOf(ctx, err.warning) } : {};
      throw new HttpError(httpStatusOf(err), err.code ?? 'ups_error', err.message, err.details, headers);
    }
    if (err instanceof QueryError) throw new HttpError(400, 'invalid_query', err.message);
    throw err;
  }
};

/** `?1.2.3` (PS3.18: the bare UID is the query) or `?name=1.2.3`. */
function bareOrNamed(ctx: BaseContext, names: string[]): string | undefined {
  const q = ctx.querystring;
  if (q && !q.includes('=') && !q.includes('&')) return decodeURIComponent(q);
  for (const n of names) {
    const v = ctx.query[n];
    if (typeof v === 'string' && v) return v;
  }
  return undefined;
}

function aeParam(ctx: BaseContext): string {
  const ae = aeTitleSchema.safeParse((ctx.params as { ae: string }).ae);
  if (!ae.success) throw new HttpError(400, 'invalid_ae_title', 'the subscriber is not an AE title');
  return ae.data;
}

function answer(ctx: BaseContext, status: number, body?: unknown, warning?: string): void {
  ctx.status = status;
  if (warning) ctx.set('Warning', warningOf(ctx, warning));
  if (body !== undefined) {
    ctx.type = DICOM_JSON;
    ctx.body = body;
  }
}

const intParam = (name: string, v: string): number => {
  if (!/^\d{1,9}$/.test(v)) throw new HttpError(400, 'invalid_query', `${name} must be a non-negative integer`);
  return Number(v);
};

export function registerWorkitemRoutes(r: AppRouter, deps: RouteDeps, worklist: Worklist): void {
  const read = (action: string) => deps.security.guard('images:read', action, 'workitem');
  const write = (action: string) => deps.security.guard('analysis:run', action, 'workitem');
  const audit = (ctx: BaseContext, uid: string, details?: Record<string, unknown>) => {
    ctx.state.audit = { ...ctx.state.audit, resourceId: uid, details: { ...ctx.state.audit?.details, ...details } };
  };
  const uidOf = (ctx: BaseContext) => (ctx.params as { uid: string }).uid;

  // Create (§11.4).
  r.post('/workitems', write('ups.create'), upsErrors, async (ctx) => {
    const ds = singleDataset(await readDicomJson(ctx), 'Create');
    const w = await worklist.create(ds, bareOrNamed(ctx, ['workitem', 'AffectedSOPInstanceUID']), ctx.state.principal!.username);
    audit(ctx, w.uid);
    ctx.state.audit!.studyInstanceUid = w.studyInstanceUid ?? undefined;
    ctx.set('Location', `${ctx.state.baseUrl}/dicom-web/workitems/${w.uid}`);
    ctx.set('Content-Location', `${ctx.state.baseUrl}/dicom-web/workitems/${w.uid}`);
    ctx.status = 201;
  });

  // Search (§11.9): QIDO-style matching keys.
  r.get('/workitems', read('ups.search'), upsErrors, async (ctx) => {
    const filters: Array<[string, string]> = [];
    let limit = 100;
    let offset = 0;
    let fuzzy = false;
    for (const [key, value] of new URLSearchParams(ctx.querystring)) {
      if (key === 'limit') limit = Math.min(intParam('limit', value) || 100, MAX_LIMIT);
      else if (key === 'offset') offset = intParam('offset', value);
      else if (key === 'fuzzymatching') fuzzy = value === 'true';
      else if (!RESERVED.has(key)) filters.push([key, value]);
    }
    const found = await worklist.search({ filters, fuzzy, limit, offset });
    answer(
      ctx,
      200,
      found.map((w) => publicView(w.dataset)),
    );
  });

  // Retrieve (§11.5).
  r.get('/workitems/:uid', read('ups.retrieve'), upsErrors, async (ctx) => {
    const w = await worklist.get(uidOf(ctx));
    audit(ctx, w.uid);
    ctx.state.audit!.studyInstanceUid = w.studyInstanceUid ?? undefined;
    answer(ctx, 200, [publicView(w.dataset)]);
  });

  // Update (§11.6).
  r.post('/workitems/:uid', write('ups.update'), upsErrors, async (ctx) => {
    const uid = uidOf(ctx);
    audit(ctx, uid);
    const changes = singleDataset(await readDicomJson(ctx), 'Update');
    await worklist.update(uid, bareOrNamed(ctx, ['transaction-uid', 'transaction']), changes);
    ctx.status = 200;
  });

  // Change State (§11.7): claim, complete, cancel.
  r.put('/workitems/:uid/state', write('ups.state'), upsErrors, async (ctx) => {
    const uid = uidOf(ctx);
    const ds = singleDataset(await readDicomJson(ctx), 'Change State');
    const requested = text(ds, 'ProcedureStepState');
    audit(ctx, uid, { requested });
    if (!requested)
      throw new UpsError(
        'invalid-input',
        0xa900,
        'The submitted request is inconsistent with the state of the UPS Instance.',
        'no Procedure Step State',
      );
    const { workitem, warning } = await worklist.changeState(uid, requested, text(ds, 'TransactionUID'), { nodePerformer: false });
    ctx.state.audit!.studyInstanceUid = workitem.studyInstanceUid ?? undefined;
    answer(ctx, 200, undefined, warning);
  });

  // Request Cancellation (§11.8).
  r.post('/workitems/:uid/cancelrequest', write('ups.cancelrequest'), upsErrors, async (ctx) => {
    const uid = uidOf(ctx);
    audit(ctx, uid);
    const body = await readDicomJson(ctx);
    const request = body === undefined ? {} : singleDataset(body, 'Request Cancellation');
    const { warning } = await worklist.requestCancel(uid, request, ctx.state.principal!.username);
    answer(ctx, 202, undefined, warning);
  });

  // Subscribe / Unsubscribe / Suspend (§11.10-11.12); the global UIDs name the worklist.
  r.post('/workitems/:uid/subscribers/:ae', read('ups.subscribe'), upsErrors, async (ctx) => {
    const uid = uidOf(ctx);
    const ae = aeParam(ctx);
    audit(ctx, uid, { ae });
    await worklist.subscribe(uid, ae, ctx.query.deletionlock === 'true');
    ctx.status = 201;
  });
  r.post('/workitems/:uid/subscribers/:ae/suspend', read('ups.suspend'), upsErrors, async (ctx) => {
    const uid = uidOf(ctx);
    const ae = aeParam(ctx);
    audit(ctx, uid, { ae });
    if (uid !== GLOBAL_SUBSCRIPTION_UID && uid !== FILTERED_GLOBAL_SUBSCRIPTION_UID) {
      throw new HttpError(400, 'invalid_request', 'only a global subscription is suspended');
    }
    if (!(await worklist.suspend(ae))) throw new HttpError(404, 'not_found', `${ae} has no global subscription`);
    ctx.status = 200;
  });
  r.delete('/workitems/:uid/subscribers/:ae', read('ups.unsubscribe'), upsErrors, async (ctx) => {
    const uid = uidOf(ctx);
    const ae = aeParam(ctx);
    audit(ctx, uid, { ae });
    await worklist.unsubscribe(uid, ae);
    ctx.status = 200;
  });
}

const uid = z
  .string()
  .regex(/^[0-9]+(\.[0-9]+)*$/)
  .max(64);
const wiParams = z.object({ uid: uid.describe('Workitem (SOP Instance) UID, or 1.2.840.10008.5.1.4.34.5 for the worklist') });
const subParams = wiParams.extend({ ae: z.string().max(16).describe('Subscriber AE title') });
const body = { required: true, content: { [DICOM_JSON]: { schema: { type: 'object' as const, description: 'A DICOM JSON data set' } } } };
const ups = (permission: string, route: Omit<RouteConfig, 'tags'>): RouteConfig => secured(permission, { tags: ['dicomweb'], ...route });
const W = { description: 'Refused: the Warning header says why (PS3.18 §11)' };
const base = '/dicom-web/workitems';

documentRoutes(
  ups('analysis:run', {
    method: 'post',
    path: base,
    summary: 'UPS-RS Create: a SCHEDULED workitem (?{uid} names it)',
    request: { body },
    responses: { 201: { description: 'Created (Location)' }, 400: W, 409: W, ...GUARDED, 415: E[415] },
  }),
  ups('images:read', {
    method: 'get',
    path: base,
    summary: 'UPS-RS Search: QIDO-style matching keys (ProcedureStepState, PatientID, PatientName, ScheduledProcedureStepStartDateTime, …)',
    request: { query: z.object({ limit: z.string().optional(), offset: z.string().optional() }).catchall(z.string()) },
    responses: { 200: { description: 'The matches (DICOM JSON)' }, 400: E[400], ...GUARDED },
  }),
  ups('images:read', {
    method: 'get',
    path: `${base}/{uid}`,
    summary: 'UPS-RS Retrieve (no Transaction UID)',
    request: { params: wiParams },
    responses: { 200: { description: 'The workitem (DICOM JSON)' }, ...GUARDED, 404: E[404] },
  }),
  ups('analysis:run', {
    method: 'post',
    path: `${base}/{uid}`,
    summary: 'UPS-RS Update (?{transaction-uid} for an IN PROGRESS workitem)',
    request: { params: wiParams, body },
    responses: { 200: { description: 'Updated' }, 400: W, 404: E[404], 409: W, ...GUARDED },
  }),
  ups('analysis:run', {
    method: 'put',
    path: `${base}/{uid}/state`,
    summary: 'UPS-RS Change State: IN PROGRESS (claim), COMPLETED, CANCELED with the Transaction UID',
    request: { params: wiParams, body },
    responses: { 200: { description: 'Changed (a Warning when already there)' }, 400: W, 404: E[404], 409: W, ...GUARDED },
  }),
  ups('analysis:run', {
    method: 'post',
    path: `${base}/{uid}/cancelrequest`,
    summary: 'UPS-RS Request Cancellation',
    request: { params: wiParams },
    responses: { 202: { description: 'Accepted' }, 404: E[404], 409: W, ...GUARDED },
  }),
  ups('images:read', {
    method: 'post',
    path: `${base}/{uid}/subscribers/{ae}`,
    summary: 'UPS-RS Subscribe (a workitem, or the worklist with the global UID); ?deletionlock=true',
    request: { params: subParams },
    responses: { 201: { description: 'Subscribed' }, 400: E[400], 404: E[404], ...GUARDED },
  }),
  ups('images:read', {
    method: 'post',
    path: `${base}/{uid}/subscribers/{ae}/suspend`,
    summary: 'UPS-RS Suspend a global subscription',
    request: { params: subParams },
    responses: { 200: { description: 'Suspended' }, 400: E[400], 404: E[404], ...GUARDED },
  }),
  ups('images:read', {
    method: 'delete',
    path: `${base}/{uid}/subscribers/{ae}`,
    summary: 'UPS-RS Unsubscribe',
    request: { params: subParams },
    responses: { 200: { description: 'Unsubscribed' }, 404: E[404], ...GUARDED },
  }),
);
