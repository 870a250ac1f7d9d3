import os from 'node:os';
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import type { Logger } from '../logger.js';
import { errorMessage } from '../errors.js';
import { JobAbortedError, JobError, type AbortReason } from './errors.js';
import type { JobQueue } from './queue.js';
import { toJson } from '../catalog/jobs.js';
import { nodeMetrics } from '../observability/node-metrics.js';
import { detached, traced } from '../observability/tracing.js';
import type { Backoff, JobProgress, JobRow } from './types.js';

const WAKE_GRAIN_MS = 100;
/** How often a worker with a retention deletes old finished jobs. */
const PRUNE_EVERY_MS = 10 * 60_000;

export interface JobContext {
  /** Aborted (reason: JobAbortedError) when the job is cancelled, lost, or the worker stops. */
  signal: AbortSignal;
  /**
   * Records the stage and percentage (visible through JobQueue.get) and counts as a heartbeat.
   * Throws the JobAbortedError once the job was aborted, so a handler that reports progress
   * stops at its next report even if it never looks at the signal.
   */
  progress(stage: string, percent: number): Promise<void>;
  workerId: string;
}

/**
 * Runs one job and answers its result (stored as JSON). Throw JobError to say whether a failure
 * is worth retrying; anything else thrown counts as retryable.
 */
export type JobHandler = (job: JobRow, ctx: JobContext) => Promise<unknown>;

/** Handlers by job kind; a worker claims only the kinds it has a handler for. */
export type JobHandlers = Readonly<Record<string, JobHandler>>;

/**
 * A handler whose payload is checked first: `parse` narrows the stored JSON (throw on a bad
 * one: the job then fails without retries, since the same payload will never parse).
 */
export function typedHandler<P, R>(parse: (payload: unknown) => P, run: (job: JobRow<P, R>, ctx: JobContext) => Promise<R>): JobHandler {
  return async (job, ctx) => {
    let payload: P;
    try {
      payload = parse(job.payload);
    } catch (err) {
      throw new JobError(`invalid ${job.kind} payload: ${errorMessage(err)}`, { retryable: false, cause: err });
    }
    return run({ ...job, payload, result: null }, ctx);
  };
}

export interface JobWorkerOptions {
  /** Default: hostname:pid:random, unique per worker. */
  workerId?: string;
  /** Jobs run at the same time (default 1). */
  concurrency?: number;
  /** How often the queue is looked at when nothing wakes the worker (default 1 s). */
  pollMs?: number;
  /** How often a running job's heartbeat is written (default 5 s). */
  heartbeatMs?: number;
  /** A running job without a heartbeat for this long is taken as lost (default 60 s). */
  staleMs?: number;
  /** Retry delays; default: the queue's. */
  backoff?: Backoff;
  /** How long stop() lets running handlers finish before aborting them (default 30 s). */
  stopTimeoutMs?: number;
  /**
   * Housekeeping: succeeded and cancelled jobs of `kinds` that finished over `ms` ago are deleted
   * (looked at every PRUNE_EVERY_MS; failed ones are kept, for their reason).
   */
  retention?: { kinds: readonly string[]; ms: number };
  log?: Logger;
}

interface Active {
  controller: AbortController;
  heartbeat: NodeJS.Timeout;
  done: Promise<void>;
}

type State = 'idle' | 'running' | 'stopping' | 'stopped';

/** Resolves true when `p` settled within ms, false otherwise. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Claims jobs of the kinds it has handlers for and runs them, up to `concurrency` at a time,
 * each with a heartbeat. Delivery is at least once: a job whose worker dies is run again by
 * another after staleMs, so handlers should be safe to repeat.
 */
export class JobWorker {
  readonly workerId: string;
  private readonly kinds: string[];
  private readonly concurrency: number;
  private readonly pollMs: number;
  private readonly heartbeatMs: number;
  private readonly staleMs: number;
  private readonly stopTimeoutMs: number;
  private readonly reclaimEveryMs: number;
  private readonly log: Logger;
  private readonly active = new Map<number, Active>();
  /** When each running job's heartbeat last got through. */
  private readonly lastBeat = new Map<number, number>();
  private state: State = 'idle';
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private again = false;
  private lastReclaim = 0;
  private lastPrune = 0;
  private stopped: Promise<void> | undefined;
  /** Wake-ups asked for by wakeAt, by due time rounded up to WAKE_GRAIN_MS. */
  private readonly wakeups = new Map<number, NodeJS.Timeout>();

