import type { RouteDeps } from '../src/http/deps.js';
import { HttpError } from '../src/http/errors.js';
import type { AppContext, AppRouter } from '../src/http/state.js';
import type { ByteRange } from '../storage/types.js';
import { parseAccept } from './accept.js';
import { negotiatePixelData, notAcceptable, resolveInstanceFromPath, sendRanges, transcodedSource, type FrameChoice } from './frames.js';
import { whyNotTranscodable } from '../src/dicom/transcode-syntaxes.js';
import { PIXEL_DATA, isNative, RangeReader, findByPath, rangesStream, unsupportedStorage } from '../src/dicom/pixel-data.js';
import { TS } from '../src/dicom/transfer-syntax.js';
import { pixelDataLayout, storedPixelDataLayout } from './pixel-data.js';
import { cutOnError } from './streamed-response.js';

/**
 * WADO-RS Retrieve Bulkdata (PS3.18 §10.4.1.1.5) for the BulkDataURIs the metadata resource
 * emits: `<base>/dicom-web/studies/{s}/series/{se}/instances/{i}/bulkdata/{tag}`, tag = the
 * 8 hex digits (upper case in the URIs we emit; either case accepted) of a top-level element,
 * or `{sq}/{item}/…/{tag}` for a value inside sequences (items 0-based), as metadata.ts writes
 * BulkDataURIs. Elements are found by walking element headers through storage byte ranges.
 *
 * Answer: multipart/related; type="application/octet-stream" with one part (the default), or a
 * single-part application/octet-stream body when the client asks for that (or sends a Range with
 * Accept absent or `*\/*`). A single-part answer honours `Range: bytes=a-b` (one range) with
 * 206 + Content-Range relative to the value, 416 when unsatisfiable. A multipart answer ignores
 * Range (RFC 9110 allows that). Pixel Data of native instances = the whole value; Pixel Data of
 * encapsulated instances = the frames, one part each, in their compressed media type (as the
 * frames resource answers all frames) when that (or transfer-syntax=*) is asked for, else
 * decoded into one native value (application/octet-stream's default, Explicit VR Little Endian).
 * Values read by byte range are not checked against the instance's SHA-256 (it covers the whole
 * object); a decoded value reads the instance whole and is (frames.ts transcodedSource).
 */

const TAG = /^[0-9A-Fa-f]{8}$/;
const MAX_PATH = 2 * 16 + 1;

/**
 * `7FE00010` or `00540016/0/00181072` (sequence tag / 0-based item / … / tag, the form the
 * metadata's BulkDataURIs use for values inside sequences) → [tag, item, tag, …]; 400 otherwise.
 */
export function parseTagPath(text: string): number[] {
  const parts = text.split('/');
  const bad = () => new HttpError(400, 'invalid_tag', 'bulk data path must be a tag (8 hex digits, e.g. 7FE00010) or sequence/item/…/tag');
  if (parts.length % 2 === 0 || parts.length > MAX_PATH) throw bad();
  return parts.map((p, i) => {
    if (i % 2 === 0) {
      if (!TAG.test(p)) throw bad();
      return Number.parseInt(p, 16) >>> 0;
    }
    if (!/^\d{1,6}$/.test(p)) throw bad();
    return Number(p);
  });
}

/** `bytes=a-b`, `bytes=a-`, `bytes=-n` against a value of `size` bytes; undefined when ignored. */
export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  if (!header) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m) return undefined; // several ranges or another unit: answer in full
  const [, a, b] = m;
  if (a === '' && b === '') return undefined;
  let start: number;
  let end: number;
  if (a === '') {
    const n = Number(b);
    if (n === 0) return 'unsatisfiable';
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
    if (b !== '' && Number(b) < start) return undefined; // invalid: ignore
  }
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

