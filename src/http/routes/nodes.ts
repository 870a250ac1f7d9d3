import Router from '@koa/router';
import { z } from 'zod';
import { parsePk } from '../../records/schemas.js';
import {
  createRemoteNode,
  deleteRemoteNode,
  getRemoteNode,
  listRemoteNodes,
  updateRemoteNode,
  type RemoteNode,
  type RemoteNodeInput,
} from '../../catalog/remote-nodes.js';
import { echoNode } from '../../../dimse/store-scu.js';
import { readJson } from '../body.js';
import { HttpError } from '../errors.js';
import type { RouteDeps } from '../deps.js';
import type { AppContext, AppRouter, AppState } from '../state.js';
import { documentRoutes, E, GUARDED, idParams, json, ok, ref, secured } from '../api-doc.js';
import { aeTitleSchema } from '../../dicom/ae-title.js';

const aeTitle = aeTitleSchema;

const nodeBody = z.object({
  ae_title: aeTitle,
  host: z
    .string()
    .trim()
    .min(1)
    .max(255)
    .regex(/^[A-Za-z0-9.:[\]_-]+$/, 'host name or IP address'),
  port: z.number().int().min(1).max(65535),
  tls: z.boolean().default(false),
  description: z.string().max(255).nullable().default(null),
  allow_query_retrieve: z.boolean().default(true),
  stow_url: z
    .url({ protocol: /^https?$/ })
    .max(1024)
    .nullable()
    .default(null),
  /** Sent as the Authorization header to the STOW-RS URL ("Bearer …", "Basic …"); never read back. */
  stow_authorization: z
    .string()
    .max(8192)
    .regex(/^[\x20-\x7e]+$/, 'a header value: printable ASCII')
    .nullable()
    .default(null),
});
const updateBody = nodeBody.partial();

function toInput(b: Partial<z.infer<typeof nodeBody>>): Partial<RemoteNodeInput> {
  const out: Partial<RemoteNodeInput> = {};
  if (b.ae_title !== undefined) out.aeTitle = b.ae_title;
  if (b.host !== undefined) out.host = b.host;
  if (b.port !== undefined) out.port = b.port;
  if (b.tls !== undefined) out.tls = b.tls;
  if (b.description !== undefined) out.description = b.description;
  if (b.allow_query_retrieve !== undefined) out.allowQueryRetrieve = b.allow_query_retrieve;
  if (b.stow_url !== undefined) out.stowUrl = b.stow_url;
  if (b.stow_authorization !== undefined) out.stowAuthorization = b.stow_authorization;
  return out;
}

function toJson(n: RemoteNode) {
  return {
    id: n.id,
    ae_title: n.aeTitle,
    host: n.host,
    port: n.port,
    tls: n.tls,
    description: n.description,
    allow_query_retrieve: n.allowQueryRetrieve,
    stow_url: n.stowUrl,
    // Whether credentials are set, never the credentials.
    stow_authorization_set: n.stowAuthorization !== null,
  };
}

function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e.code === '23505' || e.code === 'SQLITE_CONSTRAINT' || /UNIQUE constraint failed/.test(e.message ?? '');
}

