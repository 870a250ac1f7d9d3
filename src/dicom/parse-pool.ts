import type { ParseOutcome } from './header-types.js';
import type { ParseRequest } from './header-worker.js';
import { WorkerPool } from '../workers/worker-pool.js';

/**
 * Header parsing off the main thread (src/workers/worker-pool.ts): a pathological file (deep
 * nesting, absurd lengths, endless loops) becomes a refused instance instead of a crashed or
 * hung node.
 */

export interface ParsePoolOptions {
  workers: number;
  timeoutMs: number;
  maxHeaderBytes?: number;
  /** Heap limit per worker. */
  maxOldGenerationSizeMb?: number;
}

export class ParsePool {
  private readonly pool: WorkerPool<ParseRequest, ParseOutcome>;

  constructor(private readonly opts: ParsePoolOptions) {
    this.pool = new WorkerPool<ParseRequest, ParseOutcome>({
      url: new URL('./header-worker.js', import.meta.url),
      workers: opts.workers,
      timeoutMs: opts.timeoutMs,
      ...(opts.maxOldGenerationSizeMb === undefined ? {} : { maxOldGenerationSizeMb: opts.maxOldGenerationSizeMb }),
      failure: (reason) => ({
        ok: false,
        kind: 'unparseable',
        error: reason.replace(/^worker /, 'parser ').replace(/^the task took/, 'parsing took'),
      }),
    });
  }

  parse(path: string): Promise<ParseOutcome> {
    return this.pool.run({ path, maxHeaderBytes: this.opts.maxHeaderBytes ?? 256 * 1024 * 1024 });
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
