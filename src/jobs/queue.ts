import type { Db, Trx } from '../db/connection.js';
import {
  cancelJob,
  claimDueJob,
  deleteFinishedJobs,
  insertJob,
  jobById,
  jobLock,
  listJobs,
  countJobsByKindAndStatus,
  retryFailedJob,
  pendingJobWithKey,
  reclaimStaleJobs,
  runningJob,
  settleRunningJob,
  toJson,
  touchRunningJob,
  upsertPendingJob,
  type JobSettlement,
} from '../catalog/jobs.js';
import { backoffDelay } from '../backoff.js';
import {
  DEFAULT_BACKOFF,
  type Backoff,
  type EnqueueInput,
  type HeartbeatOutcome,
  type JobProgress,
  type JobRow,
  type JobStatus,
} from './types.js';

/**
 * The durable job queue (table `jobs`), shared by every process that opens the same database.
 *
 * Every state change is one conditional UPDATE (…WHERE id = ? AND status = … AND locked_by = …),
 * so a worker that lost its job (reclaimed as stale, cancelled) can never overwrite what another
 * one did; the number of rows it touched says whether it still owned the job. Claims on
 * PostgreSQL pick the row with FOR UPDATE SKIP LOCKED, so nodes never queue up behind each other
 * or take the same job. SQLite has one writer at a time, so the conditional update alone is the
 * claim; doing it in one statement, with no read before it, also keeps a second process on the
 * same file from failing with SQLITE_BUSY_SNAPSHOT.
 *
 * Times come from the caller's clock (ISO strings), as in forwarding: nodes sharing a database
 * are expected to keep their clocks in sync far below the stale-heartbeat threshold.
 */

/** Dedupe keys already debounced in a transaction (schedule). */
const scheduledIn = new WeakMap<object, Set<string>>();
export interface JobQueueOptions {
  /** max_attempts of jobs enqueued without one (default 3). */
  defaultMaxAttempts?: number;
  /** Retry delays after retryable failures (default 5 s doubling up to 10 min). */
  backoff?: Backoff;
}

export interface ListQuery {
  kind?: string;
  status?: JobStatus;
  /** Newest first; default 100, at most 1000. */
  limit?: number;
  /** Paging: the jobs older than the job of this id. */
  beforeId?: number;
}

/** superseded: it would have been retried, but a newer job with its dedupe key is pending. */
export type FailOutcome = 'retrying' | 'failed' | 'superseded' | 'not-owner';

export const STALE_ERROR = 'worker lost (stale heartbeat)';

const MAX_ERROR_CHARS = 4000;

export class JobQueue {
  readonly defaultMaxAttempts: number;
  readonly backoff: Backoff;

  constructor(
    private readonly db: Db,
    opts: JobQueueOptions = {},
  ) {
    this.defaultMaxAttempts = opts.defaultMaxAttempts ?? 3;
    this.backoff = opts.backoff ?? DEFAULT_BACKOFF;
    if (!Number.isInteger(this.defaultMaxAttempts) || this.defaultMaxAttempts < 1)
      throw new RangeError('defaultMaxAttempts must be an integer ≥ 1');
  }

  /**
   * Adds a job. With a dedupeKey, a pending job with that key is cancelled ('superseded by job
   * N') in the same transaction; a running one is left alone (src/catalog/jobs.ts, insertJob).
   */
  async enqueue<P>(input: EnqueueInput<P>, now = new Date()): Promise<JobRow<P>> {
    return this.enqueueIn(this.db, input, now);
  }

  /**
   * enqueue inside the caller's transaction: the job commits with the rows that call for it, or
   * not at all (a report version and its report.publish job), so a crash after the commit still
   * runs it.
   */
  async enqueueIn<P>(trx: Trx | Db, input: EnqueueInput<P>, now = new Date()): Promise<JobRow<P>> {
    if (!input.kind || input.kind.length > 64) throw new RangeError('job kind must have 1 to 64 characters');
    const maxAttempts = input.maxAttempts ?? this.defaultMaxAttempts;
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new RangeError('maxAttempts must be an integer ≥ 1');
    const payloadJson = toJson(input.payload, 'payload');
    const ts = now.toISOString();
    return insertJob<P>(
      trx,
      { kind: input.kind, payloadJson, maxAttempts, nextRunAt: (input.runAt ?? now).toISOString(), dedupeKey: input.dedupeKey ?? null },
      ts,
    );
  }