/** /api/nodes: the remote DICOM nodes (C-MOVE destinations, allowlist), admins only. */
export function nodesRoutes(deps: RouteDeps): AppRouter {
  const { db, security, config } = deps;
  const r = new Router<AppState>({ prefix: '/api/nodes' });
  const notFound = () => new HttpError(404, 'not_found', 'node not found');
  const conflict = (err: unknown) => (isUniqueViolation(err) ? new HttpError(409, 'node_exists', 'a node with this AE title exists') : err);

  r.get('/', security.guard('nodes:manage', 'node.list', 'node'), async (ctx: AppContext) => {
    ctx.body = { items: (await listRemoteNodes(db)).map(toJson) };
  });

  r.post('/', security.guard('nodes:manage', 'node.create', 'node'), async (ctx: AppContext) => {
    const body = await readJson(ctx, nodeBody);
    const node = await createRemoteNode(db, toInput(body) as RemoteNodeInput).catch((err: unknown) => {
      throw conflict(err);
    });
    ctx.state.audit = { resourceId: String(node.id), details: { aeTitle: node.aeTitle, host: node.host, port: node.port } };
    ctx.status = 201;
    ctx.set('Location', `${ctx.state.basePath}/api/nodes/${node.id}`);
    ctx.body = toJson(node);
  });

  r.get('/:id', security.guard('nodes:manage', 'node.read', 'node'), async (ctx: AppContext) => {
    const id = parsePk(ctx.params.id, 'node');
    ctx.state.audit = { resourceId: String(id) };
    const node = await getRemoteNode(db, id);
    if (!node) throw notFound();
    ctx.body = toJson(node);
  });

  r.put('/:id', security.guard('nodes:manage', 'node.update', 'node'), async (ctx: AppContext) => {
    const id = parsePk(ctx.params.id, 'node');
    ctx.state.audit = { resourceId: String(id) };
    const body = await readJson(ctx, updateBody);
    const node = await updateRemoteNode(db, id, toInput(body)).catch((err: unknown) => {
      throw conflict(err);
    });
    if (!node) throw notFound();
    ctx.state.audit.details = { aeTitle: node.aeTitle, host: node.host, port: node.port };
    ctx.body = toJson(node);
  });

  r.delete('/:id', security.guard('nodes:manage', 'node.delete', 'node'), async (ctx: AppContext) => {
    const id = parsePk(ctx.params.id, 'node');
    ctx.state.audit = { resourceId: String(id) };
    if (!(await deleteRemoteNode(db, id))) throw notFound();
    ctx.status = 204;
  });

  r.post('/:id/echo', security.guard('nodes:manage', 'node.echo', 'node'), async (ctx: AppContext) => {
    const id = parsePk(ctx.params.id, 'node');
    const node = await getRemoteNode(db, id);
    if (!node) throw notFound();
    const result = await echoNode({ aeTitle: config.dicom.aeTitle, tls: config.dicom.tls }, node);
    ctx.state.audit = {
      resourceId: String(id),
      details: { aeTitle: node.aeTitle, ok: result.ok, status: result.status, error: result.error },
    };
    ctx.body = result;
  });

  return r;
}

const nodeErrors = { 400: E[400], ...GUARDED, 404: E[404] };
const nodeInput = nodeBody.meta({ id: 'RemoteNodeInput' });
documentRoutes(
  secured('nodes:manage', {
    method: 'get',
    path: '/api/nodes',
    tags: ['nodes'],
    summary: 'List remote DICOM nodes',
    responses: { 200: ok('The nodes', ref('RemoteNodeList')), ...GUARDED },
  }),
  secured('nodes:manage', {
    method: 'post',
    path: '/api/nodes',
    tags: ['nodes'],
    summary: 'Register a remote DICOM node (C-MOVE destination, allowlisted caller)',
    request: { body: { required: true, content: json(nodeInput) } },
    responses: { 201: ok('Created', ref('RemoteNode')), 409: E[409], ...nodeErrors },
  }),
  secured('nodes:manage', {
    method: 'get',
    path: '/api/nodes/{id}',
    tags: ['nodes'],
    summary: 'Read a node',
    request: { params: idParams('node') },
    responses: { 200: ok('The node', ref('RemoteNode')), ...nodeErrors },
  }),
  secured('nodes:manage', {
    method: 'put',
    path: '/api/nodes/{id}',
    tags: ['nodes'],
    summary: 'Update a node (fields given only)',
    request: { params: idParams('node'), body: { required: true, content: json(updateBody) } },
    responses: { 200: ok('The node', ref('RemoteNode')), 409: E[409], ...nodeErrors },
  }),
  secured('nodes:manage', {
    method: 'delete',
    path: '/api/nodes/{id}',
    tags: ['nodes'],
    summary: 'Delete a node',
    request: { params: idParams('node') },
    responses: { 204: { description: 'Deleted' }, ...nodeErrors },
  }),
  secured('nodes:manage', {
    method: 'post',
    path: '/api/nodes/{id}/echo',
    tags: ['nodes'],
    summary: 'C-ECHO the node',
    request: { params: idParams('node') },
    responses: { 200: ok('The outcome (ok false with error when the node cannot be reached)', ref('EchoResult')), ...nodeErrors },
  }),
);
