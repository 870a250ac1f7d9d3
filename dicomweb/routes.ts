import Router from '@koa/router';
import type { RouteDeps } from '../src/http/server.js';
import type { AppRouter, AppState } from '../src/http/state.js';

/** DICOMweb (PS3.18) under /dicom-web. */
export function dicomwebRoutes(_deps: RouteDeps): AppRouter {
  return new Router<AppState>({ prefix: '/dicom-web' });
}
