import Router from '@koa/router';
import type { RouteDeps } from '../deps.js';
import type { AppRouter, AppState } from '../state.js';
import { registerDocsRoutes } from './docs.js';
import { registerForwardingRoutes } from './forwarding.js';
import { registerEngineRoutes } from './engine.js';
import { registerAnalysisRoutes } from './analysis.js';
import { registerReportRoutes } from './reports.js';
import { registerPatientRoutes } from './patients.js';
import { registerStudyRoutes } from './studies.js';
import { registerEventRoutes } from './events.js';
import { registerUploadRoutes } from './upload.js';

/**
 * The application API: /api/patients, /api/studies (with /api/studies/upload), and the API's
 * description at /openapi.json and /docs. One prefix-less router with full paths, so server.ts
 * mounts everything with its single apiRoutes() call.
 */
export function apiRoutes(deps: RouteDeps): AppRouter {
  const r = new Router<AppState>();
  registerPatientRoutes(r, deps);
  // /api/studies/upload before /api/studies/:id, so the literal path is matched first.
  registerUploadRoutes(r, deps);
  registerStudyRoutes(r, deps);
  registerForwardingRoutes(r, deps);
  registerEngineRoutes(r, deps);
  registerAnalysisRoutes(r, deps);
  registerReportRoutes(r, deps);
  registerEventRoutes(r, deps);
  registerDocsRoutes(r);
  return r;
}
