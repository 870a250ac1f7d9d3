import os from 'node:os';
import { RadiantError } from '../errors.js';
import { encodePng, fitPng } from '../dicom/render/encode.js';
import type { FrameMapping } from '../dicom/render/map-frame.js';
import type { PreparedFrame } from '../dicom/render/render-worker.js';
import { Renderer } from '../dicom/render/renderer.js';
import { greyLinear, invert, robustBounds } from '../dicom/render/value-mapping.js';
import { CT_WINDOWS } from './ct-windows.js';

/**
 * Ordered slices of one series → the PNG images MedGemma 1.5 expects (its CT/MR preparation):
 * evenly sampled down to maxImages, decoded and mapped by the render pipeline (src/dicom/render,
 * in its worker threads, any stored transfer syntax) with this recipe's mappings (CT: three HU
 * windows as R/G/B; MR: per-volume 0.5–99.5 percentile grey; radiographs: their own VOI,
 * MONOCHROME1 inverted), fitted into size × size and PNG-encoded. A slice that cannot be decoded
 * is skipped with its reason; only a batch with nothing left fails.
 */

export type PrepareKind = 'ct' | 'mr' | 'projection' | 'other';

export interface PrepareSlice {
  sopInstanceUid: string;
  /** 1-based. */
  frameNumber: number;
}

export interface PrepareRequest {
  kind: PrepareKind;
  /** Already ordered (along z for volumes). */
  slices: PrepareSlice[];
  /** Sampled evenly along the order down to this many, first and last kept (MEDGEMMA_MAX_SLICES). */
  maxImages: number;
  /** Side of the square output (default 896, MedGemma's SigLIP input). */
  size?: number;
  /** Part 10 bytes as stored (any transfer syntax). */
  readInstance(sopInstanceUid: string): Promise<Buffer>;
  signal?: AbortSignal;
  /** The render pipeline's workers; by default a pool of this module's own (one per core, up to 4). */
  renderer?: Renderer;
}

export interface PreparedImage {
  /** Position among the prepared images (0-based, in slice order). */
  index: number;
  sopInstanceUid: string;
  frameNumber: number;
  png: Buffer;
  width: number;
  height: number;
  /** e.g. 'ct-3window', 'mr-robust-minmax', 'voi-window-inverted', 'minmax', 'rgb'. */
  mapping: string;
}

export interface SkippedSlice {
  sopInstanceUid: string;
  frameNumber: number;
  reason: string;
}

/**
 * Stage times summed over slices: the stages run in parallel (workers, sharp's threads) and
 * overlap, so they add up to more than totalMs, the wall time of the whole call.
 */
export interface PrepareTimings {
  /** Parsing and decompressing in the workers. */
  decodeMs: number;
  /** Mapping to 8 bits, with the enlargement into the square done in the same pass (workers; MR's per-volume mapping on the main thread). */
  mapMs: number;
  /** PNG encoding (and sharp's reduction of images larger than the square). */
  encodeMs: number;
  totalMs: number;
}

export interface PreparedImages {
  images: PreparedImage[];
  timings: PrepareTimings;
  skipped: SkippedSlice[];
}

/** no_slices: nothing to prepare; all_failed: every sampled slice was skipped; invalid_request. */
export type ImagePrepErrorCode = 'no_slices' | 'all_failed' | 'invalid_request';

export class ImagePrepError extends RadiantError {
  override readonly name = 'ImagePrepError';
  constructor(
    override readonly code: ImagePrepErrorCode,
    message: string,
    readonly skipped: SkippedSlice[] = [],
  ) {
    super(code === 'invalid_request' ? 'invalid-input' : 'unprocessable', message);
  }
}

/**
 * At most `max` items evenly spread along the order, the first and the last always included
 * (item i of the result is at round(i · (n-1)/(max-1))).
 */
