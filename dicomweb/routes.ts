import Router from '@koa/router';
import type { RouteDeps } from '../src/http/server.js';
import type { AppRouter, AppState } from '../src/http/state.js';
import { qidoHandler } from './qido.js';
import { stowHandler } from './stow.js';

/** DICOMweb (PS3.18) under /dicom-web. */
export function dicomwebRoutes(deps: RouteDeps): AppRouter {
  const r = new Router<AppState>({ prefix: '/dicom-web' });

  // STOW-RS, Studies Store Transaction (PS3.18 §10.5).
  const stow = stowHandler(deps);
  const canStore = deps.security.guard('images:write', 'dicomweb.stow', 'study');
  r.post('/studies', canStore, stow);
  r.post('/studies/:study', canStore, stow);

  // QIDO-RS, Search Transaction (PS3.18 §10.6), over the shared query engine (src/query/).
  const qidoOpts = { strict: deps.config.dicomweb.qidoStrict };
  const canSearch = (resource: string) => deps.security.guard('images:read', 'dicomweb.qido', resource);
  r.get('/studies', canSearch('study'), qidoHandler(deps, 'study', qidoOpts));
  r.get('/studies/:study/series', canSearch('series'), qidoHandler(deps, 'series', qidoOpts));
  r.get('/series', canSearch('series'), qidoHandler(deps, 'series', qidoOpts));
  r.get('/studies/:study/series/:series/instances', canSearch('instance'), qidoHandler(deps, 'instance', qidoOpts));
  r.get('/studies/:study/instances', canSearch('instance'), qidoHandler(deps, 'instance', qidoOpts));
  r.get('/instances', canSearch('instance'), qidoHandler(deps, 'instance', qidoOpts));

  return r;
}
