import type { RouteDeps } from '../src/http/server.js';
import { HttpError } from '../src/http/errors.js';
import type { AppContext, AppRouter } from '../src/http/state.js';
import type { StoredInstanceRow } from '../src/catalog/catalog.js';
import { errorMessage } from '../src/errors.js';
import type { ByteRange } from '../storage/types.js';
import { parseAccept } from './accept.js';
import { multipartStream, newBoundary, type OutPart } from './multipart-writer.js';
import { resolveInstances, resourcePath } from './resources.js';
import {
  EXPLICIT_LE,
  IMPLICIT_LE,
  compressedMediaType,
  isNative,
  pixelDataLayout,
  rangesLength,
  rangesStream,
  type PixelDataLayout,
} from './pixel-data.js';

/**
 * WADO-RS Retrieve Frames (PS3.18 §10.4.1.1.4 / §8.7.3.5.4):
 * GET /dicom-web/studies/{s}/series/{se}/instances/{i}/frames/{list}, list = 1-based frame
 * numbers separated by commas. Answers multipart/related, one part per requested frame in the
 * order asked, each streamed from storage by byte ranges (pixel-data.ts): the file is never read
 * whole. Every part's Content-Type names its transfer syntax.
 */

const OCTET = 'application/octet-stream';
const MAX_FRAMES_IN_LIST = 10_000;
/** Names clients use for the same media types (dicomweb-client sends the x- and jhc forms). */
const ALIASES: Record<string, string> = { 'image/x-dicom-rle': 'image/dicom-rle', 'image/x-jls': 'image/jls', 'image/jhc': 'image/jphc' };

/** The instance a path names: 400 on a malformed UID, 404 when absent or not below study/series. */
export async function resolveInstanceFromPath(deps: RouteDeps, ctx: AppContext): Promise<StoredInstanceRow> {
  const p = resourcePath(ctx);
  ctx.state.audit = { studyInstanceUid: p.study, resourceId: p.instance };
  const [row] = await resolveInstances(deps.db, p);
  return row!;
}

/** "1,3,5" → [1,3,5]; 400 on anything else (0, negatives, junk, empty entries). */
export function parseFrameList(list: string | undefined): number[] {
  const bad = () => new HttpError(400, 'invalid_frame_list', 'frame list must be comma-separated frame numbers starting at 1');
  if (!list) throw bad();
  const items = list.split(',');
  if (items.length > MAX_FRAMES_IN_LIST) throw new HttpError(400, 'invalid_frame_list', `at most ${MAX_FRAMES_IN_LIST} frames per request`);
  return items.map((s) => {
    const t = s.trim();
    if (!/^\d{1,9}$/.test(t)) throw bad();
    const n = Number(t);
    if (n < 1) throw bad();
    return n;
  });
}

export interface FrameChoice {
  /** multipart (the usual) or a single-part body (only when one frame / one value is answered). */
  multipart: boolean;
  /** Media type of each part (or of the body). */
  mediaType: string;
  /** The transfer-syntax parameter each part carries. */
  transferSyntax: string;
}

/**
 * Accept negotiation for pixel data (frames, and Pixel Data via bulkdata), PS3.18 §8.7.3.5:
 * nothing is ever transcoded, so the answer is always the stored bytes, and the question is only
 * whether the client accepts them under some media type.
 *
 * Native data (implicit/explicit VR little endian): application/octet-stream with
 * transfer-syntax absent, `*`, 1.2.840.10008.1.2.1 or 1.2.840.10008.1.2 (the pixel bytes are the
 * same in both). Encapsulated data: its compressed media type (image/jpeg for .50/.51/.57/.70,
 * image/jls .80/.81, image/jp2 .90/.91, image/jpx .92/.93, image/jphc .201-.203,
 * image/dicom-rle .5; the aliases image/x-jls, image/x-dicom-rle and image/jhc too) with transfer-syntax absent, `*` or the stored one; or
 * application/octet-stream with transfer-syntax `*` or the stored one (what OHIF asks for: the
 * bitstream, named by its transfer syntax). `type` quoted or unquoted (the parser unquotes);
 * `*\/*`, `multipart/*` and multipart/related without a type answer as stored.
 * `singlePartOk`: a bare media range (not multipart) may be answered with a single-part body.
 */
