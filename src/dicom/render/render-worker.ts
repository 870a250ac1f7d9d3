import { parentPort } from 'node:worker_threads';
import { serveWorker } from '../../workers/worker-pool.js';
import { RenderSource, type RenderLog } from './render-image.js';
import { RenderError, type RenderedMediaType, type RenderErrorKind, type RenderOptions } from './render-types.js';

/**
 * A render worker (renderer.ts runs a pool of them): decodes and encodes frames of one instance
 * per task. The instance arrives as a SharedArrayBuffer, so the batches of a long multi-frame
 * cost no copy on the way, and the instance parsed for one batch serves the next ones.
 */

export interface RenderRequest {
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

// The worker has no logger; "decoders unavailable" is part of the undecodable answer's message.
const log: RenderLog = { warn: () => undefined };
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
  // dcmjs-imaging wants an ArrayBuffer of its own (it refuses a SharedArrayBuffer).
  const copy = new ArrayBuffer(req.file.byteLength);
  new Uint8Array(copy).set(new Uint8Array(req.file));
  const source = RenderSource.open(copy, log, req.maxFramePixels);
  kept = { fileId: req.fileId, source, timer: setTimeout(forget, KEEP_MS).unref() };
  source.catch(() => {
    if (kept?.source === source) forget();
  });
  return source;
}

function arrayBufferOf(b: Buffer): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
}

serveWorker<RenderRequest, RenderReply>(
  parentPort!,
  async (req) => {
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
      if (!(err instanceof RenderError)) throw err;
      return { result: { ok: false, kind: err.reason, message: err.message, numberOfFrames: err.numberOfFrames } };
    }
  },
  // A WebAssembly trap ("unreachable") can leave the codec's memory in any state: start afresh.
  (err) => ({
    ok: false,
    kind: 'failed',
    message: `rendering failed: ${err instanceof Error ? err.message : String(err)}`,
    recycle: err instanceof Error && err.name === 'RuntimeError',
  }),
);
