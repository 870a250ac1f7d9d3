import { Readable } from 'node:stream';
import type { RouteDeps } from '../src/http/deps.js';
import { HttpError } from '../src/http/errors.js';
import type { AppContext, AppRouter } from '../src/http/state.js';
import type { StoredInstanceRow } from '../src/catalog/catalog.js';
import { errorMessage } from '../src/errors.js';
import { parseAccept } from './accept.js';
import { PDF, isEncapsulatedPdf, openEncapsulatedDocument } from './encapsulated-document.js';
import { resolveInstanceFromPath } from './frames.js';
import { newBoundary } from './multipart-writer.js';
import { cutOnError } from './streamed-response.js';
import { instanceReader } from '../src/integrity/read-instance.js';
import type { RenderedFrames, RenderFile } from '../src/dicom/render/renderer.js';
import {
  RenderError,
  type RenderBox,
  type RenderedImage,
  type RenderedMediaType,
  type RenderOptions,
  type RenderWindow,
} from '../src/dicom/render/render-types.js';
import { resolveInstances, resourcePath, resourceUrl } from './resources.js';

/**
 * WADO-RS Retrieve Rendered and Thumbnail (PS3.18 §10.4.1.1.3, §8.3.5.1):
 *   GET /dicom-web/studies/{s}[/series/{se}[/instances/{i}[/frames/{n}]]]/rendered
 *   GET /dicom-web/studies/{s}[/series/{se}[/instances/{i}]]/thumbnail
 * Rendering itself is render-image.ts (shared with WADO-URI), run in worker threads by
 * renderer.ts. Here: negotiation, parameters, which instances/frames a resource means, and the
 * HTTP shape of the answer.
 * - Instance / frame: one image (a multi-frame instance renders its first frame). An Encapsulated
 *   PDF instance is rendered as its document: application/pdf.
 * - Study / series: multipart/related; type="image/…", one part per frame of every image instance
 *   (series by SeriesNumber, instances by InstanceNumber); instances without pixel data (SR, PDF,
 *   …) or that cannot be decoded are left out. Parts are rendered a batch of frames at a time
 *   while the response streams, so memory holds one instance at a time.
 * - Thumbnail of a study / series: one representative image, the middle instance of the first
 *   series (in order) that has a renderable one.
 * Query parameters: window=center,width[,function] with function linear (the default), linear-exact or
 * sigmoid (PS3.18 §8.3.5.1.3; PS3.3 C.11.2.1.2 defines each), viewport=vw,vh, quality=n.
 * Errors: 400 bad parameter, 404 resource/frame, 406 unacceptable media type, 422 geometry the
 * pixel data cannot back, 500 render timed out or crashed, 501 not renderable.
 */

const THUMBNAIL_SIZE = 128;
const MAX_VIEWPORT = 8192;
const DEFAULT_QUALITY = 90;
/** Frames of one instance rendered per worker task in a study/series answer. */
const FRAME_BATCH = 8;
const IMAGE_TYPES: RenderedMediaType[] = ['image/jpeg', 'image/png', 'image/gif'];

/** An Accept media range → the rendered image type it allows, if any. */
function imageTypeFor(type: string): RenderedMediaType | undefined {
  const t = type.toLowerCase();
  if (t === '*/*' || t === '*' || t === 'image/*' || t === 'image/jpeg' || t === 'image/jpg') return 'image/jpeg';
  if (t === 'image/png' || t === 'image/gif') return t;
  return undefined;
}

/** Accept → image/jpeg, image/png or image/gif (jpeg for absent, any or image/*); 406 otherwise. */
export function negotiateRendered(header: string | undefined): RenderedMediaType {
  for (const r of parseAccept(header)) {
    const t = imageTypeFor(r.type);
    if (t) return t;
  }
  throw new HttpError(406, 'not_acceptable', 'rendered images are available as image/jpeg, image/png or image/gif', {
    available: IMAGE_TYPES,
  });
}

/** Accept for a study/series: multipart/related; type=image/… or a bare image type (each part). */
export function negotiateRenderedMultipart(header: string | undefined): RenderedMediaType {
  for (const r of parseAccept(header)) {
    const t = r.type.toLowerCase();
    if (t === 'multipart/related' || t === 'multipart/*') {
      const part = r.params.type === undefined ? 'image/jpeg' : imageTypeFor(r.params.type);
      if (part) return part;
      continue;
    }
    const part = imageTypeFor(t);
    if (part) return part;
  }
  throw new HttpError(406, 'not_acceptable', 'a rendered study/series is multipart/related; type="image/jpeg" (or image/png, image/gif)', {
    available: IMAGE_TYPES.map((m) => `multipart/related; type="${m}"`),
  });
}

