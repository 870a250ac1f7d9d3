import Router from '@koa/router';
import type { RouteDeps } from '../src/http/server.js';
import { HttpError } from '../src/http/errors.js';
import type { AppContext, AppRouter, AppState } from '../src/http/state.js';
import { findInstance } from '../src/catalog/catalog.js';
import { isValidUid } from '../storage/keys.js';
import { parseAccept } from './accept.js';

/**
 * WADO-URI (PS3.18 §9): GET /wado?requestType=WADO&studyUID=…&seriesUID=…&objectUID=…
 * [&contentType=…][&transferSyntax=…]. Only application/dicom is produced for now: the stored
 * Part 10 file byte for byte, streamed from storage. Rendered contentTypes (image/jpeg, image/png,
 * image/gif, video/…, text/…), and transferSyntax other than the stored one, are 406 (no
 * rendering or transcoding yet). Rendering-only parameters (frameNumber, windowCenter,
 * windowWidth, rows, columns, region, imageQuality, annotation, presentation*) are 400 with
 * application/dicom, as §9.1.2.1 forbids them there. contentType absent: PS3.18 defaults to
 * image/jpeg for images, which would always be 406 here, so an absent contentType is served as
 * application/dicom when Accept allows it (documented deviation).
 */

const DICOM = 'application/dicom';
const RENDER_ONLY = [
  'frameNumber',
  'windowCenter',
  'windowWidth',
  'rows',
  'columns',
  'region',
  'imageQuality',
  'annotation',
  'presentationUID',
  'presentationSeriesUID',
];

function one(ctx: AppContext, name: string): string | undefined {
  const v = ctx.query[name];
  if (Array.isArray(v)) throw new HttpError(400, 'invalid_request', `${name} given more than once`);
  return v;
}

export function wadoUriHandler(deps: RouteDeps) {
  return async (ctx: AppContext): Promise<void> => {
    const requestType = one(ctx, 'requestType');
    if (requestType !== 'WADO') throw new HttpError(400, 'invalid_request', 'requestType must be WADO');
    const study = one(ctx, 'studyUID');
    const series = one(ctx, 'seriesUID');
    const object = one(ctx, 'objectUID');
    for (const [name, v] of [
      ['studyUID', study],
      ['seriesUID', series],
      ['objectUID', object],
    ] as const) {
      if (!isValidUid(v)) throw new HttpError(400, 'invalid_uid', `${name} is missing or not a valid UID`);
    }
    ctx.state.audit = { studyInstanceUid: study, resourceId: object };

    const contentType = one(ctx, 'contentType');
    const wanted = contentType !== undefined ? contentType : ctx.get('accept') || undefined;
    const ranges = parseAccept(wanted);
    const ok = ranges.some((r) => r.type === DICOM || r.type === '*/*' || r.type === 'application/*');
    if (!ok) {
      throw new HttpError(
        406,
        'not_acceptable',
        `contentType ${contentType ?? wanted} is not available: only ${DICOM} is served (rendered images are not implemented yet)`,
      );
    }
    const present = RENDER_ONLY.filter((p) => ctx.query[p] !== undefined);
    if (present.length) throw new HttpError(400, 'invalid_request', `${present.join(', ')} only apply to rendered images, not to ${DICOM}`);
    const anonymize = one(ctx, 'anonymize');
    if (anonymize !== undefined && anonymize !== 'no') throw new HttpError(501, 'not_implemented', 'anonymize=yes is not implemented');
    const ts = one(ctx, 'transferSyntax');
    if (ts !== undefined && !isValidUid(ts)) throw new HttpError(400, 'invalid_uid', 'transferSyntax is not a valid UID');

    const row = await findInstance(deps.db, object!);
    if (!row || row.study_instance_uid !== study || row.series_instance_uid !== series) {
      throw new HttpError(404, 'not_found', 'instance not found');
    }
    if (ts !== undefined && ts !== row.transfer_syntax_uid) {
      throw new HttpError(
        406,
        'not_acceptable',
        `the instance is stored as ${row.transfer_syntax_uid}; transcoding to ${ts} is not available yet (leave transferSyntax out)`,
      );
    }
    const body = await deps.storage.get(row.storage_key);
    ctx.state.audit = {
      studyInstanceUid: row.study_instance_uid,
      resourceId: row.sop_instance_uid,
      details: { contentType: DICOM, transferSyntax: row.transfer_syntax_uid, bytes: row.size_bytes },
    };
    ctx.status = 200;
    ctx.body = body;
    ctx.set('Content-Type', DICOM);
    ctx.length = row.size_bytes;
    ctx.set('Content-Disposition', `attachment; filename="${row.sop_instance_uid}.dcm"`);
  };
}

/** WADO-URI lives at the root (/wado), outside /dicom-web. */
export function wadoUriRoutes(deps: RouteDeps): AppRouter {
  const r = new Router<AppState>();
  r.get('/wado', deps.security.guard('images:read', 'wado.uri', 'instance'), wadoUriHandler(deps));
  return r;
}