  /**
   * The job once it is finished (succeeded, failed or cancelled), or as it stands when timeoutMs
   * ran out (pending or running; a retry waiting for its back-off counts as not finished). Polls
   * the row, so it sees jobs run by any node's worker; undefined when the job is unknown.
   */
  async waitFor<P = unknown, R = unknown>(id: number, timeoutMs: number, pollMs = 25): Promise<JobRow<P, R> | undefined> {
    const deadline = Date.now() + timeoutMs;
    let delay = pollMs;
    for (;;) {
      const job = await jobById<P, R>(this.db, id);
      if (!job || (job.status !== 'pending' && job.status !== 'running') || Date.now() >= deadline) return job;
      await new Promise((r) => setTimeout(r, Math.min(delay, Math.max(1, deadline - Date.now()))));
      // Quick jobs are seen at once; a long wait costs a read every quarter second.
      delay = Math.min(250, delay * 2);
    }
  }

  /**
   * Makes sure one pending job of `dedupeKey` exists, inside the caller's transaction (an index
   * transaction: the work then commits with what caused it, or not at all). No pending job: one
   * is inserted to run at `runAt`. One pending already: 'debounce' moves it to `runAt` (work
   * that waits for quiet: each arrival pushes it back), 'earliest' keeps the sooner of the two
   * (a follow-up that must not delay what is already due). See upsertPendingJob.
   */
  async schedule<P>(
    trx: Trx | Db,
    input: { kind: string; payload: P; dedupeKey: string; runAt: Date; maxAttempts?: number },
    mode: 'debounce' | 'earliest',
    now = new Date(),
  ): Promise<void> {
    if (!input.kind || input.kind.length > 64) throw new RangeError('job kind must have 1 to 64 characters');
    const ts = now.toISOString();
    const nextRunAt = input.runAt.toISOString();
    const job = {
      kind: input.kind,
      payloadJson: toJson(input.payload, 'payload'),
      maxAttempts: input.maxAttempts ?? this.defaultMaxAttempts,
      nextRunAt,
      dedupeKey: input.dedupeKey,
    };
    // An index transaction holds a batch of instances, often of one series: the first debounce of
    // a key in it stands for the rest (their run times differ by the batch's milliseconds), so
    // the batch does not rewrite the same job row once per instance.
    if (mode === 'debounce' && (trx as { isTransaction?: boolean }).isTransaction === true) {
      const seen = scheduledIn.get(trx) ?? new Set<string>();
      if (seen.has(input.dedupeKey)) return;
      seen.add(input.dedupeKey);
      scheduledIn.set(trx, seen);
    }
    await upsertPendingJob(trx, job, mode, ts);
  }

  /** The oldest due pending job of one of `kinds`, now running for `workerId`; undefined when none. */
  async claim(workerId: string, kinds: readonly string[], now = new Date()): Promise<JobRow | undefined> {
    if (kinds.length === 0) return undefined;
    return claimDueJob(this.db, workerId, kinds, now.toISOString());
  }

  /**
   * Keeps a running job alive and records its progress. 'cancelled': someone cancelled it;
   * 'lost': it is no longer this worker's (reclaimed as stale, or gone).
   */
  async heartbeat(id: number, workerId: string, progress?: JobProgress): Promise<HeartbeatOutcome> {
    const ts = new Date().toISOString();
    const clamped = progress && {
      stage: progress.stage.slice(0, 128),
      percent: Math.round(Math.min(100, Math.max(0, Number.isFinite(progress.percent) ? progress.percent : 0))),
    };
    if (await touchRunningJob(this.db, id, workerId, ts, clamped)) return 'ok';
    const row = await jobLock(this.db, id);
    // A cancelled running job keeps locked_by, so its worker can tell "cancelled" from "taken".
    return row?.status === 'cancelled' && row.lockedBy === workerId ? 'cancelled' : 'lost';
  }

  /** Records the result; false when the job was no longer this worker's (the result is dropped). */
  async complete(id: number, workerId: string, result: unknown): Promise<boolean> {
    const ts = new Date().toISOString();
    return settleRunningJob(this.db, { id, workerId }, { status: 'succeeded', resultJson: toJson(result, 'result') }, ts);
  }