/** Accept for an Encapsulated PDF: application/pdf (absent, any, application/*); 406 otherwise. */
function acceptsPdf(header: string | undefined): boolean {
  return parseAccept(header).some((r) => ['*/*', '*', 'application/*', PDF].includes(r.type.toLowerCase()));
}

export interface RenderParams {
  window?: RenderWindow;
  viewport?: { width: number; height: number };
  quality: number;
}

/** The VOI LUT Function each window function of PS3.18 §8.3.5.1.3 names (PS3.3 C.11.2.1.3). */
const WINDOW_FUNCTIONS: Record<string, RenderWindow['fn'] | undefined> = {
  linear: 'LINEAR',
  'linear-exact': 'LINEAR_EXACT',
  sigmoid: 'SIGMOID',
};

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[v.length - 1] : v;
}

/** Parses window, viewport and quality; 400 on malformed values. */
export function parseRenderParams(query: Record<string, string | string[] | undefined>): RenderParams {
  const bad = (name: string, msg: string) => new HttpError(400, 'invalid_parameter', `${name}: ${msg}`);
  const out: RenderParams = { quality: DEFAULT_QUALITY };
  const w = one(query.window);
  if (w !== undefined) {
    const parts = w.split(',').map((s) => s.trim());
    const center = Number(parts[0]);
    const width = Number(parts[1]);
    if (parts.length < 2 || parts.length > 3 || parts[0] === '' || parts[1] === '' || !Number.isFinite(center) || !Number.isFinite(width)) {
      throw bad('window', 'expected center,width[,linear|linear-exact|sigmoid]');
    }
    if (width <= 0) throw bad('window', 'width must be positive');
    const fn = WINDOW_FUNCTIONS[(parts[2] ?? 'linear').toLowerCase()];
    if (!fn) throw bad('window', 'function must be linear, linear-exact or sigmoid');
    out.window = { center, width, fn };
  }
  const vp = one(query.viewport);
  if (vp !== undefined) {
    const m = /^\s*(\d{1,5})\s*,\s*(\d{1,5})\s*$/.exec(vp);
    const width = Number(m?.[1]);
    const height = Number(m?.[2]);
    if (!m || width < 1 || height < 1 || width > MAX_VIEWPORT || height > MAX_VIEWPORT) {
      throw bad('viewport', `expected vw,vh (1-${MAX_VIEWPORT})`);
    }
    out.viewport = { width, height };
  }
  const q = one(query.quality);
  if (q !== undefined) {
    if (!/^\d{1,3}$/.test(q.trim()) || Number(q) < 1 || Number(q) > 100) throw bad('quality', 'expected an integer 1-100');
    out.quality = Number(q);
  }
  return out;
}

/** The scaling box: the viewport (either way), else 128×128 never enlarged for thumbnails. */
function boxFor(params: RenderParams, thumbnail: boolean): RenderBox | undefined {
  if (params.viewport) return { ...params.viewport, enlarge: true };
  return thumbnail ? { width: THUMBNAIL_SIZE, height: THUMBNAIL_SIZE, enlarge: false } : undefined;
}

/** Reads the stored instance into memory the render workers share. */
export async function loadForRendering(deps: RouteDeps, row: StoredInstanceRow): Promise<RenderFile> {
  // Checked against the index's SHA-256 first: damaged bytes are never rendered as the image.
  return deps.renderer.share([await instanceReader(deps).readAll(row)]);
}

/** One frame of a stored instance, rendered in a worker (RenderError when it cannot be). */
export async function renderStored(deps: RouteDeps, row: StoredInstanceRow, opts: RenderOptions): Promise<RenderedImage> {
  return deps.renderer.render(await loadForRendering(deps, row), opts);
}

/**
 * RenderError → the HTTP answer, shared with WADO-URI: 422 for geometry the pixel data cannot
 * back, 500 when the worker timed out or crashed, 501 for what cannot be rendered here. (A frame
 * past the end differs per service and is the caller's.)
 */
export function renderFailure(err: RenderError, row: StoredInstanceRow): HttpError {
  if (err.reason === 'invalid_geometry') return new HttpError(422, 'invalid_pixel_data', err.message);
  if (err.reason === 'failed') return new HttpError(500, 'render_failed', err.message);
  const details = err.reason === 'undecodable' ? { transferSyntax: row.transfer_syntax_uid } : undefined;
  return new HttpError(501, 'not_renderable', err.message, details);
}

/** RenderError → the WADO-RS status: 404 for a frame past the end, else as renderFailure. */
export function renderHttpError(err: unknown, row: StoredInstanceRow): unknown {
  if (!(err instanceof RenderError)) return err;
  if (err.reason === 'frame_out_of_range') {
    return new HttpError(404, 'frame_not_found', err.message, { numberOfFrames: err.numberOfFrames });
  }
  return renderFailure(err, row);
}

