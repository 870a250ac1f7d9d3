import type { RouterInstance } from '@koa/router';
import { z } from 'zod';
import { parsePk } from '../../records/schemas.js';
import { createRule, deleteRule, getRule, listRules, ruleMatchSchema, updateRule } from '../../forwarding/rules.js';
import { listItems } from '../../catalog/forwarding.js';
import { getRemoteNode } from '../../catalog/remote-nodes.js';
import { readJson } from '../body.js';
import { HttpError } from '../errors.js';
import type { RouteDeps } from '../deps.js';
import type { AppContext, AppState } from '../state.js';
import { documentRoutes, E, GUARDED, idParams, json, ok, secured } from '../api-doc.js';

const ruleBody = z
  .object({
    name: z.string().trim().min(1).max(128),
    enabled: z.boolean().default(true),
    node_id: z.number().int().positive(),
    match: ruleMatchSchema.default({}),
  })
  .strict();

const itemsQuery = z.object({
  status: z.enum(['queued', 'sending', 'sent', 'failed']).optional(),
  node_id: z.coerce.number().int().positive().optional(),
  study: z
    .string()
    .regex(/^[0-9]+(\.[0-9]+)*$/)
    .max(64)
    .optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
  offset: z.coerce.number().int().min(0).default(0),
});

/**
 * /api/forwarding: auto-routing rules (CRUD) and the queue of sends with their status
 * (queued, sending, sent, failed with the reason), and retrying failed ones. Admin only
 * (`nodes:manage`): rules decide where patient data goes.
 */
export function registerForwardingRoutes(r: RouterInstance<AppState>, deps: RouteDeps): void {
  const { db, security } = deps;
  const guard = (action: string) => security.guard('nodes:manage', action, 'forwarding');
  const rules = deps.forwardingRules;
  const checkNode = async (id: number) => {
    if (!(await getRemoteNode(db, id))) throw new HttpError(422, 'unknown_node', `remote node ${id} does not exist`);
  };
  const view = (rule: Awaited<ReturnType<typeof getRule>>) =>
    rule && { id: rule.id, name: rule.name, enabled: rule.enabled, node_id: rule.nodeId, match: rule.match };

  r.get('/api/forwarding/rules', guard('forwarding.rule.list'), async (ctx: AppContext) => {
    ctx.body = { items: (await listRules(db)).map(view) };
  });

  r.post('/api/forwarding/rules', guard('forwarding.rule.create'), async (ctx: AppContext) => {
    const body = await readJson(ctx, ruleBody);
    await checkNode(body.node_id);
    const rule = await createRule(db, { name: body.name, enabled: body.enabled, nodeId: body.node_id, match: body.match });
    await rules.reload();
    ctx.state.audit = { resourceId: String(rule.id), details: { node: body.node_id } };
    ctx.status = 201;
    ctx.set('Location', `${ctx.state.basePath}/api/forwarding/rules/${rule.id}`);
    ctx.body = view(rule);
  });

  r.get('/api/forwarding/rules/:id', guard('forwarding.rule.read'), async (ctx: AppContext) => {
    const rule = await getRule(db, parsePk(ctx.params.id, 'rule'));
    if (!rule) throw new HttpError(404, 'not_found', 'rule not found');
    ctx.body = view(rule);
  });

  r.put('/api/forwarding/rules/:id', guard('forwarding.rule.update'), async (ctx: AppContext) => {
    const id = parsePk(ctx.params.id, 'rule');
    const body = await readJson(ctx, ruleBody);
    await checkNode(body.node_id);
    const rule = await updateRule(db, id, { name: body.name, enabled: body.enabled, nodeId: body.node_id, match: body.match });
    if (!rule) throw new HttpError(404, 'not_found', 'rule not found');
    await rules.reload();
    ctx.state.audit = { resourceId: String(id) };
    ctx.body = view(rule);
  });

  r.delete('/api/forwarding/rules/:id', guard('forwarding.rule.delete'), async (ctx: AppContext) => {
    const id = parsePk(ctx.params.id, 'rule');
    if (!(await deleteRule(db, id))) throw new HttpError(404, 'not_found', 'rule not found');
    await rules.reload();
    ctx.state.audit = { resourceId: String(id) };
    ctx.status = 204;
  });

  r.get('/api/forwarding', guard('forwarding.list'), async (ctx: AppContext) => {
    const q = itemsQuery.parse(ctx.query);
    const { total, counts, items } = await listItems(db, {
      ...(q.status ? { status: q.status } : {}),
      ...(q.node_id ? { nodeId: q.node_id } : {}),
      ...(q.study ? { studyInstanceUid: q.study } : {}),
      limit: q.limit,
      offset: q.offset,
    });
    ctx.body = {
      total,
      counts,
      limit: q.limit,
      offset: q.offset,
      items: items.map((i) => ({
        id: i.id,
        rule_id: i.ruleId,
        node_id: i.nodeId,
        sop_instance_uid: i.sopInstanceUid,
        study_instance_uid: i.studyInstanceUid,
        status: i.status,
        attempts: i.attempts,
        next_attempt_at: i.nextAttemptAt,
        last_error: i.lastError,
        created_at: i.createdAt,
        sent_at: i.sentAt,
      })),
    };
  });

  r.post('/api/forwarding/:id/retry', guard('forwarding.retry'), async (ctx: AppContext) => {
    const id = parsePk(ctx.params.id, 'forward item');
    if (!(await deps.forwarder.retry(id))) throw new HttpError(409, 'not_failed', 'no failed forward item with this id');
    ctx.state.audit = { resourceId: String(id) };
    ctx.body = { requeued: 1 };
  });
}

