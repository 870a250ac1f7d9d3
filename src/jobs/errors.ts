import type { Backoff } from '../backoff.js';
import { RadiantError, type ErrorKind } from '../errors.js';

/**
 * What a handler throws to say how its job failed. Anything else a handler throws is treated as
 * retryable (see JobWorker): unknown errors are mostly transient (a database, a network, an
 * engine restarting), and max_attempts bounds what a deterministic bug costs.
 */
export class JobError extends RadiantError {
  readonly retryable: boolean;
  /** The job kind's own retry delays (default: the worker's, else the queue's). */
  readonly backoff: Backoff | undefined;

  /** `kind`: what went wrong, for an edge that shows the failure (default: the node's own). */
  constructor(message: string, options: { retryable: boolean; cause?: unknown; kind?: ErrorKind; backoff?: Backoff }) {
    super(options.kind ?? 'internal', message, { cause: options.cause });
    this.name = 'JobError';
    this.retryable = options.retryable;
    this.backoff = options.backoff;
  }
}

export type AbortReason = 'cancelled' | 'lost' | 'shutdown';

/**
 * The reason on a handler's AbortSignal, and what ctx.progress throws once the job was aborted:
 * cancelled by a user, lost (another worker reclaimed it, or heartbeats could not be written),
 * or the worker is shutting down. None of these is recorded as a failure of the job.
 */
export class JobAbortedError extends Error {
  readonly reason: AbortReason;

  constructor(reason: AbortReason, jobId: number) {
    super(`job ${jobId} ${reason === 'shutdown' ? 'interrupted: worker stopping' : reason}`);
    this.name = 'JobAbortedError';
    this.reason = reason;
  }
}