function auditDetails(params: RenderParams, box: RenderBox | undefined, extra: Record<string, unknown>): Record<string, unknown> {
  return {
    ...extra,
    ...(params.window
      ? { window: `${params.window.center},${params.window.width},${params.window.fn.toLowerCase().replace('_', '-')}` }
      : {}),
    ...(box ? { viewport: `${box.width},${box.height}` } : {}),
  };
}

function sendImage(ctx: AppContext, img: RenderedImage): void {
  ctx.status = 200;
  ctx.set('Content-Type', img.mediaType);
  ctx.body = img.body;
}

async function sendPdf(deps: RouteDeps, ctx: AppContext, row: StoredInstanceRow, resource: string): Promise<void> {
  const doc = await openEncapsulatedDocument(deps, row);
  ctx.state.audit = {
    studyInstanceUid: row.study_instance_uid,
    resourceId: row.sop_instance_uid,
    details: { resource, mediaType: PDF, bytes: doc.length },
  };
  ctx.status = 200;
  ctx.set('Content-Type', PDF);
  ctx.length = doc.length;
  ctx.body = doc.body;
}

function instanceHandler(deps: RouteDeps, kind: 'instance' | 'frame' | 'thumbnail') {
  return async (ctx: AppContext): Promise<void> => {
    const row = await resolveInstanceFromPath(deps, ctx);
    const accept = ctx.get('accept') || undefined;
    if (kind === 'instance' && isEncapsulatedPdf(row) && acceptsPdf(accept)) {
      await sendPdf(deps, ctx, row, kind);
      return;
    }
    const output = negotiateRendered(accept);
    const params = parseRenderParams(ctx.query as Record<string, string | string[] | undefined>);
    let frame = 1;
    if (kind === 'frame') {
      const f = ctx.params.frame ?? '';
      if (!/^\d{1,9}$/.test(f) || Number(f) < 1)
        throw new HttpError(400, 'invalid_frame_list', 'frame number must be an integer starting at 1');
      frame = Number(f);
    }
    const box = boxFor(params, kind === 'thumbnail');
    let img: RenderedImage;
    try {
      img = await renderStored(deps, row, { frame, output, quality: params.quality, window: params.window, box });
    } catch (err) {
      throw renderHttpError(err, row);
    }
    ctx.state.audit = {
      studyInstanceUid: row.study_instance_uid,
      resourceId: row.sop_instance_uid,
      details: auditDetails(params, box, { resource: kind, frame, mediaType: output }),
    };
    sendImage(ctx, img);
  };
}

/** The middle instance of each series, in series order: the thumbnail candidates. */
function representativeCandidates(rows: StoredInstanceRow[]): StoredInstanceRow[] {
  const bySeries = new Map<string, StoredInstanceRow[]>();
  for (const r of rows) {
    const list = bySeries.get(r.series_instance_uid) ?? [];
    list.push(r);
    bySeries.set(r.series_instance_uid, list);
  }
  return [...bySeries.values()].map((list) => list[Math.floor((list.length - 1) / 2)]!);
}

function groupThumbnailHandler(deps: RouteDeps) {
  return async (ctx: AppContext): Promise<void> => {
    const p = resourcePath(ctx);
    ctx.state.audit = { studyInstanceUid: p.study, resourceId: p.series ?? p.study };
    const rows = await resolveInstances(deps.db, p);
    const output = negotiateRendered(ctx.get('accept') || undefined);
    const params = parseRenderParams(ctx.query as Record<string, string | string[] | undefined>);
    const box = boxFor(params, true);
    for (const row of representativeCandidates(rows.filter((r) => !isEncapsulatedPdf(r)))) {
      let img: RenderedImage;
      try {
        img = await renderStored(deps, row, { frame: 1, output, quality: params.quality, window: params.window, box });
      } catch (err) {
        if (!(err instanceof RenderError)) throw err;
        // Not an image series, or an instance that cannot be rendered: try the next one.
        if (err.reason !== 'no_pixel_data') {
          deps.log.warn({ kind: err.reason, transferSyntax: row.transfer_syntax_uid }, 'thumbnail candidate not rendered');
        }
        continue;
      }
      ctx.state.audit = {
        studyInstanceUid: p.study,
        resourceId: p.series ?? p.study,
        details: auditDetails(params, box, { resource: 'thumbnail', level: p.level, instance: row.sop_instance_uid, mediaType: output }),
      };
      sendImage(ctx, img);
      return;
    }
    throw new HttpError(501, 'not_renderable', `the ${p.level} has no instance that can be rendered`);
  };
}

interface RenderedPart {
  img: RenderedImage;
  location: string;
}

/**
 * The parts of a rendered study/series, rendered lazily in order, a batch of frames per worker
 * task. Instances that are not renderable (or whose rendering failed) are skipped (counted,
 * logged without UIDs); other failures end the generator with the error, which cuts the response
 * short (no closing delimiter).
 */
