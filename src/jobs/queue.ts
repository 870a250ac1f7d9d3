import { isPostgres, type Db, type QueryBuilder, type Trx } from '../db/connection.js';
import { fromRow, toJson, type DbJobRow } from './rows.js';
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
}

/** superseded: it would have been retried, but a newer job with its dedupe key is pending. */
export type FailOutcome = 'retrying' | 'failed' | 'superseded' | 'not-owner';

export const STALE_ERROR = 'worker lost (stale heartbeat)';

/** Key space of our advisory locks, so they cannot collide with anyone else's ('jobs'). */
const ADVISORY_NAMESPACE = 0x6a6f6273;
const MAX_ERROR_CHARS = 4000;
const PRUNE_BATCH = 1000;

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
   * N') in the same transaction; a running one is left alone. On PostgreSQL an advisory lock on
   * the key serialises enqueues of one key, so the later one supersedes the earlier instead of
   * hitting the one-pending-job-per-key index.
   */
  async enqueue<P>(input: EnqueueInput<P>, now = new Date()): Promise<JobRow<P>> {
    if (!input.kind || input.kind.length > 64) throw new RangeError('job kind must have 1 to 64 characters');
    const maxAttempts = input.maxAttempts ?? this.defaultMaxAttempts;
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new RangeError('maxAttempts must be an integer ≥ 1');
    const payload = toJson(input.payload, 'payload');
    const ts = now.toISOString();
    const key = input.dedupeKey;
    return this.db.transaction(async (trx) => {
      let superseded: number[] = [];
      if (key !== undefined) {
        if (isPostgres(this.db)) await trx.raw('SELECT pg_advisory_xact_lock(?, hashtext(?))', [ADVISORY_NAMESPACE, key]);
        const rows = (await trx('jobs')
          .where({ dedupe_key: key, status: 'pending' })
          .update({ status: 'cancelled', error: 'superseded', finished_at: ts, updated_at: ts })
          .returning('id')) as Array<{ id: number | string }>;
        superseded = rows.map((r) => Number(r.id));
      }
      const [row] = (await trx('jobs')
        .insert({
          kind: input.kind,
          payload,
          status: 'pending',
          attempts: 0,
          max_attempts: maxAttempts,
          next_run_at: (input.runAt ?? now).toISOString(),
          dedupe_key: key ?? null,
          created_at: ts,
          updated_at: ts,
        })
        .returning('*')) as DbJobRow[];
      const job = fromRow<P, unknown>(row!);
      if (superseded.length)
        await trx('jobs')
          .whereIn('id', superseded)
          .update({ error: `superseded by job ${job.id}` });
      return job;
    });
  }

  /**
   * Makes sure one pending job of `dedupeKey` exists, inside the caller's transaction (an index
   * transaction: the work then commits with what caused it, or not at all). No pending job: one
   * is inserted to run at `runAt`. One pending already: 'debounce' moves it to `runAt` (work
   * that waits for quiet: each arrival pushes it back), 'earliest' keeps the sooner of the two
   * (a follow-up that must not delay what is already due). One upsert against the
   * one-pending-job-per-key index, the same statement on SQLite and PostgreSQL; on PostgreSQL
   * a concurrent schedule of the key waits for this transaction, then updates the same row.
   */
  async schedule<P>(
    trx: Trx | Db,
    input: { kind: string; payload: P; dedupeKey: string; runAt: Date; maxAttempts?: number },
    mode: 'debounce' | 'earliest',
    now = new Date(),
  ): Promise<void> {
    if (!input.kind || input.kind.length > 64) throw new RangeError('job kind must have 1 to 64 characters');
    const ts = now.toISOString();
    const runAt = input.runAt.toISOString();
    const next =
      mode === 'debounce'
        ? 'excluded.next_run_at'
        : 'CASE WHEN excluded.next_run_at < jobs.next_run_at THEN excluded.next_run_at ELSE jobs.next_run_at END';
    await trx.raw(
      `INSERT INTO jobs (kind, payload, status, attempts, max_attempts, next_run_at, dedupe_key, created_at, updated_at)
       VALUES (?, ?, 'pending', 0, ?, ?, ?, ?, ?)
       ON CONFLICT (dedupe_key) WHERE status = 'pending' AND dedupe_key IS NOT NULL
       DO UPDATE SET next_run_at = ${next}, updated_at = excluded.updated_at`,
      [input.kind, toJson(input.payload, 'payload'), input.maxAttempts ?? this.defaultMaxAttempts, runAt, input.dedupeKey, ts, ts],
    );
  }

  /** The oldest due pending job of one of `kinds`, now running for `workerId`; undefined when none. */
  async claim(workerId: string, kinds: readonly string[], now = new Date()): Promise<JobRow | undefined> {
    if (kinds.length === 0) return undefined;
    const ts = now.toISOString();
    // A plain read first: nothing due is the common answer (a wake-up while arrivals keep
    // pushing a settle job back), and it then costs no write transaction on SQLite.
    const due = await this.db('jobs')
      .where('status', 'pending')
      .andWhere('next_run_at', '<=', ts)
      .whereIn('kind', [...kinds])
      .first('id');
    if (!due) return undefined;
    return this.db.transaction(async (trx) => {
      let pick = trx('jobs')
        .select('id')
        .where('status', 'pending')
        .andWhere('next_run_at', '<=', ts)
        .whereIn('kind', [...kinds])
        .orderBy('next_run_at')
        .orderBy('id')
        .limit(1);
      if (isPostgres(this.db)) pick = pick.forUpdate().skipLocked();
      const [row] = (await trx('jobs')
        .where('id', pick)
        .andWhere('status', 'pending')
        .update({
          status: 'running',
          attempts: trx.raw('attempts + 1'),
          locked_by: workerId,
          locked_at: ts,
          heartbeat_at: ts,
          // Progress belongs to an attempt.
          progress_stage: null,
          progress_percent: null,
          updated_at: ts,
        })
        .returning('*')) as DbJobRow[];
      return row ? fromRow<unknown, unknown>(row) : undefined;
    });
  }

  /**
   * Keeps a running job alive and records its progress. 'cancelled': someone cancelled it;
   * 'lost': it is no longer this worker's (reclaimed as stale, or gone).
   */
  async heartbeat(id: number, workerId: string, progress?: JobProgress): Promise<HeartbeatOutcome> {
    const ts = new Date().toISOString();
    const patch: Record<string, string | number | null> = { heartbeat_at: ts, updated_at: ts };
    if (progress) {
      patch.progress_stage = progress.stage.slice(0, 128);
      patch.progress_percent = Math.round(Math.min(100, Math.max(0, Number.isFinite(progress.percent) ? progress.percent : 0)));
    }
    const n = await this.db('jobs').where({ id, status: 'running', locked_by: workerId }).update(patch);
    if (n > 0) return 'ok';
    const row = (await this.db('jobs').where({ id }).first('status', 'locked_by')) as Pick<DbJobRow, 'status' | 'locked_by'> | undefined;
    // A cancelled running job keeps locked_by, so its worker can tell "cancelled" from "taken".
    return row?.status === 'cancelled' && row.locked_by === workerId ? 'cancelled' : 'lost';
  }

  /** Records the result; false when the job was no longer this worker's (the result is dropped). */
  async complete(id: number, workerId: string, result: unknown): Promise<boolean> {
    const ts = new Date().toISOString();
    const n = await this.db('jobs')
      .where({ id, status: 'running', locked_by: workerId })
      .update({ status: 'succeeded', result: toJson(result, 'result'), error: null, finished_at: ts, updated_at: ts });
    return n > 0;
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
    const owned = { id, status: 'running', locked_by: workerId };
    const row = (await this.db('jobs').where(owned).first('attempts', 'max_attempts', 'dedupe_key')) as
      | Pick<DbJobRow, 'attempts' | 'max_attempts' | 'dedupe_key'>
      | undefined;
    if (!row) return 'not-owner';
    const attempts = Number(row.attempts);
    const ts = now.toISOString();
    const reason = error.slice(0, MAX_ERROR_CHARS);
    const retry = opts.retryable && attempts < Number(row.max_attempts);
    const newer = retry ? await this.pendingWithKey(row.dedupe_key) : undefined;
    let outcome: FailOutcome;
    let patch: Record<string, string | null>;
    if (newer !== undefined) {
      outcome = 'superseded';
      patch = {
        status: 'cancelled',
        error: `${reason}; superseded by job ${newer}`.slice(0, MAX_ERROR_CHARS),
        finished_at: ts,
        updated_at: ts,
      };
    } else if (retry) {
      outcome = 'retrying';
      patch = {
        status: 'pending',
        error: reason,
        next_run_at: new Date(now.getTime() + backoffDelay(opts.backoff ?? this.backoff, attempts)).toISOString(),
        locked_by: null,
        locked_at: null,
        heartbeat_at: null,
        updated_at: ts,
      };
    } else {
      outcome = 'failed';
      patch = { status: 'failed', error: reason, finished_at: ts, updated_at: ts };
    }
    // attempts in the WHERE: the row read above is still the one being updated.
    const n = await this.db('jobs')
      .where({ ...owned, attempts })
      .update(patch);
    return n === 0 ? 'not-owner' : outcome;
  }

  /** The pending job holding this dedupe key, if any (there is at most one). */
  private async pendingWithKey(key: string | null): Promise<number | undefined> {
    if (key === null) return undefined;
    const row = (await this.db('jobs').where({ dedupe_key: key, status: 'pending' }).first('id')) as { id: number | string } | undefined;
    return row ? Number(row.id) : undefined;
  }

  /**
   * Gives a running job back without counting the attempt (a worker stopping gracefully), to be
   * claimed again at once; false when it was no longer this worker's.
   */
  async release(id: number, workerId: string, reason: string): Promise<boolean> {
    const ts = new Date().toISOString();
    const owned = { id, status: 'running', locked_by: workerId };
    const row = (await this.db('jobs').where(owned).first('dedupe_key')) as Pick<DbJobRow, 'dedupe_key'> | undefined;
    if (!row) return false;
    const newer = await this.pendingWithKey(row.dedupe_key);
    const n = await this.db('jobs')
      .where(owned)
      .update(
        newer !== undefined
          ? {
              status: 'cancelled',
              error: `${reason}; superseded by job ${newer}`.slice(0, MAX_ERROR_CHARS),
              finished_at: ts,
              updated_at: ts,
            }
          : {
              status: 'pending',
              attempts: this.db.raw('attempts - 1'),
              error: reason.slice(0, MAX_ERROR_CHARS),
              next_run_at: ts,
              locked_by: null,
              locked_at: null,
              heartbeat_at: null,
              updated_at: ts,
            },
      );
    return n > 0;
  }

  /**
   * Pending → cancelled at once. Running → cancelled too; its worker learns it at its next
   * heartbeat and aborts the handler. false when the job is finished or unknown.
   */
  async cancel(id: number, reason = 'cancelled'): Promise<boolean> {
    const ts = new Date().toISOString();
    const n = await this.db('jobs')
      .where({ id })
      .whereIn('status', ['pending', 'running'])
      .update({ status: 'cancelled', error: reason.slice(0, MAX_ERROR_CHARS), finished_at: ts, updated_at: ts });
    return n > 0;
  }

  /** P and R name what the caller expects in payload and result; they are not checked. */
  async get<P = unknown, R = unknown>(id: number): Promise<JobRow<P, R> | undefined> {
    const row = (await this.db('jobs').where({ id }).first()) as DbJobRow | undefined;
    return row ? fromRow<P, R>(row) : undefined;
  }

  async list<P = unknown, R = unknown>(q: ListQuery = {}): Promise<Array<JobRow<P, R>>> {
    const b = this.db('jobs');
    if (q.kind !== undefined) b.where('kind', q.kind);
    if (q.status !== undefined) b.where('status', q.status);
    const limit = Math.min(1000, Math.max(1, Math.floor(q.limit ?? 100)));
    return ((await b.orderBy('id', 'desc').limit(limit)) as DbJobRow[]).map((r) => fromRow<P, R>(r));
  }

  /**
   * Deletes succeeded and cancelled jobs of `kinds` that finished before `before`, a thousand per
   * statement so no statement holds the table long; failed ones stay (their reason is the
   * record). Returns how many went.
   */
  async prune(kinds: readonly string[], before: Date): Promise<number> {
    if (kinds.length === 0) return 0;
    let deleted = 0;
    for (;;) {
      const old = this.db('jobs')
        .select('id')
        .whereIn('kind', [...kinds])
        .whereIn('status', ['succeeded', 'cancelled'])
        .andWhere('finished_at', '<', before.toISOString())
        .limit(PRUNE_BATCH);
      const n = await this.db('jobs').whereIn('id', old).del();
      deleted += n;
      if (n < PRUNE_BATCH) return deleted;
    }
  }

  /**
   * Running jobs whose heartbeat is older than staleMs (their worker died or hangs) go back to
   * pending, or to failed when their attempts are used up, with STALE_ERROR as the reason.
   * Clearing locked_by makes a worker that was only slow see 'lost' at its next heartbeat.
   * One pending job per dedupe key: a stale job whose key already has a pending job is
   * superseded by it, and of several stale jobs of one key the newest goes back. Each job is
   * its own conditional UPDATE (no read-then-write transaction: no SQLITE_BUSY), so a race with
   * an enqueue of the same key costs that one job a supersede, never the whole reclaim.
   */
  async reclaimStale(staleMs: number, now = new Date()): Promise<{ requeued: number; failed: number; superseded: number }> {
    const ts = now.toISOString();
    const cutoff = new Date(now.getTime() - staleMs).toISOString();
    const stale = (q: QueryBuilder) => q.where('status', 'running').andWhere('heartbeat_at', '<', cutoff);
    const newerPending = (q: QueryBuilder) =>
      q.select(1).from('jobs as newer').whereRaw('newer.dedupe_key = jobs.dedupe_key').andWhere('newer.status', 'pending');
    const failed = await stale(this.db('jobs'))
      .andWhereRaw('attempts >= max_attempts')
      .update({ status: 'failed', error: STALE_ERROR, locked_by: null, finished_at: ts, updated_at: ts });
    const candidates = (await stale(this.db('jobs')).andWhereRaw('attempts < max_attempts').orderBy('id', 'desc').select('id')) as Array<{
      id: number | string;
    }>;
    let requeued = 0;
    let superseded = 0;
    for (const { id } of candidates) {
      const one = () => stale(this.db('jobs').where({ id })).andWhereRaw('attempts < max_attempts');
      let n = 0;
      try {
        n = await one().whereNotExists(newerPending).update({
          status: 'pending',
          error: STALE_ERROR,
          next_run_at: ts,
          locked_by: null,
          locked_at: null,
          heartbeat_at: null,
          updated_at: ts,
        });
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
      }
      if (n > 0) {
        requeued += n;
        continue;
      }
      const newer = (await this.db('jobs as newer')
        .join('jobs', 'jobs.dedupe_key', 'newer.dedupe_key')
        .where({ 'jobs.id': id, 'newer.status': 'pending' })
        .first('newer.id as id')) as { id: number | string } | undefined;
      if (newer === undefined) continue; // no longer stale, or finished meanwhile
      superseded += await one().update({
        status: 'cancelled',
        error: `${STALE_ERROR}; superseded by job ${Number(newer.id)}`,
        locked_by: null,
        finished_at: ts,
        updated_at: ts,
      });
    }
    return { requeued, failed, superseded };
  }
}

/** A unique index said no (PostgreSQL 23505, SQLite SQLITE_CONSTRAINT … UNIQUE). */
function isUniqueViolation(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : '';
  return code === '23505' || (code === 'SQLITE_CONSTRAINT' && message.includes('UNIQUE'));
}