export function sampleEvenly<T>(items: T[], max: number): T[] {
  const n = items.length;
  if (!Number.isFinite(max) || max < 1) return [];
  const m = Math.floor(max);
  if (n <= m) return items.slice();
  if (m === 1) return [items[0]!];
  const out: T[] = [];
  for (let i = 0; i < m; i++) out.push(items[Math.round((i * (n - 1)) / (m - 1))]!);
  return out;
}

let defaultRenderer: Renderer | undefined;

function rendererFor(req: PrepareRequest): Renderer {
  if (req.renderer) return req.renderer;
  defaultRenderer ??= new Renderer({
    // One per core: decoding is CPU-bound, and sharp's own threads share the same cores later.
    workers: Math.max(1, Math.min(4, os.availableParallelism())),
    timeoutMs: 120_000,
    prepareTimeoutMs: 120_000,
    // Display limits only: preparation's decoder checks the pixel data against the geometry itself.
    maxFramePixels: 2 ** 28,
  });
  return defaultRenderer;
}

/** Stops the default render workers (node shutdown, tests); the next prepareImages starts new ones. */
export async function closeImagePrep(): Promise<void> {
  const r = defaultRenderer;
  defaultRenderer = undefined;
  await r?.close();
}

/** The recipe's value mapping per kind of series (MR is mapped here, over the volume). */
function frameMapping(kind: PrepareKind): FrameMapping {
  if (kind === 'ct') return { kind: 'channel-windows', windows: CT_WINDOWS, name: 'ct-3window' };
  return kind === 'mr' ? { kind: 'values' } : { kind: 'voi' };
}

/** Runs fn over items with at most `limit` in flight, results in input order. */
async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const run = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
  return out;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

interface Decoded {
  slice: PrepareSlice;
  frame: Extract<PreparedFrame, { ok: true }>;
}