export function bulkdataHandler(deps: RouteDeps) {
  return async (ctx: AppContext): Promise<void> => {
    const row = await resolveInstanceFromPath(deps, ctx);
    const pathText = ctx.params.path ?? '';
    const tagPath = parseTagPath(pathText);
    const tagText = pathText.toUpperCase();
    const tag = tagPath[0]!;
    const ts = row.transfer_syntax_uid;
    const why = unsupportedStorage(ts);
    if (why) throw new HttpError(501, 'not_implemented', why);
    const accept = ctx.get('accept') || undefined;
    const audit = (details: Record<string, unknown>) => {
      ctx.state.audit = {
        studyInstanceUid: row.study_instance_uid,
        resourceId: row.sop_instance_uid,
        details: { tag: tagText, ...details },
      };
    };

    let value: ByteRange;
    let choice: FrameChoice | { reasons: string[] };
    let source = { deps, key: row.storage_key };
    if (tag === PIXEL_DATA && tagPath.length === 1) {
      const stored = await storedPixelDataLayout(deps.storage, row);
      // Encapsulated: the frames as stored, or decoded (octet-stream without transfer-syntax is
      // Explicit VR Little Endian, PS3.18 Table 8.7.3-5) into one native value.
      choice = negotiatePixelData(accept, ts, !stored.encapsulated || stored.frames.length === 1, whyNotTranscodable);
      if ('reasons' in choice) throw notAcceptable(choice.reasons);
      let layout = stored;
      if (choice.decodeTo) {
        source = await transcodedSource(deps, row, choice.decodeTo);
        layout = await pixelDataLayout(source.deps.storage, source.key, choice.decodeTo);
      }
      if (layout.encapsulated) {
        audit({ frames: layout.frames.length, mediaType: choice.mediaType, transferSyntax: choice.transferSyntax });
        await sendRanges(
          source.deps,
          ctx,
          source.key,
          choice,
          layout.frames.map((ranges) => ({ ranges })),
        );
        return;
      }
      const e = layout.element;
      value = { start: e.valueOffset, end: e.valueOffset + e.length! - 1 };
    } else {
      const info = await deps.storage.stat(row.storage_key);
      if (!info) throw new HttpError(404, 'not_found', 'the instance object is missing from storage');
      const e = await findByPath(new RangeReader(deps.storage, row.storage_key, info.size), ts, tagPath);
      if (!e) throw new HttpError(404, 'not_found', `the instance has no element ${tagText}`);
      if (e.length === undefined) throw new HttpError(404, 'not_found', `${tagText} is a sequence, not bulk data (see the metadata)`);
      value = { start: e.valueOffset, end: e.valueOffset + e.length - 1 };
      // Outside Pixel Data every value is plain little endian, whatever compresses the pixels.
      choice = negotiatePixelData(accept, isNative(ts) ? ts : TS.ExplicitVRLittleEndian, true);
      if ('reasons' in choice) throw notAcceptable(choice.reasons);
    }
    const size = value.end! - value.start + 1;

    const rangeHeader = ctx.get('range') || undefined;
    const first = parseAccept(accept)[0]?.type;
    const single = !choice.multipart || (rangeHeader !== undefined && first === '*/*');
    audit({ bytes: size, single });
    if (!single || size === 0) {
      await sendRanges(source.deps, ctx, source.key, { ...choice, multipart: !single }, [{ ranges: size ? [value] : [] }]);
      return;
    }
    ctx.set('Accept-Ranges', 'bytes');
    const r = parseRange(rangeHeader, size);
    if (r === 'unsatisfiable') {
      throw new HttpError(416, 'range_not_satisfiable', `the value is ${size} bytes`, undefined, { 'Content-Range': `bytes */${size}` });
    }
    const contentType = `application/octet-stream; transfer-syntax=${choice.transferSyntax}`;
    if (r) {
      ctx.status = 206;
      ctx.body = cutOnError(
        ctx,
        rangesStream(source.deps.storage, source.key, [{ start: value.start + r.start, end: value.start + r.end! }]),
      );
      ctx.set('Content-Type', contentType);
      ctx.set('Content-Range', `bytes ${r.start}-${r.end}/${size}`);
      ctx.length = r.end! - r.start + 1;
      audit({ bytes: size, single, range: `${r.start}-${r.end}` });
      return;
    }
    ctx.status = 200;
    ctx.body = cutOnError(ctx, rangesStream(source.deps.storage, source.key, [value]));
    ctx.set('Content-Type', contentType);
    ctx.length = size;
  };
}

/** Registers GET .../instances/{i}/bulkdata/{tag path} on the /dicom-web router. */
export function registerBulkdataRoutes(r: AppRouter, deps: RouteDeps): void {
  const canRead = deps.security.guard('images:read', 'dicomweb.retrieve', 'instance');
  r.get('/studies/:study/series/:series/instances/:instance/bulkdata/*path', canRead, bulkdataHandler(deps));
}
