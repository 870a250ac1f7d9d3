import type { RouterInstance } from '@koa/router';
import { z } from 'zod';
import type { JobRow } from '../../catalog/jobs.js';
import { parsePk } from '../../records/schemas.js';
import { HttpError } from '../errors.js';
import type { RouteDeps } from '../deps.js';
import type { AppContext, AppState } from '../state.js';
import { documentRoutes, E, GUARDED, idParams, ok, secured } from '../api-doc.js';

const listQuery = z.object({
  kind: z.string().min(1).max(64).optional(),
  status: z.enum(['pending', 'running', 'succeeded', 'failed', 'cancelled']).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.coerce.number().int().min(1).optional().describe('next_cursor of the previous page'),
});

/** A job as the administration sees it: its state and last error, not its payload (which may name patients' studies). */
function jobView(j: JobRow) {
  return {
    id: j.id,
    kind: j.kind,
    status: j.status,
    attempts: j.attempts,
    max_attempts: j.maxAttempts,
    next_run_at: j.nextRunAt,
    error: j.error,
    progress: j.progress,
    dead_letter: j.status === 'failed',
    created_at: j.createdAt,
    updated_at: j.updatedAt,
    finished_at: j.finishedAt,
  };
}

/**
 * /api/jobs: the one job runner's queue for the administration (nodes:manage): depth by kind and
 * status, the jobs newest first (failed ones are the dead letters, with their last error), and a
 * retry of a failed job. /api/forwarding/:id/retry stays for forward items.
 */
export function registerJobRoutes(r: RouterInstance<AppState>, deps: RouteDeps): void {
  const guard = (action: string) => deps.security.guard('nodes:manage', action, 'job');

  r.get('/api/jobs', guard('job.list'), async (ctx: AppContext) => {
    const q = listQuery.parse(ctx.query);
    const items = await deps.queue.list({ kind: q.kind, status: q.status, limit: q.limit, beforeId: q.cursor });
    ctx.body = {
      depth: await deps.queue.depth(),
      items: items.map(jobView),
      next_cursor: items.length === q.limit ? items.at(-1)!.id : null,
    };
  });

  r.post('/api/jobs/:id/retry', guard('job.retry'), async (ctx: AppContext) => {
    const id = parsePk(ctx.params.id, 'job');
    ctx.state.audit = { resourceId: String(id) };
    const out = await deps.queue.retry(id);
    if (out === 'superseded') throw new HttpError(409, 'superseded', 'a newer job with the same key is pending: it does the work');
    if (out === 'not-failed') {
      if (!(await deps.queue.get(id))) throw new HttpError(404, 'not_found', 'job not found');
      throw new HttpError(409, 'not_failed', 'only a failed job can be retried');
    }
    const job = (await deps.queue.get(id))!;
    deps.events.emit('job-due', { kind: job.kind, runAt: new Date() });
    ctx.body = jobView(job);
  });
}

documentRoutes(
  secured('nodes:manage', {
    method: 'get',
    path: '/api/jobs',
    tags: ['jobs'],
    summary:
      'The job queue: depth by kind and status, and the jobs newest first (status=failed: the dead letters with their ' +
      'last error); page with cursor=next_cursor',
    request: { query: listQuery },
    responses: { 200: ok('{depth, items, next_cursor}', { type: 'object' }), 400: E[400], ...GUARDED },
  }),
  secured('nodes:manage', {
    method: 'post',
    path: '/api/jobs/{id}/retry',
    tags: ['jobs'],
    summary: 'Run a failed job again, its attempts afresh',
    request: { params: idParams('job') },
    responses: { 200: ok('The job, pending', { type: 'object' }), 400: E[400], ...GUARDED, 404: E[404], 409: E[409] },
  }),
);
