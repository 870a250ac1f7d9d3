/**
 * Per-backend call controls: a concurrency limit (FIFO semaphore), a timeout per call and the
 * caller's AbortSignal, combined into one signal the backend passes down, with the abort reason
 * mapped to EngineError('timeout' | 'cancelled').
 */
import { EngineError } from './engine.js';

export class Semaphore {
  private active = 0;
  private readonly queue: Array<() => void> = [];
  constructor(readonly limit: number) {
    if (!(limit >= 1)) throw new RangeError('concurrency limit must be >= 1');
  }
  get pending(): number {
    return this.queue.length;
  }
  /** Waits for a slot; rejects (and leaves the queue) when signal aborts first. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const release = () => {
      this.active--;
      this.queue.shift()?.();
    };
    if (this.active < this.limit) {
      this.active++;
      return Promise.resolve(once(release));
    }
    return new Promise((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener('abort', onAbort);
        this.active++;
        resolve(once(release));
      };
      const onAbort = () => {
        const i = this.queue.indexOf(grant);
        if (i >= 0) this.queue.splice(i, 1);
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(grant);
    });
  }
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (!done) {
      done = true;
      fn();
    }
  };
}

class TimeoutReason extends Error {}

export interface CallControlOptions {
  timeoutMs: number;
  semaphore: Semaphore;
}

/**
 * Runs fn with a slot from the semaphore and a signal that aborts on the caller's signal or after
 * timeoutMs (queueing counts). Abort-caused failures become EngineError timeout/cancelled.
 */
export async function controlledCall<T>(
  opts: CallControlOptions,
  callerSignal: AbortSignal | undefined,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(new TimeoutReason(`no answer within ${opts.timeoutMs} ms`)), opts.timeoutMs);
  const onCaller = () => ctl.abort(callerSignal!.reason ?? new Error('cancelled'));
  if (callerSignal?.aborted) onCaller();
  else callerSignal?.addEventListener('abort', onCaller, { once: true });
  let release: (() => void) | undefined;
  try {
    release = await opts.semaphore.acquire(ctl.signal);
    return await fn(ctl.signal);
  } catch (err) {
    throw mapAbort(err, ctl.signal, opts.timeoutMs);
  } finally {
    release?.();
    clearTimeout(timer);
    callerSignal?.removeEventListener('abort', onCaller);
  }
}

function mapAbort(err: unknown, signal: AbortSignal, timeoutMs: number): unknown {
  if (!signal.aborted) return err;
  if (err instanceof EngineError && err.kind !== 'upstream' && err.kind !== 'unavailable') return err;
  if (signal.reason instanceof TimeoutReason)
    return new EngineError('timeout', `MedGemma call timed out after ${timeoutMs} ms`, { cause: err });
  return new EngineError('cancelled', 'MedGemma call cancelled', { cause: err });
}