async function* renderedParts(
  deps: RouteDeps,
  rows: StoredInstanceRow[],
  options: Omit<RenderOptions, 'frame'>,
  base: string,
  skipped: { count: number },
): AsyncGenerator<RenderedPart> {
  for (const row of rows) {
    if (isEncapsulatedPdf(row)) {
      skipped.count++;
      continue;
    }
    const file = await loadForRendering(deps, row);
    const location = resourceUrl(base, row.study_instance_uid, row.series_instance_uid, row.sop_instance_uid);
    let next = 1;
    for (let frames = 1; next <= frames; ) {
      let batch: RenderedFrames;
      try {
        batch = await deps.renderer.frames(file, next, FRAME_BATCH, options);
      } catch (err) {
        if (!(err instanceof RenderError)) throw err;
        if (err.reason !== 'no_pixel_data') {
          deps.log.warn(
            { kind: err.reason, transferSyntax: row.transfer_syntax_uid },
            'rendered study/series: an instance could not be rendered and was left out',
          );
        }
        skipped.count++;
        break;
      }
      frames = batch.numberOfFrames;
      if (batch.images.length === 0) break;
      for (const img of batch.images) {
        yield { img, location: frames > 1 ? `${location}/frames/${next}/rendered` : `${location}/rendered` };
        next++;
      }
    }
  }
}

function partBytes(boundary: string, first: boolean, part: RenderedPart): Buffer {
  const head =
    `${first ? '' : '\r\n'}--${boundary}\r\n` +
    `Content-Type: ${part.img.mediaType}\r\nContent-Length: ${part.img.body.length}\r\nContent-Location: ${part.location}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), part.img.body]);
}

function groupRenderedHandler(deps: RouteDeps) {
  return async (ctx: AppContext): Promise<void> => {
    const p = resourcePath(ctx);
    ctx.state.audit = { studyInstanceUid: p.study, resourceId: p.series ?? p.study };
    const rows = await resolveInstances(deps.db, p);
    const output = negotiateRenderedMultipart(ctx.get('accept') || undefined);
    const params = parseRenderParams(ctx.query as Record<string, string | string[] | undefined>);
    const box = boxFor(params, false);
    const skipped = { count: 0 };
    const options = { output, quality: params.quality, window: params.window, box };
    const parts = renderedParts(deps, rows, options, `${ctx.state.baseUrl}/dicom-web`, skipped);
    // The first part is rendered before the status is sent, so "nothing renderable" is an error status.
    const first = await parts.next();
    if (first.done) throw new HttpError(501, 'not_renderable', `the ${p.level} has no instance that can be rendered`);
    ctx.state.audit = {
      studyInstanceUid: p.study,
      resourceId: p.series ?? p.study,
      details: auditDetails(params, box, { resource: 'rendered', level: p.level, instances: rows.length, mediaType: output }),
    };
    const boundary = newBoundary();
    const requestId = ctx.state.requestId;
    const log = deps.log;
    async function* body(): AsyncGenerator<Buffer> {
      try {
        yield partBytes(boundary, true, first.value as RenderedPart);
        for await (const part of parts) yield partBytes(boundary, false, part);
        if (skipped.count)
          log.info({ requestId, skipped: skipped.count }, 'rendered study/series: instances without renderable pixel data left out');
        yield Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1');
      } catch (err) {
        log.error({ err: errorMessage(err), requestId }, 'WADO-RS rendered study/series failed midway');
        throw err;
      }
    }
    ctx.status = 200;
    ctx.set('Content-Type', `multipart/related; type="${output}"; boundary=${boundary}`);
    // A later part failing (a damaged or missing blob) cuts the connection, never an uncaught error.
    ctx.body = cutOnError(ctx, Readable.from(body()));
  };
}

/** Registers the rendered and thumbnail resources on the /dicom-web router. */
export function registerRenderedRoutes(r: AppRouter, deps: RouteDeps): void {
  const canRead = (resource: string) => deps.security.guard('images:read', 'dicomweb.rendered', resource);
  const base = '/studies/:study/series/:series/instances/:instance';
  r.get(`${base}/rendered`, canRead('instance'), instanceHandler(deps, 'instance'));
  r.get(`${base}/frames/:frame/rendered`, canRead('instance'), instanceHandler(deps, 'frame'));
  r.get(`${base}/thumbnail`, canRead('instance'), instanceHandler(deps, 'thumbnail'));
  const group = groupRenderedHandler(deps);
  const thumb = groupThumbnailHandler(deps);
  r.get('/studies/:study/rendered', canRead('study'), group);
  r.get('/studies/:study/series/:series/rendered', canRead('series'), group);
  r.get('/studies/:study/thumbnail', canRead('study'), thumb);
  r.get('/studies/:study/series/:series/thumbnail', canRead('series'), thumb);
}
