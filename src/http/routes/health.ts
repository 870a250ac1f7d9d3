import Router from '@koa/router';
import type { Db } from '../../db/connection.js';
import { ping } from '../../catalog/ping.js';
import type { BlobStorage } from '../../../storage/types.js';
import type { Metrics } from '../metrics.js';
import type { AppRouter, AppState } from '../state.js';
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { EngineHost } from '../../medgemma/engine-host.js';
import { documentRoutes, ok } from '../api-doc.js';

/**
 * Liveness, readiness (index, storage and the configured AI engine answer) and Prometheus metrics;
 * no patient data. Readiness is what a load balancer polls: each check is cheap (a SELECT 1, the
 * storage's check, llama-server's /health) and a node without an engine configured does not need one.
 */
export function healthRoutes(deps: { db: Db; storage: BlobStorage; engine?: EngineHost; metrics: Metrics; log: Logger }): AppRouter {
  const r = new Router<AppState>();
  r.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  r.get('/readyz', async (ctx) => {
    const checks: Record<string, string> = {};
    // Unauthenticated: the answer says which part fails, the log says why (addresses, paths).
    const failed = (part: string) => (err: unknown) => {
      deps.log.warn({ err: errorMessage(err), part }, 'readiness check failed');
      checks[part] = 'unavailable';
    };
    await ping(deps.db).then(() => (checks.database = 'ok'), failed('database'));
    await deps.storage.check().then(() => (checks.storage = 'ok'), failed('storage'));
    if (deps.engine) await deps.engine.readiness().then((v) => (checks.engine = v), failed('engine'));
    const ready = Object.values(checks).every((v) => v === 'ok' || v === 'not configured');
    ctx.status = ready ? 200 : 503;
    ctx.body = { status: ready ? 'ready' : 'not ready', checks };
  });
  r.get('/metrics', async (ctx) => {
    ctx.type = deps.metrics.registry.contentType;
    ctx.body = await deps.metrics.registry.metrics();
  });
  return r;
}

documentRoutes(
  {
    method: 'get',
    path: '/healthz',
    tags: ['health'],
    summary: 'Liveness',
    security: [],
    responses: { 200: ok('Alive', { type: 'object' }) },
  },
  {
    method: 'get',
    path: '/readyz',
    tags: ['health'],
    summary: 'Readiness: index, storage and the AI engine (when one is configured) answer; 503 names the check that failed',
    security: [],
    responses: { 200: ok('Ready', { type: 'object' }), 503: ok('Not ready', { type: 'object' }) },
  },
  {
    method: 'get',
    path: '/metrics',
    tags: ['health'],
    summary: 'Prometheus metrics',
    security: [],
    responses: { 200: { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } } },
  },
);
