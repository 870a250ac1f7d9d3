import { WorkerPool } from '../../workers/worker-pool.js';
import type { FrameMapping } from './map-frame.js';
import type { PrepareFramesReply, RenderReply, WorkerFailure, WorkerReply, WorkerRequest } from './render-worker.js';
import { RenderError, type RenderedImage, type RenderOptions } from './render-types.js';

/**
 * The render pipeline off the event loop: its worker (render-worker.ts) runs in a pool of worker
 * threads with a heap limit and a per-task time limit, so an image that is slow or huge to decode
 * costs one worker, replaced, and a failed request, never the HTTP and DICOM listeners. One pool
 * serves display rendering (`frames`/`render`: RENDER_WORKERS, RENDER_TIMEOUT_MS; failures are
 * RenderError, as from the pipeline itself) and image preparation (`prepare`: frames decoded and
 * mapped for the caller to encode; a failure is in the reply).
 */

export interface RendererOptions {
  workers: number;
  /** Per display task (RENDER_TIMEOUT_MS). */
  timeoutMs: number;
  /** MAX_FRAME_PIXELS, held against every instance before decoding for display. */
  maxFramePixels: number;
  /** Per preparation task (one instance's frames); default 120 s. */
  prepareTimeoutMs?: number;
}

/** Frames of one instance to decode and map for image preparation. */
export interface PrepareFrames {
  /** Part 10 bytes as stored (any transfer syntax); transferred to the worker, so unusable after. */
  bytes: ArrayBuffer;
  /** 1-based. */
  frames: number[];
  mapping: FrameMapping;
  /** Side of the square the frames are fitted into. */
  size: number;
}

/** A stored instance shared with the workers: read once, sent to any number of batches. */
export interface RenderFile {
  readonly shared: SharedArrayBuffer;
  readonly id: number;
}

export interface RenderedFrames {
  numberOfFrames: number;
  images: RenderedImage[];
}

/** The pool's words for a task that overran its time (src/workers/worker-pool.ts). */
const TIMEOUT_REASON = /^the task took longer than (\d+) ms$/;

export class Renderer {
  private readonly pool: WorkerPool<WorkerRequest, WorkerReply>;
  private nextId = 1;

  constructor(private readonly opts: RendererOptions) {
    this.pool = new WorkerPool<WorkerRequest, WorkerReply>({
      url: new URL('./render-worker.js', import.meta.url),
      workers: opts.workers,
      timeoutMs: opts.timeoutMs,
      maxOldGenerationSizeMb: 1024,
      failure: (reason): WorkerFailure => ({
        ok: false,
        kind: 'failed',
        message: `rendering failed: ${reason.replace(TIMEOUT_REASON, 'took longer than $1 ms (RENDER_TIMEOUT_MS)')}`,
        error: reason,
        recycle: false,
      }),
      recycleAfter: (r) => 'recycle' in r && r.recycle === true,
      // Processes that never render (CLI commands, nodes nobody views) start no workers.
      lazy: true,
    });
  }

  /** The instance's bytes (as read from storage, in chunks) in memory the workers share. */
  share(chunks: readonly Uint8Array[]): RenderFile {
    const size = chunks.reduce((n, c) => n + c.length, 0);
    const shared = new SharedArrayBuffer(size);
    const view = new Uint8Array(shared);
    let at = 0;
    for (const c of chunks) {
      view.set(c, at);
      at += c.length;
    }
    return { shared, id: this.nextId++ };
  }

  /** Frames firstFrame … firstFrame+count-1 (fewer at the end of the instance); RenderError otherwise. */
  async frames(file: RenderFile, firstFrame: number, count: number, options: Omit<RenderOptions, 'frame'>): Promise<RenderedFrames> {
    const reply = (await this.pool.run({
      task: 'render',
      file: file.shared,
      fileId: file.id,
      firstFrame,
      frameCount: count,
      options,
      maxFramePixels: this.opts.maxFramePixels,
    })) as RenderReply;
    if (!reply.ok) throw new RenderError(reply.kind, reply.message, reply.numberOfFrames);
    return {
      numberOfFrames: reply.numberOfFrames,
      images: reply.frames.map((f) => ({ body: Buffer.from(f.body), width: f.width, height: f.height, mediaType: f.mediaType })),
    };
  }

  /** One frame (options.frame, 1-based). */
  async render(file: RenderFile, options: RenderOptions): Promise<RenderedImage> {
    const { frame, ...rest } = options;
    if (!Number.isInteger(frame) || frame < 1) {
      throw new RenderError('frame_out_of_range', `frame ${frame} does not exist: frames start at 1`);
    }
    const { images } = await this.frames(file, frame, 1, rest);
    return images[0]!;
  }

  /** Workers in the pool: how many tasks run at once. */
  get size(): number {
    return this.pool.size;
  }

  /** Decodes and maps frames of one instance for image preparation; never rejects. */
  async prepare(req: PrepareFrames): Promise<PrepareFramesReply> {
    const reply = await this.pool.run({ task: 'prepare', ...req }, [req.bytes], this.opts.prepareTimeoutMs ?? 120_000);
    if (!reply.ok && 'error' in reply) return { ok: false, error: reply.error, recycle: reply.recycle === true };
    return reply as PrepareFramesReply;
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