const forwardingErrors = { 400: E[400], ...GUARDED, 404: E[404] };
const unknownNode = { description: 'Unknown node', content: json({ $ref: '#/components/schemas/Error' }) };
documentRoutes(
  secured('nodes:manage', {
    method: 'get',
    path: '/api/forwarding/rules',
    tags: ['forwarding'],
    summary: 'List forwarding rules',
    responses: { 200: ok('The rules', { type: 'object' }), ...GUARDED },
  }),
  secured('nodes:manage', {
    method: 'post',
    path: '/api/forwarding/rules',
    tags: ['forwarding'],
    summary: 'Create a rule',
    request: { body: { required: true, content: json(ruleBody) } },
    responses: { 201: ok('Created', { type: 'object' }), 400: E[400], ...GUARDED, 422: unknownNode },
  }),
  secured('nodes:manage', {
    method: 'get',
    path: '/api/forwarding/rules/{id}',
    tags: ['forwarding'],
    summary: 'Read a rule',
    request: { params: idParams('rule') },
    responses: { 200: ok('The rule', { type: 'object' }), ...forwardingErrors },
  }),
  secured('nodes:manage', {
    method: 'put',
    path: '/api/forwarding/rules/{id}',
    tags: ['forwarding'],
    summary: 'Replace a rule',
    request: { params: idParams('rule'), body: { required: true, content: json(ruleBody) } },
    responses: { 200: ok('The rule', { type: 'object' }), ...forwardingErrors, 422: unknownNode },
  }),
  secured('nodes:manage', {
    method: 'delete',
    path: '/api/forwarding/rules/{id}',
    tags: ['forwarding'],
    summary: 'Delete a rule',
    request: { params: idParams('rule') },
    responses: { 204: { description: 'Deleted' }, ...forwardingErrors },
  }),
  secured('nodes:manage', {
    method: 'get',
    path: '/api/forwarding',
    tags: ['forwarding'],
    summary: 'The forwarding queue: queued, sending, sent, failed (with the reason), and counts per status',
    request: { query: itemsQuery },
    responses: { 200: ok('A page of queue rows', { type: 'object' }), 400: E[400], ...GUARDED },
  }),
  secured('nodes:manage', {
    method: 'post',
    path: '/api/forwarding/{id}/retry',
    tags: ['forwarding'],
    summary: 'Queue a failed send again',
    request: { params: idParams('forward') },
    responses: { 200: ok('Requeued', { type: 'object' }), 409: E[409], ...forwardingErrors },
  }),
);
