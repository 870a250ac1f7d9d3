import Router from '@koa/router';
import type { RouteDeps } from '../deps.js';
import type { AppRouter, AppState } from '../state.js';
import { registerDocsRoutes } from './docs.js';
import { registerForwardingRoutes } from './forwarding.js';
import { registerIntegrationRoutes } from './integrations.js';
import { registerEngineRoutes } from './engine.js';
import { registerAnalysisRoutes } from './analysis.js';
import { registerReportRoutes } from './reports.js';
import { registerReportReviewRoutes } from './report-review.js';
import { registerPatientRoutes } from './patients.js';
import { registerStudyRoutes } from './studies.js';
import { registerEventRoutes } from './events.js';
import { registerUploadRoutes } from './upload.js';
import { registerUserRoutes } from './users.js';
import { registerJobRoutes } from './jobs.js';
import { registerRetentionRoutes } from './retention.js';
import { registerSystemRoutes } from './system.js';

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
  registerIntegrationRoutes(r, deps);
  registerEngineRoutes(r, deps);
  registerAnalysisRoutes(r, deps);
  // Before /api/reports/:id: /api/reports/decisions is a literal path.
  registerReportReviewRoutes(r, deps);
  registerReportRoutes(r, deps);
  registerUserRoutes(r, deps);
  registerJobRoutes(r, deps);
  registerRetentionRoutes(r, deps);
  registerSystemRoutes(r, deps);
  registerEventRoutes(r, deps);
  registerDocsRoutes(r);
  return r;
}
