import type Koa from 'koa';
import type { AppState } from '../src/http/state.js';

/**
 * Cross-Origin-Resource-Policy on every DICOMweb / WADO-URI answer (errors included), so a viewer
 * page served with `Cross-Origin-Embedder-Policy: require-corp` (OHIF, for SharedArrayBuffer) may
 * embed what these routes serve (an Encapsulated PDF in an <embed>/<iframe>, a rendered image).
 *
 * `cross-origin`, not `same-site`: OHIF is often served from another site than the PACS (the
 * CORS_ORIGINS setting exists for that), and same-site would block it there. It gives nothing
 * away: every route is authorised by a Bearer token, which a no-cors embed from a foreign page
 * cannot send (no cookies are used), and scripted reads stay governed by CORS.
 */
export const CORP_VALUE = 'cross-origin';

export const corpHeader: Koa.Middleware<AppState> = async (ctx, next) => {
  ctx.set('Cross-Origin-Resource-Policy', CORP_VALUE);
  await next();
};
