import { parentPort } from 'node:worker_threads';
import { serveWorker } from '../../workers/worker-pool.js';
import { PixelDecodeError } from './decode-frame.js';
import { FrameDecoder } from './frame-decoder.js';
import { type FrameMapping, mapFrame } from './map-frame.js';
import { RenderSource } from './render-image.js';
import { RenderError, type RenderedMediaType, type RenderErrorKind, type RenderOptions } from './render-types.js';

/**
 * A render worker (renderer.ts runs a pool of them), for both callers of the render pipeline:
 * 'render' decodes and encodes frames of one instance for display (render-image.ts); 'prepare'
 * decodes and maps frames for image preparation (analysis, PDF key images: frame-decoder.ts,
 * map-frame.ts), with the same decoder, enlarged into its square where they grow into it, leaving PNG
 * encoding (and per-volume mappings) to the main thread.
 *
 * A display instance arrives as a SharedArrayBuffer, so the batches of a long multi-frame cost no
 * copy on the way, and the instance parsed for one batch serves the next ones.
 */

export interface RenderRequest {
  task: 'render';
  file: SharedArrayBuffer;
  /** Identifies `file` within its pool: the same id is the same bytes. */
  fileId: number;
  /** 1-based; past the last frame answers frame_out_of_range. */
  firstFrame: number;
  /** At most this many frames from firstFrame (fewer at the end of the instance). */
  frameCount: number;
  options: Omit<RenderOptions, 'frame'>;
  maxFramePixels: number;
}

export interface RenderedFrame {
  body: ArrayBuffer;
  width: number;
  height: number;
  mediaType: RenderedMediaType;
}

export type RenderReply =
  | { ok: true; numberOfFrames: number; frames: RenderedFrame[] }
  | { ok: false; kind: RenderErrorKind; message: string; numberOfFrames?: number; recycle?: boolean };

export interface PrepareFramesRequest {
  task: 'prepare';
  bytes: ArrayBuffer;
  /** 1-based. */
  frames: number[];
  mapping: FrameMapping;
  /** Side of the square output: frames that enlarge into it come back fitted ('rgb8', size × size). */
  size: number;
}

export type PreparedFrame =
  | {
      ok: true;
      frameNumber: number;
      width: number;
      height: number;
      /** 'rgb8': 3 channels of 8 bits; 'grey8': 1 channel; 'f32': Float32 modality values, 1 channel. */
      format: 'rgb8' | 'grey8' | 'f32';
      pixels: ArrayBuffer;
      /** How the values were mapped (e.g. 'ct-3window', 'voi-window', 'minmax'). */
      mapping: string;
      pixelAspect: number;
      monochrome1: boolean;
      /** Already placed on the black size × size canvas: only PNG encoding is left. */
      fitted: boolean;
    }
  | { ok: false; frameNumber: number; error: string };

export type PrepareFramesReply =
  /** recycle: a codec trapped on one of the frames; the worker is replaced after answering. */
  | { ok: true; frames: PreparedFrame[]; decodeMs: number; mapMs: number; recycle?: boolean }
  | { ok: false; error: string; recycle: boolean };

export type WorkerRequest = RenderRequest | PrepareFramesRequest;
/** A failure the pool or the worker reports answers both shapes (the task's kind is not known then). */
export type WorkerFailure = Extract<RenderReply, { ok: false }> & { error: string; recycle: boolean };
export type WorkerReply = RenderReply | PrepareFramesReply;

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** How long a parsed instance is kept for a next batch; it holds a copy of the file. */
const KEEP_MS = 5_000;

let kept: { fileId: number; source: Promise<RenderSource>; timer: NodeJS.Timeout } | undefined;

function forget(): void {
  if (kept) clearTimeout(kept.timer);
  kept = undefined;
}

function sourceFor(req: RenderRequest): Promise<RenderSource> {
  if (kept?.fileId === req.fileId) {
    kept.timer.refresh();
    return kept.source;
  }
  forget();
  // Read in place: the shared bytes are never written while a render may use them (renderer.ts).
  const source = RenderSource.open(req.file, req.maxFramePixels);
  kept = { fileId: req.fileId, source, timer: setTimeout(forget, KEEP_MS).unref() };
  source.catch(() => {
    if (kept?.source === source) forget();
  });
  return source;
}

