import Router from '@koa/router';
import type { RouteDeps } from '../server.js';
import type { AppRouter, AppState } from '../state.js';

/** The application API: /api/patients, /api/studies (filled in by the REST API work). */
export function apiRoutes(_deps: RouteDeps): AppRouter {
  return new Router<AppState>({ prefix: '/api' });
}
