import type { RouterInstance } from '@koa/router';
import { LiveEvents } from '../live-events.js';
import type { RouteDeps } from '../deps.js';
import type { AppContext, AppState } from '../state.js';
import { documentRoutes, GUARDED, secured } from '../api-doc.js';

/**
 * GET /api/events: the node's live events as text/event-stream, for the worklist. Authenticated
 * by the Authorization header like every other route (the web UI reads it with fetch streaming,
 * so no token ever sits in a URL); the audit row is written when the stream opens.
 */
export function registerEventRoutes(r: RouterInstance<AppState>, deps: RouteDeps): void {
  const live = new LiveEvents(deps.events);
  r.get('/api/events', deps.security.guard('images:read', 'events.subscribe', 'events'), async (ctx: AppContext) => {
    // The stream outlives the usual idle timeouts; the heartbeat keeps it visibly alive.
    ctx.req.socket.setTimeout(0);
    ctx.req.socket.setKeepAlive(true);
    ctx.set('Content-Type', 'text/event-stream; charset=utf-8');
    ctx.set('Cache-Control', 'no-store');
    ctx.set('X-Accel-Buffering', 'no');
    const stream = live.open();
    ctx.req.on('close', () => stream.destroy());
    ctx.status = 200;
    ctx.body = stream;
  });
}

documentRoutes(
  secured('images:read', {
    method: 'get',
    path: '/api/events',
    tags: ['studies'],
    summary: 'Live events (Server-Sent Events)',
    description:
      'A `text/event-stream` that stays open. Events: `ready` (once, on connect); `study` ' +
      '`{study_instance_uid}` when instances of a study were stored (at most once a second per study); ' +
      '`analysis` `{analysis_id, study_instance_uid, status, progress}` (progress 0..1) when an AI analysis is queued, ' +
      'moves on, finishes or is cancelled; `report` `{report_id, study_instance_uid, version, status: draft|signed|amended, ' +
      'event: created|edited|signed|amended|published}`. Ids and states only: a client re-reads the row it shows ' +
      '(GET /api/studies/{id}). Send the bearer token in the Authorization header (read the stream with fetch).',
    operationId: 'streamEvents',
    responses: {
      200: { description: 'The event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } },
      ...GUARDED,
    },
  }),
);
