import Router from '@koa/router';
import type { RouteDeps } from '../src/http/server.js';
import type { AppRouter, AppState } from '../src/http/state.js';
import { stowHandler } from './stow.js';

/** DICOMweb (PS3.18) under /dicom-web. */
export function dicomwebRoutes(deps: RouteDeps): AppRouter {
  const r = new Router<AppState>({ prefix: '/dicom-web' });

  // STOW-RS, Studies Store Transaction (PS3.18 §10.5).
  const stow = stowHandler(deps);
  const canStore = deps.security.guard('images:write', 'dicomweb.stow', 'study');
  r.post('/studies', canStore, stow);
  r.post('/studies/:study', canStore, stow);

  return r;
}
