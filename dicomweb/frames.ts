import type { Readable } from 'node:stream';
import type { RouteDeps } from '../src/http/deps.js';
import { HttpError } from '../src/http/errors.js';
import type { AppContext, AppRouter } from '../src/http/state.js';
import type { StoredInstanceRow } from '../src/catalog/catalog.js';
import type { ByteRange } from '../storage/types.js';
import { parseAccept } from './accept.js';
import { multipartBody, multipartFraming, newBoundary, type OutPart } from './multipart-writer.js';
import { readAll } from '../storage/read-all.js';
import { cutOnError, respondMultipart } from './streamed-response.js';
import { resolveInstances, resourcePath } from './resources.js';
import { TranscodeError } from '../src/dicom/transcoder.js';
import { whyNotTranscodable } from '../src/dicom/transcode-syntaxes.js';
import { MemoryBlobs } from '../storage/memory.js';
import { instanceReader } from '../src/integrity/read-instance.js';
import { isNative, unsupportedStorage, rangesLength, rangesStream, type PixelDataLayout } from '../src/dicom/pixel-data.js';
import { compressedMediaType, TS } from '../src/dicom/transfer-syntax.js';
import { pixelDataLayout, storedPixelDataLayout } from './pixel-data.js';

const EXPLICIT_LE = TS.ExplicitVRLittleEndian;
const IMPLICIT_LE = TS.ImplicitVRLittleEndian;

/**
 * WADO-RS Retrieve Frames (PS3.18 §10.4.1.1.4 / §8.7.3.5.4):
 * GET /dicom-web/studies/{s}/series/{se}/instances/{i}/frames/{list}, list = 1-based frame
 * numbers separated by commas. Answers multipart/related, one part per requested frame in the
 * order asked, each streamed from storage by byte ranges (pixel-data.ts): the file is never read
 * whole. Every part's Content-Type names its transfer syntax.
 *
 * Integrity (storage/integrity.ts): a ranged read cannot be checked against the instance's
 * SHA-256, which covers the whole object; reading all of it for every frame would undo the
 * ranges. Frames served as stored are therefore not verified; frames decoded from the instance
 * (transcodedSource) read it whole and are checked first (500 blob_integrity on a mismatch). A
 * part whose stream fails midway cuts the connection (streamed-response.ts).
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
  /** The syntax the instance must first be transcoded into; absent: the stored bytes serve. */
  decodeTo?: string;
}

/** The transfer syntax a compressed media type means when none is named (PS3.18 Table 8.7.3-2). */
export const DEFAULT_SYNTAX: Readonly<Record<string, string>> = {
  [OCTET]: EXPLICIT_LE,
  'image/jpeg': TS.JPEGBaseline8Bit,
  'image/jls': TS.JPEGLSLossless,
  'image/jp2': TS.JPEG2000Lossless,
  'image/jpx': TS.JPEG2000MCLossless,
  'image/jphc': TS.HTJ2KLossless,
  'image/dicom-rle': TS.RLELossless,
};

/**
 * Accept negotiation for pixel data (frames, and Pixel Data via bulkdata), PS3.18 §8.7.3.5.
 *
 * As stored, native data (implicit/explicit VR little endian) is application/octet-stream with
 * transfer-syntax absent, `*`, 1.2.840.10008.1.2.1 or 1.2.840.10008.1.2 (the pixel bytes are the
 * same in both); encapsulated data is its compressed media type (image/jpeg for
 * .50/.51/.57/.70, image/jls .80/.81, image/jp2 .90/.91, image/jpx .92/.93, image/jphc
 * .201-.203, image/dicom-rle .5; the aliases image/x-jls, image/x-dicom-rle and image/jhc too)
 * with transfer-syntax absent, `*` or the stored one, or application/octet-stream with
 * transfer-syntax `*` or the stored one (what OHIF asks for: the bitstream, named by its
 * transfer syntax). `type` quoted or unquoted (the parser unquotes); `*\/*`, `multipart/*` and
 * multipart/related without a type answer as stored.
 *
 * With `whyNot` (the transcoder's capability check), anything else the instance can be
 * transcoded into is offered too: uncompressed frames of compressed (or big endian, or
 * deflated) data — application/octet-stream without a transfer syntax — and lossless
 * compressions named by media type or transfer syntax. `decodeTo` then says into what.
 * `singlePartOk`: a bare media range (not multipart) may be answered with a single-part body.
 */