export async function prepareImages(req: PrepareRequest): Promise<PreparedImages> {
  const t0 = performance.now();
  const size = req.size ?? 896;
  if (!Number.isInteger(size) || size < 1 || size > 8192)
    throw new ImagePrepError('invalid_request', `size must be an integer in 1..8192, got ${size}`);
  if (req.slices.length === 0) throw new ImagePrepError('no_slices', 'no slices to prepare');
  const sampled = sampleEvenly(req.slices, req.maxImages);
  if (sampled.length === 0) throw new ImagePrepError('invalid_request', `maxImages must be at least 1, got ${req.maxImages}`);
  req.signal?.throwIfAborted();

  // An instance is read and decoded once, however many of its frames were sampled (Enhanced CT/MR).
  const byInstance = new Map<string, number[]>();
  for (const s of sampled) {
    const frames = byInstance.get(s.sopInstanceUid) ?? [];
    if (!frames.includes(s.frameNumber)) frames.push(s.frameNumber);
    byInstance.set(s.sopInstanceUid, frames);
  }
  const skipped: SkippedSlice[] = [];
  const results = new Map<string, PreparedFrame>();
  const keyOf = (uid: string, frame: number): string => `${uid}|${frame}`;
  const workers = rendererFor(req);
  const mapping = frameMapping(req.kind);
  const timings = { decodeMs: 0, mapMs: 0, encodeMs: 0, totalMs: 0 };

  // Twice the workers in flight: the next instance is read while one decodes, without holding
  // the whole series' bytes in memory at once.
  await mapLimited([...byInstance], workers.size * 2, async ([uid, frames]) => {
    req.signal?.throwIfAborted();
    let bytes: Buffer;
    try {
      bytes = await req.readInstance(uid);
    } catch (err) {
      for (const f of frames)
        results.set(keyOf(uid, f), { ok: false, frameNumber: f, error: `the instance could not be read: ${errorText(err)}` });
      return;
    }
    const copy = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer;
    const reply = await workers.prepare({ bytes: copy, frames, mapping, size });
    if (!reply.ok) {
      for (const f of frames) results.set(keyOf(uid, f), { ok: false, frameNumber: f, error: reply.error });
      return;
    }
    timings.decodeMs += reply.decodeMs;
    timings.mapMs += reply.mapMs;
    for (const r of reply.frames) results.set(keyOf(uid, r.frameNumber), r);
  });
  req.signal?.throwIfAborted();

  const decoded: Decoded[] = [];
  for (const slice of sampled) {
    const r = results.get(keyOf(slice.sopInstanceUid, slice.frameNumber));
    if (r?.ok) decoded.push({ slice, frame: r });
    else skipped.push({ ...slice, reason: r ? r.error : 'not decoded' });
  }
  if (decoded.length === 0) {
    throw new ImagePrepError(
      'all_failed',
      `none of the ${sampled.length} sampled slices could be prepared: ${skipped[0]?.reason ?? 'unknown'}`,
      skipped,
    );
  }
  const tMap = performance.now();
  const raws = req.kind === 'mr' ? mapMrVolume(decoded) : decoded.map((d) => toRaw(d.frame, d.frame.mapping));
  timings.mapMs += performance.now() - tMap;

  // Encoding starts once every slice is decoded, not slice by slice as they come: sharp's work
  // occupies libuv's thread pool, where the instances' file reads queue too, and measured on the
  // corpus CT read from disk, overlapping made the whole call slower (1.05–1.26 s against
  // 0.85–1.0 s). Four images at a time keep the cores busy without holding every slice's
  // intermediate images at once.
  const encoded = await mapLimited(decoded, 4, async (d, i): Promise<Encoded> => {
    req.signal?.throwIfAborted();
    const raw = raws[i]!;
    const t = performance.now();
    try {
      const fitted = raw.fitted ? await encodePng(raw) : await fitPng(raw, size);
      return { ok: true, ...fitted, mapping: raw.mapping };
    } catch (err) {
      return { ok: false, error: `the image could not be encoded: ${errorText(err)}` };
    } finally {
      timings.encodeMs += performance.now() - t;
    }
  });
  const images: PreparedImage[] = [];
  encoded.forEach((e, i) => {
    const { slice } = decoded[i]!;
    if (!e.ok) skipped.push({ ...slice, reason: e.error });
    else
      images.push({
        index: images.length,
        sopInstanceUid: slice.sopInstanceUid,
        frameNumber: slice.frameNumber,
        png: e.png,
        width: e.width,
        height: e.height,
        mapping: e.mapping,
      });
  });
  if (images.length === 0) throw new ImagePrepError('all_failed', `none of the ${sampled.length} sampled slices could be encoded`, skipped);
  timings.totalMs = performance.now() - t0;
  return { images, skipped, timings };
}

type Encoded = { ok: true; png: Buffer; width: number; height: number; mapping: string } | { ok: false; error: string };

interface MappedRaw {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3;
  pixelAspect: number;
  mapping: string;
  fitted: boolean;
}

function toRaw(f: Extract<PreparedFrame, { ok: true }>, mapping: string): MappedRaw {
  return {
    data: new Uint8Array(f.pixels),
    width: f.width,
    height: f.height,
    channels: f.format === 'rgb8' ? 3 : 1,
    pixelAspect: f.pixelAspect,
    mapping,
    fitted: f.fitted,
  };
}

/** One robust window for the whole MR volume, so slices keep their relative brightness. */
function mapMrVolume(decoded: Decoded[]): MappedRaw[] {
  const valueFrames = decoded.filter((d) => d.frame.format === 'f32').map((d) => new Float32Array(d.frame.pixels));
  const bounds = robustBounds(valueFrames);
  let k = 0;
  return decoded.map((d) => {
    if (d.frame.format !== 'f32') return toRaw(d.frame, d.frame.mapping);
    const grey = greyLinear(valueFrames[k++]!, bounds);
    if (d.frame.monochrome1) invert(grey);
    return {
      data: grey,
      width: d.frame.width,
      height: d.frame.height,
      channels: 1,
      pixelAspect: d.frame.pixelAspect,
      mapping: d.frame.monochrome1 ? 'mr-robust-minmax-inverted' : 'mr-robust-minmax',
      fitted: false,
    };
  });
}