function arrayBufferOf(b: Buffer): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
}

async function render(req: RenderRequest): Promise<{ result: RenderReply; transfer?: ArrayBuffer[] }> {
  try {
    const source = await sourceFor(req);
    const n = source.numberOfFrames;
    const last = Math.max(req.firstFrame, Math.min(n, req.firstFrame + req.frameCount - 1));
    const frames: RenderedFrame[] = [];
    for (let f = req.firstFrame; f <= last; f++) {
      const img = await source.render({ ...req.options, frame: f });
      frames.push({ body: arrayBufferOf(img.body), width: img.width, height: img.height, mediaType: img.mediaType });
    }
    return { result: { ok: true, numberOfFrames: n, frames }, transfer: frames.map((f) => f.body) };
  } catch (err) {
    // A codec's WebAssembly trap on damaged data: undecodable, as dcmjs-imaging answered it, and
    // the worker replaced (the codec's memory can be in any state).
    if (err instanceof Error && err.name === 'RuntimeError') {
      return { result: { ok: false, kind: 'undecodable', message: `pixel data cannot be rendered: ${err.message}`, recycle: true } };
    }
    if (!(err instanceof RenderError)) throw err;
    return { result: { ok: false, kind: err.reason, message: err.message, numberOfFrames: err.numberOfFrames } };
  }
}

let valuesScratch = new Float32Array(0);

/** A reusable buffer for values that never leave the worker (mapped here, not sent back). */
function scratchFor(el: Record<string, unknown>, mapping: FrameMapping): Float32Array | undefined {
  if (mapping.kind === 'values') return undefined;
  const n = (Number(el.Rows) || 0) * (Number(el.Columns) || 0);
  if (valuesScratch.length < n) valuesScratch = new Float32Array(n);
  return valuesScratch;
}

function ownBuffer(a: Uint8Array | Float32Array): ArrayBuffer {
  return a.byteOffset === 0 && a.byteLength === a.buffer.byteLength
    ? (a.buffer as ArrayBuffer)
    : (a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength) as ArrayBuffer);
}

async function prepare(req: PrepareFramesRequest): Promise<{ result: PrepareFramesReply; transfer: ArrayBuffer[] }> {
  const t0 = performance.now();
  const decoder = await FrameDecoder.open(Buffer.from(req.bytes));
  let decodeMs = performance.now() - t0;
  let mapMs = 0;
  const frames: PreparedFrame[] = [];
  const transfer: ArrayBuffer[] = [];
  let recycle = false;
  for (const frameNumber of req.frames) {
    try {
      const t1 = performance.now();
      const f = decoder.decode(frameNumber - 1, scratchFor(decoder.elements, req.mapping));
      const t2 = performance.now();
      const m = mapFrame(f, req.mapping, req.size);
      mapMs += performance.now() - t2;
      decodeMs += t2 - t1;
      const pixels = ownBuffer(m.data);
      if (!transfer.includes(pixels)) transfer.push(pixels);
      frames.push({
        ok: true,
        frameNumber,
        width: m.width,
        height: m.height,
        format: m.format,
        pixels,
        mapping: m.mapping,
        pixelAspect: f.pixelAspect,
        monochrome1: f.photometric === 'MONOCHROME1',
        fitted: m.fitted,
      });
    } catch (err) {
      if (err instanceof PixelDecodeError && err.trap) recycle = true;
      frames.push({ ok: false, frameNumber, error: errorText(err) });
    }
  }
  return { result: { ok: true, frames, decodeMs, mapMs, ...(recycle ? { recycle } : {}) }, transfer };
}

serveWorker<WorkerRequest, WorkerReply>(
  parentPort!,
  async (req) => (req.task === 'render' ? render(req) : prepare(req)),
  // A WebAssembly trap ("unreachable") can leave the codec's memory in any state: start afresh.
  (err): WorkerFailure => ({
    ok: false,
    kind: 'failed',
    message: `rendering failed: ${errorText(err)}`,
    error: errorText(err),
    recycle: err instanceof Error && err.name === 'RuntimeError',
  }),
);
