import { WorkerPool } from '../../workers/worker-pool.js';
import type { RenderReply, RenderRequest } from './render-worker.js';
import { RenderError, type RenderedImage, type RenderOptions } from './render-types.js';

/**
 * Rendering off the event loop: the render core (render-image.ts) runs in a pool of worker
 * threads (RENDER_WORKERS) with a heap limit and a per-task limit (RENDER_TIMEOUT_MS), so an
 * image that is slow or huge to decode costs one worker, replaced, and a failed request, never
 * the HTTP and DICOM listeners. Failures are RenderError, as from the core itself.
 */

export interface RendererOptions {
  workers: number;
  timeoutMs: number;
  /** MAX_FRAME_PIXELS, held against every instance before decoding. */
  maxFramePixels: number;
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
  private readonly pool: WorkerPool<RenderRequest, RenderReply>;
  private nextId = 1;

  constructor(private readonly opts: RendererOptions) {
    this.pool = new WorkerPool<RenderRequest, RenderReply>({
      url: new URL('./render-worker.js', import.meta.url),
      workers: opts.workers,
      timeoutMs: opts.timeoutMs,
      maxOldGenerationSizeMb: 1024,
      failure: (reason) => ({
        ok: false,
        kind: 'failed',
        message: `rendering failed: ${reason.replace(TIMEOUT_REASON, 'took longer than $1 ms (RENDER_TIMEOUT_MS)')}`,
      }),
      recycleAfter: (r) => !r.ok && r.recycle === true,
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
    const reply = await this.pool.run({
      file: file.shared,
      fileId: file.id,
      firstFrame,
      frameCount: count,
      options,
      maxFramePixels: this.opts.maxFramePixels,
    });
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

  close(): Promise<void> {
    return this.pool.close();
  }
}