export function negotiatePixelData(
  header: string | undefined,
  storedTs: string,
  singlePartOk: boolean,
  whyNot?: (from: string, to: string) => string | undefined,
): FrameChoice | { reasons: string[] } {
  const native = isNative(storedTs) && unsupportedStorage(storedTs) === undefined;
  const compressed = compressedMediaType(storedTs);
  const reasons: string[] = [];
  type Answer = Omit<FrameChoice, 'multipart'>;

  /** `type` in `target`: as stored, relabelled, or transcoded; undefined (with a reason) if not. */
  const produce = (type: string, target: string): Answer | undefined => {
    if (target === storedTs) return { mediaType: type, transferSyntax: storedTs };
    if (native && type === OCTET && (target === EXPLICIT_LE || target === IMPLICIT_LE)) return { mediaType: OCTET, transferSyntax: target };
    if (!whyNot) {
      reasons.push(
        `${type} with transfer-syntax=${target} would need transcoding from ${storedTs}, which is not available here (ask for transfer-syntax=*)`,
      );
      return undefined;
    }
    // Frames of implicit VR little endian are the same bytes as explicit: decode to explicit.
    const decodeTo = target === IMPLICIT_LE ? EXPLICIT_LE : target;
    const why = whyNot(storedTs, decodeTo);
    if (why) {
      reasons.push(`${type} with transfer-syntax=${target} cannot be produced: ${why}`);
      return undefined;
    }
    return { mediaType: type, transferSyntax: target, decodeTo };
  };
  const asStored = (): Answer =>
    native
      ? { mediaType: OCTET, transferSyntax: storedTs }
      : compressed
        ? { mediaType: compressed, transferSyntax: storedTs }
        : (produce(OCTET, EXPLICIT_LE) ?? { mediaType: OCTET, transferSyntax: storedTs });

  const match = (asked: string, ts: string | undefined): Answer | undefined => {
    const type = ALIASES[asked] ?? asked;
    if (type === '*/*' || type === '*') return asStored();
    if (type === 'image/*') {
      if (compressed && (ts === undefined || ts === '*' || ts === storedTs)) return asStored();
      reasons.push(`image/* cannot be produced from pixel data stored as ${storedTs}`);
      return undefined;
    }
    if (type === OCTET) {
      if (ts === '*') return compressed ? { mediaType: OCTET, transferSyntax: storedTs } : { ...asStored(), mediaType: OCTET };
      const target = ts ?? (native ? storedTs : EXPLICIT_LE);
      if (target !== EXPLICIT_LE && target !== IMPLICIT_LE && target !== storedTs && compressedMediaType(target) === undefined) {
        reasons.push(`${OCTET} with transfer-syntax=${target} is not a pixel data encoding this node produces`);
        return undefined;
      }
      return produce(OCTET, target);
    }
    const standard = DEFAULT_SYNTAX[type];
    if (!standard) {
      reasons.push(`${type} cannot be produced from pixel data stored as ${storedTs}`);
      return undefined;
    }
    if (ts === undefined || ts === '*') return produce(type, compressed === type ? storedTs : standard);
    if (compressedMediaType(ts) !== type) {
      reasons.push(`transfer-syntax=${ts} is not a ${type} syntax`);
      return undefined;
    }
    return produce(type, ts);
  };
  for (const r of parseAccept(header)) {
    const ts = r.params['transfer-syntax'];
    if (r.type === '*/*' || r.type === 'multipart/*') return { multipart: true, ...asStored() };
    if (r.type === 'multipart/related') {
      const type = r.params.type?.toLowerCase();
      if (type === undefined) {
        if (ts === undefined || ts === '*' || ts === storedTs) return { multipart: true, ...asStored() };
        reasons.push(`multipart/related without a type cannot carry transfer-syntax=${ts}; name the media type`);
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

/** One range (a native frame, a single-fragment frame): the store's own stream, no re-wrapping. */
function openRanges(deps: RouteDeps, key: string, ranges: ByteRange[]): Promise<Readable> {
  return ranges.length === 1 ? deps.storage.get(key, ranges[0]) : Promise.resolve(rangesStream(deps.storage, key, ranges));
}

/** The bytes of byte-range lists in memory: one positioned read each where the store offers it. */
async function readRanges(deps: RouteDeps, key: string, ranges: ByteRange[]): Promise<Buffer> {
  const store = deps.storage;
  if (!store.readRange) return readAll(await openRanges(deps, key, ranges));
  const parts = await Promise.all(ranges.map((r) => store.readRange!(key, { start: r.start, end: r.end! })));
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/**
 * Answers up to this many bytes are read before the status goes out and sent as one buffer (a
 * frame or a few: the common request), larger ones stream part by part.
 */
const BUFFERED_ANSWER_MAX = 4 * 1024 * 1024;

/** The given byte-range lists as the response: multipart, or one body. */
export async function sendRanges(
  deps: RouteDeps,
  ctx: AppContext,
  key: string,
  choice: FrameChoice,
  bodies: Array<{ ranges: ByteRange[]; location?: string }>,
): Promise<void> {
  const partType = `${choice.mediaType}; transfer-syntax=${choice.transferSyntax}`;
  const partHeaders = (b: { ranges: ByteRange[]; location?: string }) => ({
    'Content-Type': partType,
    'Content-Length': String(rangesLength(b.ranges)),
    ...(b.location ? { 'Content-Location': b.location } : {}),
  });
  if (bodies.reduce((n, b) => n + rangesLength(b.ranges), 0) <= BUFFERED_ANSWER_MAX) {
    // Read first: a storage failure is still an error status, and the answer leaves in one write.
    ctx.status = 200;
    const boundary = newBoundary();
    const contentType = `multipart/related; type="${choice.mediaType}"; transfer-syntax=${choice.transferSyntax}; boundary=${boundary}`;
    const only = bodies.length === 1 && bodies[0]!.ranges.length === 1 ? bodies[0]! : undefined;
    if (only && deps.storage.readRange) {
      // The usual request, one frame: its bytes are read straight into the framed answer.
      const range = only.ranges[0]!;
      const framing = choice.multipart ? multipartFraming(boundary, partHeaders(only)) : { head: Buffer.alloc(0), tail: Buffer.alloc(0) };
      const length = rangesLength(only.ranges);
      const answer = Buffer.allocUnsafe(framing.head.length + length + framing.tail.length);
      framing.head.copy(answer, 0);
      framing.tail.copy(answer, framing.head.length + length);
      await deps.storage.readRange(key, { start: range.start, end: range.end! }, { buffer: answer, offset: framing.head.length });
      ctx.body = answer;
      ctx.set('Content-Type', choice.multipart ? contentType : partType);
      return;
    }
    const read = await Promise.all(bodies.map((b) => readRanges(deps, key, b.ranges)));
    if (!choice.multipart) {
      ctx.body = read[0]!;
      ctx.set('Content-Type', partType);
      return;
    }
    ctx.body = multipartBody(
      boundary,
      bodies.map((b, i) => ({ headers: partHeaders(b), body: read[i]! })),
    );
    ctx.set('Content-Type', contentType);
    return;
  }
  if (!choice.multipart) {
    const only = bodies[0]!;
    ctx.status = 200;
    ctx.body = cutOnError(ctx, await openRanges(deps, key, only.ranges));
    ctx.set('Content-Type', partType);
    ctx.length = rangesLength(only.ranges);
    return;
  }
  const parts: OutPart[] = bodies.map((b) => ({ headers: partHeaders(b), open: () => openRanges(deps, key, b.ranges) }));
  respondMultipart(deps, ctx, {
    parts,
    contentType: (boundary) =>
      `multipart/related; type="${choice.mediaType}"; transfer-syntax=${choice.transferSyntax}; boundary=${boundary}`,
    action: 'dicomweb.retrieve',
    resourceType: 'instance',
  });
}

export function framesHandler(deps: RouteDeps) {
  return async (ctx: AppContext): Promise<void> => {
    const row = await resolveInstanceFromPath(deps, ctx);
    const numbers = parseFrameList(ctx.params.frames);
    const choice = negotiatePixelData(ctx.get('accept') || undefined, row.transfer_syntax_uid, numbers.length === 1, whyNotTranscodable);
    if ('reasons' in choice) throw notAcceptable(choice.reasons);
    const source = choice.decodeTo
      ? await transcodedSource(deps, row, choice.decodeTo)
      : { deps, key: row.storage_key, ts: row.transfer_syntax_uid };
    // As stored: the cached frame index (one ranged read per frame after the first request).
    const layout: PixelDataLayout = choice.decodeTo
      ? await pixelDataLayout(source.deps.storage, source.key, source.ts)
      : await storedPixelDataLayout(deps.storage, row);
    const missing = numbers.filter((n) => n > layout.frames.length);
    if (missing.length) {
      throw new HttpError(404, 'frame_not_found', `frame ${missing[0]} does not exist: the instance has ${layout.frames.length} frame(s)`, {
        numberOfFrames: layout.frames.length,
        missing,
      });
    }
    const base = `${ctx.state.baseUrl}/dicom-web/studies/${row.study_instance_uid}/series/${row.series_instance_uid}/instances/${row.sop_instance_uid}/frames`;
    ctx.state.audit = {
      studyInstanceUid: row.study_instance_uid,
      resourceId: row.sop_instance_uid,
      details: { frames: numbers.length, mediaType: choice.mediaType, transferSyntax: choice.transferSyntax, mapping: layout.mapping },
    };
    await sendRanges(
      source.deps,
      ctx,
      source.key,
      choice,
      numbers.map((n) => ({ ranges: layout.frames[n - 1]!, location: `${base}/${n}` })),
    );
  };
}

/**
 * The instance transcoded into `to` (through the transcoder's cache, so the frames of one
 * instance asked one request at a time decode once), behind the storage interface so the same
 * layout and range code serves it. 406 when it cannot be decoded after all.
 */
export async function transcodedSource(
  deps: RouteDeps,
  row: StoredInstanceRow,
  to: string,
): Promise<{ deps: RouteDeps; key: string; ts: string }> {
  let bytes: Buffer;
  try {
    bytes = await deps.transcoder.cached(
      { sopInstanceUid: row.sop_instance_uid, sizeBytes: row.size_bytes },
      row.transfer_syntax_uid,
      to,
      () => instanceReader(deps).readAll(row),
    );
  } catch (err) {
    if (err instanceof TranscodeError) throw notAcceptable([`${err.message} (ask for transfer-syntax=* to get the stored bitstream)`]);
    throw err;
  }
  const key = 'transcoded';
  return { deps: { ...deps, storage: new MemoryBlobs({ [key]: bytes }) }, key, ts: to };
}

/** Registers GET .../instances/{i}/frames/{list} on the /dicom-web router. */
export function registerFrameRoutes(r: AppRouter, deps: RouteDeps): void {
  const canRead = deps.security.guard('images:read', 'dicomweb.retrieve', 'instance');
  r.get('/studies/:study/series/:series/instances/:instance/frames/:frames', canRead, framesHandler(deps));
}