  constructor(
    private readonly queue: JobQueue,
    private readonly handlers: JobHandlers,
    private readonly opts: JobWorkerOptions = {},
  ) {
    this.workerId = opts.workerId ?? `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.kinds = Object.keys(handlers);
    this.concurrency = opts.concurrency ?? 1;
    this.pollMs = opts.pollMs ?? 1000;
    this.heartbeatMs = opts.heartbeatMs ?? 5000;
    this.staleMs = opts.staleMs ?? 60_000;
    this.stopTimeoutMs = opts.stopTimeoutMs ?? 30_000;
    // Often enough that a dead worker's job waits at most ~1.5 × staleMs, rarely enough that
    // idle workers do not take SQLite's write lock on every poll.
    this.reclaimEveryMs = Math.max(this.pollMs, this.staleMs / 2);
    this.log = opts.log ?? pino({ level: 'silent' });
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) throw new RangeError('concurrency must be an integer ≥ 1');
    if (!(this.heartbeatMs > 0 && this.staleMs > this.heartbeatMs)) throw new RangeError('staleMs must be greater than heartbeatMs');
    if (!(this.pollMs > 0)) throw new RangeError('pollMs must be positive');
  }

  /** Jobs this worker is running now. */
  get running(): number[] {
    return [...this.active.keys()];
  }

  start(): void {
    if (this.state !== 'idle') return;
    this.state = 'running';
    if (this.kinds.length === 0) this.log.warn({ worker: this.workerId }, 'job worker has no handlers: it only reclaims stale jobs');
    this.log.info({ worker: this.workerId, kinds: this.kinds, concurrency: this.concurrency }, 'job worker started');
    this.wake();
  }

  /** Looks at the queue now (e.g. right after an enqueue in this process). */
  wake(): void {
    if (this.state !== 'running') return;
    if (this.ticking) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.ticking = this.tick().finally(() => {
      this.ticking = undefined;
      if (this.state === 'running') {
        this.timer = setTimeout(() => this.wake(), this.pollMs);
      }
    });
  }

  /**
   * Looks at the queue when a job queued for later (e.g. after a settle time) becomes due,
   * rather than at the next poll. Wake-ups are grouped by WAKE_GRAIN_MS, so a burst of
   * arrivals that each push a job back costs a handful of timers, not one per arrival.
   */
  wakeAt(at: Date): void {
    if (this.state !== 'running') return;
    const due = Math.ceil(at.getTime() / WAKE_GRAIN_MS) * WAKE_GRAIN_MS;
    if (this.wakeups.has(due)) return;
    const timer = setTimeout(
      () => {
        this.wakeups.delete(due);
        this.wake();
      },
      Math.max(0, due - Date.now()),
    );
    timer.unref();
    this.wakeups.set(due, timer);
  }

  /**
   * Stops claiming, lets running handlers finish for up to timeoutMs, then aborts them and gives
   * their jobs back to the queue (attempt not counted) so another worker takes them at once.
   */
  stop(timeoutMs = this.stopTimeoutMs): Promise<void> {
    this.stopped ??= this.shutdown(timeoutMs);
    return this.stopped;
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    this.state = 'stopping';
    clearTimeout(this.timer);
    for (const t of this.wakeups.values()) clearTimeout(t);
    this.wakeups.clear();
    await this.ticking;
    const all = () => Promise.allSettled([...this.active.values()].map((a) => a.done));
    if (!(await within(all(), timeoutMs))) {
      for (const [id, a] of this.active) {
        this.abort(id, a, 'shutdown');
        try {
          await this.queue.release(id, this.workerId, 'interrupted: worker stopped');
        } catch (err) {
          this.log.warn({ job: id, err: errorMessage(err) }, 'could not give a job back; it will be reclaimed as stale');
        }
      }
      // A handler that ignores its signal is left behind: its job is no longer ours anyway.
      await within(all(), Math.min(5000, Math.max(100, timeoutMs)));
    }
    this.state = 'stopped';
    this.log.info({ worker: this.workerId }, 'job worker stopped');
  }

  private async tick(): Promise<void> {
    try {
      do {
        this.again = false;
        if (Date.now() - this.lastReclaim >= this.reclaimEveryMs) {
          this.lastReclaim = Date.now();
          const r = await this.queue.reclaimStale(this.staleMs);
          if (r.requeued || r.failed || r.superseded) this.log.warn({ worker: this.workerId, ...r }, 'reclaimed jobs of lost workers');
        }
        const keep = this.opts.retention;
        if (keep && Date.now() - this.lastPrune >= PRUNE_EVERY_MS) {
          this.lastPrune = Date.now();
          const n = await this.queue.prune(keep.kinds, new Date(Date.now() - keep.ms));
          if (n > 0) this.log.info({ worker: this.workerId, deleted: n }, 'deleted old finished jobs');
        }
        while (this.state === 'running' && this.active.size < this.concurrency) {
          const job = await this.queue.claim(this.workerId, this.kinds);
          if (!job) break;
          this.launch(job);
        }
      } while (this.again && this.state === 'running');
    } catch (err) {
      // The database may be restarting: try again at the next poll.
      this.log.warn({ worker: this.workerId, err: errorMessage(err) }, 'job queue poll failed');
    }
  }

  private launch(job: JobRow): void {
    const controller = new AbortController();
    const entry: Active = {
      controller,
      heartbeat: setInterval(() => void this.beat(job.id, entry), this.heartbeatMs),
      done: Promise.resolve(),
    };
    this.active.set(job.id, entry);
    // A job belongs to no request: the one whose wake-up started this loop must not tag its logs or spans.
    entry.done = detached(() => this.run(job, entry)).finally(() => {
      clearInterval(entry.heartbeat);
      this.active.delete(job.id);
      this.wake();
    });
  }

  private abort(id: number, a: Active, reason: AbortReason): void {
    clearInterval(a.heartbeat);
    if (!a.controller.signal.aborted) a.controller.abort(new JobAbortedError(reason, id));
  }

  private async beat(id: number, a: Active, progress?: JobProgress): Promise<void> {
    if (a.controller.signal.aborted) return;
    try {
      const outcome = await this.queue.heartbeat(id, this.workerId, progress);
      if (outcome === 'ok') this.lastBeat.set(id, Date.now());
      else this.abort(id, a, outcome);
    } catch (err) {
      this.log.warn({ job: id, err: errorMessage(err) }, 'job heartbeat failed');
      // Past staleMs without a heartbeat another worker may already run it: stop ours.
      if (Date.now() - (this.lastBeat.get(id) ?? 0) > this.staleMs) this.abort(id, a, 'lost');
    }
  }

  private async run(job: JobRow, a: Active): Promise<void> {
    const { signal } = a.controller;
    const log = this.log.child({ job: job.id, kind: job.kind, attempt: job.attempts, worker: this.workerId });
    this.lastBeat.set(job.id, Date.now());
    const ctx: JobContext = {
      signal,
      workerId: this.workerId,
      progress: async (stage, percent) => {
        signal.throwIfAborted();
        await this.beat(job.id, a, { stage, percent });
        signal.throwIfAborted();
      },
    };
    const started = Date.now();
    const observe = (outcome: 'succeeded' | 'failed' | 'aborted') =>
      nodeMetrics.jobDuration.observe({ kind: job.kind, outcome }, (Date.now() - started) / 1000);
    let result: unknown;
    try {
      const handler = Object.hasOwn(this.handlers, job.kind) ? this.handlers[job.kind] : undefined;
      if (!handler) throw new JobError(`no handler for job kind ${job.kind}`, { retryable: false });
      result = await traced(`job ${job.kind}`, { 'radiant.job.kind': job.kind, 'radiant.job.id': job.id }, () => handler(job, ctx));
      try {
        toJson(result, 'result');
      } catch (err) {
        throw new JobError(errorMessage(err), { retryable: false });
      }
    } catch (err) {
      observe(signal.aborted ? 'aborted' : 'failed');
      if (signal.aborted) return this.aborted(log, signal);
      clearInterval(a.heartbeat);
      const retryable = err instanceof JobError ? err.retryable : true;
      const backoff = (err instanceof JobError ? err.backoff : undefined) ?? this.opts.backoff;
      try {
        const outcome = await this.queue.fail(job.id, this.workerId, errorMessage(err), { retryable, backoff });
        log.warn({ err: errorMessage(err), retryable, outcome }, 'job failed');
      } catch (dbErr) {
        log.error(
          { err: errorMessage(err), dbErr: errorMessage(dbErr) },
          'job failed and the failure could not be recorded; it will be reclaimed as stale',
        );
      }
      return;
    } finally {
      this.lastBeat.delete(job.id);
    }
    observe(signal.aborted ? 'aborted' : 'succeeded');
    if (signal.aborted) return this.aborted(log, signal);
    clearInterval(a.heartbeat);
    try {
      if (await this.queue.complete(job.id, this.workerId, result)) log.info({ ms: Date.now() - started }, 'job succeeded');
      else log.warn('job finished after it was cancelled or reclaimed; result dropped');
    } catch (err) {
      // Not recorded: the job will be reclaimed as stale and run again (at least once).
      log.error({ err: errorMessage(err) }, 'job succeeded but its result could not be recorded');
    }
  }

  /** Cancelled, lost or interrupted: not a failure of the job, and nothing more to record. */
  private aborted(log: Logger, signal: AbortSignal): void {
    const reason: unknown = signal.reason;
    log.info({ reason: reason instanceof JobAbortedError ? reason.reason : errorMessage(reason) }, 'job aborted');
  }
}
