import Router from '@koa/router';
import type { RouteDeps } from '../src/http/deps.js';
import { HttpError } from '../src/http/errors.js';
import type { AppContext, AppRouter, AppState } from '../src/http/state.js';
import { findInstance, type StoredInstanceRow } from '../src/catalog/catalog.js';
import { isValidUid } from '../src/dicom/uids.js';
import { parseAccept } from './accept.js';
import { corpHeader } from './corp.js';
import { PDF, isEncapsulatedPdf, openEncapsulatedDocument } from './encapsulated-document.js';
import { PIXEL_DATA, RangeReader, findElement, unsupportedStorage } from '../src/dicom/pixel-data.js';
import { RenderError, type RenderedImage, type RenderedMediaType, type RenderOptions } from '../src/dicom/render/render-types.js';
import { renderFailure, renderStored } from './rendered.js';
import { TranscodeError } from '../src/dicom/transcoder.js';
import { instanceReader } from '../src/integrity/read-instance.js';

/**
 * WADO-URI (PS3.18 §9): GET /wado?requestType=WADO&studyUID=…&seriesUID=…&objectUID=…
 * [&contentType=…][&transferSyntax=…][&frameNumber][&windowCenter&windowWidth][&rows][&columns]
 * [&region][&imageQuality].
 *
 * contentType (a list with q-values, like Accept) picks the answer; when it is absent the Accept
 * header does, and `*\/*` (or no Accept) means PS3.18's default: image/jpeg for an object with
 * pixel data, application/dicom for anything else. So an absent contentType with
 * `Accept: application/dicom` still gets the file.
 * - application/dicom: the stored Part 10 file byte for byte, streamed from storage. A
 *   transferSyntax other than the stored one is transcoded (uncompressed and lossless syntaxes;
 *   406 when the stored pixel data cannot be decoded or the syntax asked is lossy).
 * - image/jpeg, image/png, image/gif: one frame rendered by render-image.ts in a render worker
 *   (shared with WADO-RS rendered; 422 for geometry its pixel data cannot back, 500 when the
 *   worker times out or crashes): frameNumber (1-based; 400 when malformed or past the last frame, PS3.18 §9.5.2),
 *   windowCenter+windowWidth (both or neither), rows/columns (maxima; one alone keeps the aspect),
 *   region (normalised xmin,ymin,xmax,ymax), imageQuality 1-100 (JPEG only; ignored otherwise).
 * - application/pdf: for an Encapsulated PDF, the document (0042,0011).
 * The rendering parameters are 400 with application/dicom and application/pdf (§9.1.2.1 forbids
 * them there). annotation and charset are ignored; presentationUID/presentationSeriesUID are 501.
 */

const DICOM = 'application/dicom';
const MAX_SIZE = 8192;
const DEFAULT_QUALITY = 90;
type UriContentType = typeof DICOM | typeof PDF | RenderedMediaType;

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

const bad = (name: string, msg: string) => new HttpError(400, 'invalid_parameter', `${name}: ${msg}`);

/** What an object can be served as: the file always; a rendered image or the PDF when it has one. */
export interface ObjectKind {
  image: boolean;
  pdf: boolean;
}

/**
 * The first media range (in preference order) the object can be served as; undefined → 406.
 * `*\/*` is PS3.18's default (image/jpeg for images, else application/dicom); image/* → JPEG.
 */
export function chooseUriContentType(list: string | undefined, kind: ObjectKind): UriContentType | undefined {
  for (const r of parseAccept(list)) {
    const t = r.type.toLowerCase();
    if (t === DICOM || t === 'application/*') return DICOM;
    if (t === PDF && kind.pdf) return PDF;
    if (!kind.image) {
      if (t === '*/*' || t === '*') return DICOM;
      continue;
    }
    if (t === '*/*' || t === '*' || t === 'image/*' || t === 'image/jpeg' || t === 'image/jpg') return 'image/jpeg';
    if (t === 'image/png' || t === 'image/gif') return t;
  }
  return undefined;
}

/** Whether the data set has Pixel Data, by walking element headers (no full read). */
async function objectKind(deps: RouteDeps, row: StoredInstanceRow): Promise<ObjectKind> {
  const pdf = isEncapsulatedPdf(row);
  if (pdf) return { image: false, pdf };
  // Deflated / big endian cannot be walked here: assume an image; rendering falls back if not.
  if (unsupportedStorage(row.transfer_syntax_uid)) return { image: true, pdf };
  const info = await deps.storage.stat(row.storage_key);
  if (!info) throw new HttpError(404, 'not_found', 'the instance object is missing from storage');
  const e = await findElement(new RangeReader(deps.storage, row.storage_key, info.size), row.transfer_syntax_uid, PIXEL_DATA);
  return { image: e !== undefined, pdf };
}

