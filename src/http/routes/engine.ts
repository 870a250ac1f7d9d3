import type { RouterInstance } from '@koa/router';
import type { RouteDeps } from '../deps.js';
import type { AppContext, AppState } from '../state.js';
import { documentRoutes, GUARDED, ok, secured } from '../api-doc.js';

/** GET /api/engine: whether the MedGemma engine is off, starting, ready or failed (and why), and its model. */
export function registerEngineRoutes(r: RouterInstance<AppState>, deps: RouteDeps): void {
  r.get('/api/engine', deps.security.guard('analysis:run', 'engine.status', 'engine'), (ctx: AppContext) => {
    ctx.body = deps.engine.status;
  });
}

documentRoutes(
  secured('analysis:run', {
    method: 'get',
    path: '/api/engine',
    tags: ['engine'],
    summary: 'MedGemma engine status: off, starting, ready or failed (with the reason), backend and model identity',
    responses: { 200: ok('The status', { type: 'object' }), ...GUARDED },
  }),
);