export function negotiatePixelData(header: string | undefined, storedTs: string, singlePartOk: boolean): FrameChoice | { reasons: string[] } {
  const native = isNative(storedTs);
  const compressed = compressedMediaType(storedTs);
  const asStored = { mediaType: native ? OCTET : (compressed ?? OCTET), transferSyntax: storedTs };
  const reasons: string[] = [];
  const tsOk = (ts: string | undefined, type: string): string | undefined => {
    if (ts === undefined || ts === '*') return storedTs;
    if (ts === storedTs) return storedTs;
    if (native && type === OCTET && (ts === EXPLICIT_LE || ts === IMPLICIT_LE)) return ts;
    reasons.push(`${type} with transfer-syntax=${ts} would need transcoding from ${storedTs}, which is not available yet (ask for transfer-syntax=*)`);
    return undefined;
  };
  const match = (asked: string, ts: string | undefined): Omit<FrameChoice, 'multipart'> | undefined => {
    const type = ALIASES[asked] ?? asked;
    if (type === '*/*' || type === '*') return asStored;
    if (type === OCTET) {
      if (!native && ts === undefined) {
        reasons.push(`${OCTET} without transfer-syntax means uncompressed (explicit VR little endian), but the pixel data is stored as ${storedTs} and transcoding is not available yet (ask for transfer-syntax=*)`);
        return undefined;
      }
      const t = tsOk(ts, type);
      return t ? { mediaType: OCTET, transferSyntax: t } : undefined;
    }
    if (type === 'image/*' && compressed) return tsOk(ts, type) ? asStored : undefined;
    if (compressed && type === compressed) {
      const t = tsOk(ts, type);
      return t ? { mediaType: compressed, transferSyntax: t } : undefined;
    }
    reasons.push(`${type} cannot be produced from pixel data stored as ${storedTs}: transcoding is not available yet`);
    return undefined;
  };
  for (const r of parseAccept(header)) {
    const ts = r.params['transfer-syntax'];
    if (r.type === '*/*' || r.type === 'multipart/*') return { multipart: true, ...asStored };
    if (r.type === 'multipart/related') {
      const type = r.params.type?.toLowerCase();
      if (type === undefined) {
        const t = ts === undefined || ts === '*' || ts === storedTs ? asStored : undefined;
        if (t) return { multipart: true, ...t };
        reasons.push(`transfer-syntax=${ts} would need transcoding from ${storedTs}, which is not available yet`);
        continue;
      }
      const m = match(type, ts);
      if (m) return { multipart: true, ...m };
      continue;
    }
    if (!singlePartOk) {
      reasons.push(`${r.type} as a single part is only served for one frame; use multipart/related; type="${r.type}"`);
      continue;
    }
    const m = match(r.type, ts);
    if (m) return { multipart: false, ...m };
  }
  return { reasons };
}

export function notAcceptable(reasons: string[]): HttpError {
  return new HttpError(406, 'not_acceptable', reasons[0] ?? 'no acceptable media type for this pixel data', { reasons });
}

/** Streams the given byte-range lists as the response: multipart, or one body. */
export function sendRanges(
  deps: RouteDeps,
  ctx: AppContext,
  key: string,
  choice: FrameChoice,
  bodies: Array<{ ranges: ByteRange[]; location?: string }>,
): void {
  const partType = `${choice.mediaType}; transfer-syntax=${choice.transferSyntax}`;
  if (!choice.multipart) {
    const only = bodies[0]!;
    ctx.status = 200;
    ctx.body = rangesStream(deps.storage, key, only.ranges);
    ctx.set('Content-Type', partType);
    ctx.length = rangesLength(only.ranges);
    return;
  }
  const parts: OutPart[] = bodies.map((b) => ({
    headers: {
      'Content-Type': partType,
      'Content-Length': String(rangesLength(b.ranges)),
      ...(b.location ? { 'Content-Location': b.location } : {}),
    },
    open: async () => rangesStream(deps.storage, key, b.ranges),
  }));
  const boundary = newBoundary();
  const { stream, done } = multipartStream(boundary, parts);
  const requestId = ctx.state.requestId;
  const res = ctx.res;
  done.catch((err: unknown) => {
    if (!res.destroyed && !res.writableFinished) {
      deps.log.error({ err: errorMessage(err), requestId }, 'WADO-RS pixel data retrieve failed midway');
      res.destroy();
    }
  });
  ctx.status = 200;
  ctx.body = stream;
  ctx.set(
    'Content-Type',
    `multipart/related; type="${choice.mediaType}"; transfer-syntax=${choice.transferSyntax}; boundary=${boundary}`,
  );
}

export function framesHandler(deps: RouteDeps) {
  return async (ctx: AppContext): Promise<void> => {
    const row = await resolveInstanceFromPath(deps, ctx);
    const numbers = parseFrameList(ctx.params.frames);
    const choice = negotiatePixelData(ctx.get('accept') || undefined, row.transfer_syntax_uid, numbers.length === 1);
    if ('reasons' in choice) throw notAcceptable(choice.reasons);
    let layout: PixelDataLayout;
    layout = await pixelDataLayout(deps.storage, row.storage_key, row.transfer_syntax_uid);
    const missing = numbers.filter((n) => n > layout.frames.length);
    if (missing.length) {
      throw new HttpError(404, 'frame_not_found', `frame ${missing[0]} does not exist: the instance has ${layout.frames.length} frame(s)`, {
        numberOfFrames: layout.frames.length,
        missing,
      });
    }
    const base = `${ctx.protocol}://${ctx.host}/dicom-web/studies/${row.study_instance_uid}/series/${row.series_instance_uid}/instances/${row.sop_instance_uid}/frames`;
    ctx.state.audit = {
      studyInstanceUid: row.study_instance_uid,
      resourceId: row.sop_instance_uid,
      details: { frames: numbers.length, mediaType: choice.mediaType, transferSyntax: choice.transferSyntax, mapping: layout.mapping },
    };
    sendRanges(
      deps,
      ctx,
      row.storage_key,
      choice,
      numbers.map((n) => ({ ranges: layout.frames[n - 1]!, location: `${base}/${n}` })),
    );
  };
}

/** Registers GET .../instances/{i}/frames/{list} on the /dicom-web router. */
export function registerFrameRoutes(r: AppRouter, deps: RouteDeps): void {
  const canRead = deps.security.guard('images:read', 'dicomweb.retrieve', 'instance');
  r.get('/studies/:study/series/:series/instances/:instance/frames/:frames', canRead, framesHandler(deps));
}