function decimal(name: string, v: string): number {
  const t = v.trim();
  if (!/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(t)) throw bad(name, 'expected a decimal number');
  return Number(t);
}

function size(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\s*\d{1,5}\s*$/.test(v) || Number(v) < 1 || Number(v) > MAX_SIZE) throw bad(name, `expected an integer 1-${MAX_SIZE}`);
  return Number(v);
}

/** The rendering parameters of §9.1.2.1 / §9.5.1 (frame checked against the object later). */
export function parseUriRenderParams(get: (name: string) => string | undefined, output: RenderedMediaType): RenderOptions {
  const opts: RenderOptions = { frame: 1, output, quality: DEFAULT_QUALITY };
  const f = get('frameNumber');
  if (f !== undefined) {
    if (!/^\s*\d{1,9}\s*$/.test(f) || Number(f) < 1) throw bad('frameNumber', 'expected a positive integer (frames start at 1)');
    opts.frame = Number(f);
  }
  const wc = get('windowCenter');
  const ww = get('windowWidth');
  if ((wc === undefined) !== (ww === undefined))
    throw bad(wc === undefined ? 'windowWidth' : 'windowCenter', 'windowCenter and windowWidth go together');
  if (wc !== undefined && ww !== undefined) {
    const center = decimal('windowCenter', wc);
    const width = decimal('windowWidth', ww);
    if (!(width > 0)) throw bad('windowWidth', 'must be positive');
    opts.window = { center, width, fn: 'LINEAR' };
  }
  const rows = size('rows', get('rows'));
  const columns = size('columns', get('columns'));
  if (rows !== undefined || columns !== undefined) opts.box = { width: columns, height: rows, enlarge: true };
  const region = get('region');
  if (region !== undefined) {
    const v = region.split(',').map((s) => decimal('region', s));
    const [x0, y0, x1, y1] = v as [number, number, number, number];
    if (v.length !== 4 || v.some((n) => n < 0 || n > 1) || !(x0 < x1) || !(y0 < y1)) {
      throw bad('region', 'expected xmin,ymin,xmax,ymax within 0.0-1.0, min < max');
    }
    opts.region = { x0, y0, x1, y1 };
  }
  const q = get('imageQuality');
  if (q !== undefined) {
    if (!/^\s*\d{1,3}\s*$/.test(q) || Number(q) < 1 || Number(q) > 100) throw bad('imageQuality', 'expected an integer 1-100');
    opts.quality = Number(q);
  }
  return opts;
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
    const anonymize = one(ctx, 'anonymize');
    if (anonymize !== undefined && anonymize !== 'no') throw new HttpError(501, 'not_implemented', 'anonymize=yes is not implemented');
    const ts = one(ctx, 'transferSyntax');
    if (ts !== undefined && !isValidUid(ts)) throw new HttpError(400, 'invalid_uid', 'transferSyntax is not a valid UID');

    const row = await findInstance(deps.db, object!);
    if (!row || row.study_instance_uid !== study || row.series_instance_uid !== series) {
      throw new HttpError(404, 'not_found', 'instance not found');
    }
    // The common case (a viewer fetching the file) needs no look inside the object.
    const explicitDicom = contentType !== undefined && parseAccept(contentType)[0]?.type.toLowerCase() === DICOM;
    const kind = explicitDicom ? { image: false, pdf: false } : await objectKind(deps, row);
    const chosen = chooseUriContentType(wanted, kind);
    if (!chosen) {
      const offer = [DICOM, ...(kind.pdf ? [PDF] : []), ...(kind.image ? ['image/jpeg', 'image/png', 'image/gif'] : [])];
      throw new HttpError(
        406,
        'not_acceptable',
        `${contentType !== undefined ? 'contentType' : 'Accept'} ${wanted} is not available for this object (available: ${offer.join(', ')})`,
        {
          available: offer,
        },
      );
    }
    if (chosen === DICOM || chosen === PDF) {
      await sendWhole(deps, ctx, row, chosen, ts);
      return;
    }
    if (ts !== undefined) throw new HttpError(400, 'invalid_request', `transferSyntax only applies to ${DICOM}, not to ${chosen}`);
    for (const p of ['presentationUID', 'presentationSeriesUID']) {
      if (ctx.query[p] !== undefined) throw new HttpError(501, 'not_implemented', `${p}: applying presentation states is not implemented`);
    }
    const opts = parseUriRenderParams((name) => one(ctx, name), chosen);
    let img: RenderedImage;
    try {
      img = await renderStored(deps, row, opts);
    } catch (err) {
      if (!(err instanceof RenderError)) throw err;
      if (err.reason === 'frame_out_of_range') {
        throw new HttpError(400, 'invalid_parameter', `frameNumber: ${err.message}`, { numberOfFrames: err.numberOfFrames });
      }
      // The default guessed wrong (deflated / big-endian object without pixel data): the file then.
      if (
        err.reason === 'no_pixel_data' &&
        contentType === undefined &&
        chooseUriContentType(wanted, { image: false, pdf: false }) === DICOM
      ) {
        await sendWhole(deps, ctx, row, DICOM, ts);
        return;
      }
      const failure = renderFailure(err, row);
      // WADO-URI has always named the syntax of what it could not render.
      if (failure.status === 501) throw new HttpError(501, 'not_renderable', err.message, { transferSyntax: row.transfer_syntax_uid });
      throw failure;
    }
    ctx.state.audit = {
      studyInstanceUid: row.study_instance_uid,
      resourceId: row.sop_instance_uid,
      details: {
        contentType: chosen,
        frame: opts.frame,
        ...(opts.window ? { window: `${opts.window.center},${opts.window.width}` } : {}),
        ...(opts.box ? { rows: opts.box.height, columns: opts.box.width } : {}),
      },
    };
    ctx.status = 200;
    ctx.set('Content-Type', img.mediaType);
    ctx.body = img.body;
  };
}