  /**
   * A failed attempt: back to pending after the back-off when retryable and attempts remain,
   * else failed for good; the reason is kept in `error` either way. A job that would go back
   * to pending while a newer job with its dedupe key is pending is superseded by that one.
   */
  async fail(
    id: number,
    workerId: string,
    error: string,
    opts: { retryable: boolean; backoff?: Backoff },
    now = new Date(),
  ): Promise<FailOutcome> {
    const row = await runningJob(this.db, id, workerId);
    if (!row) return 'not-owner';
    const attempts = row.attempts;
    const ts = now.toISOString();
    const reason = error.slice(0, MAX_ERROR_CHARS);
    const retry = opts.retryable && attempts < row.maxAttempts;
    const newer = retry ? await this.pendingWithKey(row.dedupeKey) : undefined;
    let outcome: FailOutcome;
    let settlement: JobSettlement;
    if (newer !== undefined) {
      outcome = 'superseded';
      settlement = { status: 'cancelled', error: `${reason}; superseded by job ${newer}`.slice(0, MAX_ERROR_CHARS) };
    } else if (retry) {
      outcome = 'retrying';
      settlement = {
        status: 'pending',
        error: reason,
        nextRunAt: new Date(now.getTime() + backoffDelay(opts.backoff ?? this.backoff, attempts)).toISOString(),
      };
    } else {
      outcome = 'failed';
      settlement = { status: 'failed', error: reason };
    }
    // attempts in the WHERE: the row read above is still the one being updated.
    const ok = await settleRunningJob(this.db, { id, workerId, attempts }, settlement, ts);
    return ok ? outcome : 'not-owner';
  }

  /** The pending job holding this dedupe key, if any (there is at most one). */
  private async pendingWithKey(key: string | null): Promise<number | undefined> {
    return key === null ? undefined : pendingJobWithKey(this.db, key);
  }

  /**
   * Gives a running job back without counting the attempt (a worker stopping gracefully), to be
   * claimed again at once; false when it was no longer this worker's.
   */
  async release(id: number, workerId: string, reason: string): Promise<boolean> {
    const ts = new Date().toISOString();
    const row = await runningJob(this.db, id, workerId);
    if (!row) return false;
    const newer = await this.pendingWithKey(row.dedupeKey);
    return settleRunningJob(
      this.db,
      { id, workerId },
      newer !== undefined
        ? { status: 'cancelled', error: `${reason}; superseded by job ${newer}`.slice(0, MAX_ERROR_CHARS) }
        : { status: 'pending', giveBackAttempt: true, error: reason.slice(0, MAX_ERROR_CHARS), nextRunAt: ts },
      ts,
    );
  }

  /**
   * Pending → cancelled at once. Running → cancelled too; its worker learns it at its next
   * heartbeat and aborts the handler. false when the job is finished or unknown.
   */
  async cancel(id: number, reason = 'cancelled'): Promise<boolean> {
    return cancelJob(this.db, id, reason.slice(0, MAX_ERROR_CHARS), new Date().toISOString());
  }

  /** P and R name what the caller expects in payload and result; they are not checked. */
  async get<P = unknown, R = unknown>(id: number): Promise<JobRow<P, R> | undefined> {
    return jobById<P, R>(this.db, id);
  }

  async list<P = unknown, R = unknown>(q: ListQuery = {}): Promise<Array<JobRow<P, R>>> {
    const limit = Math.min(1000, Math.max(1, Math.floor(q.limit ?? 100)));
    return listJobs<P, R>(this.db, { kind: q.kind, status: q.status, limit, beforeId: q.beforeId });
  }

  /** Jobs per kind and status. */
  async depth(): Promise<Array<{ kind: string; status: JobStatus; count: number }>> {
    return countJobsByKindAndStatus(this.db);
  }

  /**
   * A failed job (a dead letter) runs again, with its attempts afresh: 'not-failed' when it is not
   * failed, 'superseded' when a newer job with its dedupe key is pending.
   */
  async retry(id: number): Promise<'retried' | 'not-failed' | 'superseded'> {
    return retryFailedJob(this.db, id, new Date().toISOString());
  }

  /**
   * Deletes succeeded and cancelled jobs of `kinds` that finished before `before`, a thousand per
   * statement so no statement holds the table long; failed ones stay (their reason is the
   * record). Returns how many went.
   */
  async prune(kinds: readonly string[], before: Date): Promise<number> {
    if (kinds.length === 0) return 0;
    return deleteFinishedJobs(this.db, kinds, before.toISOString());
  }

  /**
   * Running jobs whose heartbeat is older than staleMs (their worker died or hangs) go back to
   * pending, or to failed when their attempts are used up, with STALE_ERROR as the reason; a
   * stale job whose dedupe key already has a pending job is superseded by it (reclaimStaleJobs).
   */
  async reclaimStale(staleMs: number, now = new Date()): Promise<{ requeued: number; failed: number; superseded: number }> {
    const cutoff = new Date(now.getTime() - staleMs).toISOString();
    return reclaimStaleJobs(this.db, cutoff, now.toISOString(), STALE_ERROR);
  }
}
