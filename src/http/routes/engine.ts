import type { RouterInstance } from '@koa/router';
import type { RouteDeps } from '../server.js';
import type { AppContext, AppState } from '../state.js';

/** GET /api/engine: whether the MedGemma engine is off, starting, ready or failed (and why), and its model. */
export function registerEngineRoutes(r: RouterInstance<AppState>, deps: RouteDeps): void {
  r.get('/api/engine', deps.security.guard('analysis:run', 'engine.status', 'engine'), (ctx: AppContext) => {
    ctx.body = deps.engine.status;
  });
}
