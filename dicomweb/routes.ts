import Router from '@koa/router';
import type { RouteDeps } from '../src/http/deps.js';
import type { AppRouter, AppState } from '../src/http/state.js';
import { deleteHandler } from './delete.js';
import { metadataHandler } from './metadata.js';
import { qidoHandler } from './qido.js';
import { stowHandler } from './stow.js';
import { retrieveHandler } from './wado.js';
import { registerBulkdataRoutes } from './bulkdata.js';
import { registerFrameRoutes } from './frames.js';
import { registerRenderedRoutes } from './rendered.js';
import { corpHeader } from './corp.js';
import { registerWorkitemRoutes } from './workitems.js';
import { Worklist } from '../src/ups/workitems.js';
// The DICOMweb and WADO-URI paths of the OpenAPI document (registered on import).
import './openapi.js';

/** DICOMweb (PS3.18) under /dicom-web. */
export function dicomwebRoutes(deps: RouteDeps): AppRouter {
  const r = new Router<AppState>({ prefix: '/dicom-web' });
  // Before every route, so errors carry it too (see corp.ts).
  r.use(corpHeader);

  // STOW-RS, Studies Store Transaction (PS3.18 §10.5).
  const stow = stowHandler(deps);
  const canStore = deps.security.guard('images:write', 'dicomweb.stow', 'study', { started: true });
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

  // WADO-RS, Retrieve Transaction (PS3.18 §10.4): instances and metadata.
  const retrieve = retrieveHandler(deps);
  // A whole study can be gigabytes: its row is written before the retrieve starts.
  const canRetrieve = (resource: string) =>
    deps.security.guard('images:read', 'dicomweb.retrieve', resource, { started: resource === 'study' });
  r.get('/studies/:study', canRetrieve('study'), retrieve);
  r.get('/studies/:study/series/:series', canRetrieve('series'), retrieve);
  r.get('/studies/:study/series/:series/instances/:instance', canRetrieve('instance'), retrieve);
  const metadata = metadataHandler(deps);
  const canReadMetadata = (resource: string) => deps.security.guard('images:read', 'dicomweb.metadata', resource);
  r.get('/studies/:study/metadata', canReadMetadata('study'), metadata);
  r.get('/studies/:study/series/:series/metadata', canReadMetadata('series'), metadata);
  r.get('/studies/:study/series/:series/instances/:instance/metadata', canReadMetadata('instance'), metadata);

  // Delete (not in PS3.18; as dcm4chee-arc / Orthanc): admin only.
  const del = deleteHandler(deps);
  const canDelete = (resource: string) => deps.security.guard('patients:delete', 'dicomweb.delete', resource, { started: true });
  r.delete('/studies/:study', canDelete('study'), del);
  r.delete('/studies/:study/series/:series', canDelete('series'), del);
  r.delete('/studies/:study/series/:series/instances/:instance', canDelete('instance'), del);

  // WADO-RS frames and bulk data (PS3.18 §10.4.1.1.4-5), streamed by byte ranges.
  registerFrameRoutes(r, deps);
  registerBulkdataRoutes(r, deps);
  registerRenderedRoutes(r, deps);

  // UPS-RS, the Worklist Service (PS3.18 §11).
  registerWorkitemRoutes(r, deps, new Worklist({ db: deps.db, queue: deps.queue, audit: deps.audit, events: deps.events }));
  return r;
}