/** application/dicom (the stored file) or application/pdf (the encapsulated document). */
async function sendWhole(
  deps: RouteDeps,
  ctx: AppContext,
  row: StoredInstanceRow,
  type: typeof DICOM | typeof PDF,
  ts: string | undefined,
): Promise<void> {
  const present = RENDER_ONLY.filter((p) => ctx.query[p] !== undefined);
  if (present.length) throw new HttpError(400, 'invalid_request', `${present.join(', ')} only apply to rendered images, not to ${type}`);
  if (type === PDF) {
    if (ts !== undefined) throw new HttpError(400, 'invalid_request', `transferSyntax only applies to ${DICOM}, not to ${PDF}`);
    const doc = await openEncapsulatedDocument(deps, row);
    ctx.state.audit = {
      studyInstanceUid: row.study_instance_uid,
      resourceId: row.sop_instance_uid,
      details: { contentType: PDF, bytes: doc.length },
    };
    ctx.status = 200;
    ctx.body = doc.body;
    ctx.set('Content-Type', PDF);
    ctx.length = doc.length;
    // inline: the viewer shows it in an <embed>/<iframe>.
    ctx.set('Content-Disposition', `inline; filename="${row.sop_instance_uid}.pdf"`);
    return;
  }
  if (ts !== undefined && ts !== row.transfer_syntax_uid) {
    // Transcoded in a worker (src/dicom/transcoder.ts): uncompressed and lossless syntaxes only.
    let bytes: Buffer;
    try {
      bytes = await deps.transcoder.cached(
        { sopInstanceUid: row.sop_instance_uid, sizeBytes: row.size_bytes },
        row.transfer_syntax_uid,
        ts,
        () => instanceReader(deps).readAll(row),
      );
    } catch (err) {
      if (err instanceof TranscodeError)
        throw new HttpError(406, 'not_acceptable', `${err.message} (leave transferSyntax out to get the instance as stored)`);
      throw err;
    }
    ctx.state.audit = {
      studyInstanceUid: row.study_instance_uid,
      resourceId: row.sop_instance_uid,
      details: { contentType: DICOM, transferSyntax: ts, transcodedFrom: row.transfer_syntax_uid, bytes: bytes.length },
    };
    ctx.status = 200;
    ctx.body = bytes;
    ctx.set('Content-Type', DICOM);
    ctx.set('Content-Disposition', `attachment; filename="${row.sop_instance_uid}.dcm"`);
    return;
  }
  const body = await instanceReader(deps).open(row);
  // A blob failing its SHA-256 check ends the stream with an error after the status went out:
  // close the connection, so the client sees a broken transfer rather than waiting for bytes.
  body.once('error', () => ctx.res.destroy());
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
}

/** WADO-URI lives at the root (/wado), outside /dicom-web. */
export function wadoUriRoutes(deps: RouteDeps): AppRouter {
  const r = new Router<AppState>();
  r.get('/wado', corpHeader, deps.security.guard('images:read', 'wado.uri', 'instance'), wadoUriHandler(deps));
  return r;
}
