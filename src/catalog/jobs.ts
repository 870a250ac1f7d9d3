import { isPostgres, type Db, type QueryBuilder, type Trx } from '../db/connection.js';
import { isUniqueViolation } from './sql.js';

/**
 * The job rows (table `jobs`) the durable queue (src/jobs/queue.ts) runs on: what each statement
 * reads and writes, with the queue's ownership rule built in. Every state change of a claimed job
 * is one conditional UPDATE (…WHERE id = ? AND status = 'running' AND locked_by = …), so a
 * worker that lost its job can never overwrite what another one did; the number of rows touched
 * says whether it still owned it. What a change means (retry or fail, back-off, error texts) is
 * the queue's business. Times are ISO strings from the caller's clock.
 */

export type JobStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface JobProgress {
  stage: string;
  /** 0–100, whole numbers. */
  percent: number;
}

export interface JobRow<P = unknown, R = unknown> {
  id: number;
  kind: string;
  payload: P;
  status: JobStatus;
  /** Runs started so far (a claim counts one; a graceful shutdown gives it back). */
  attempts: number;
  maxAttempts: number;
  /** ISO 8601; a pending job is not claimed before this. */
  nextRunAt: string;
  lockedBy: string | null;
  lockedAt: string | null;
  heartbeatAt: string | null;
  /** Why it last failed, was cancelled, superseded or lost; null once it succeeded. */
  error: string | null;
  result: R | null;
  dedupeKey: string | null;
  progress: JobProgress | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

/** A `jobs` row as the drivers return it (PostgreSQL: Dates and bigint strings; SQLite: text). */
interface Row {
  id: number | string;
  kind: string;
  payload: string;
  status: JobStatus;
  attempts: number | string;
  max_attempts: number | string;
  next_run_at: string | Date;
  locked_by: string | null;
  locked_at: string | Date | null;
  heartbeat_at: string | Date | null;
  error: string | null;
  result: string | null;
  dedupe_key: string | null;
  progress_stage: string | null;
  progress_percent: number | string | null;
  created_at: string | Date;
  updated_at: string | Date;
  finished_at: string | Date | null;
}

function iso(v: string | Date): string;
function iso(v: string | Date | null): string | null;
function iso(v: string | Date | null): string | null {
  return v === null ? null : v instanceof Date ? v.toISOString() : v;
}

/** A payload or result as the JSON text its column holds. */
export function toJson(value: unknown, what: string): string {
  const text = JSON.stringify(value ?? null);
  // JSON.stringify answers undefined for functions and symbols, and the column is NOT NULL.
  if (typeof text !== 'string') throw new TypeError(`job ${what} is not JSON-serialisable`);
  return text;
}

/**
 * The caller names what it expects in payload and result (P, R); the stored JSON is not checked
 * against it, which is why handlers get JobRow<unknown> and narrow it themselves.
 */
function fromRow<P, R>(r: Row): JobRow<P, R> {
  return {
    id: Number(r.id),
    kind: r.kind,
    payload: JSON.parse(r.payload) as P,
    status: r.status,
    attempts: Number(r.attempts),
    maxAttempts: Number(r.max_attempts),
    nextRunAt: iso(r.next_run_at),
    lockedBy: r.locked_by,
    lockedAt: iso(r.locked_at),
    heartbeatAt: iso(r.heartbeat_at),
    error: r.error,
    result: r.result === null ? null : (JSON.parse(r.result) as R),
    dedupeKey: r.dedupe_key,
    progress: r.progress_stage === null ? null : { stage: r.progress_stage, percent: Number(r.progress_percent ?? 0) },
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
    finishedAt: iso(r.finished_at),
  };
}

/** Key space of our advisory locks, so they cannot collide with anyone else's ('jobs'). */
const ADVISORY_NAMESPACE = 0x6a6f6273;
const PRUNE_BATCH = 1000;

/** A job to insert: payload already JSON (toJson), times ISO. */
export interface NewJob {
  kind: string;
  payloadJson: string;
  maxAttempts: number;
  nextRunAt: string;
  dedupeKey: string | null;
}

/**
 * Inserts a pending job. With a dedupe key, a pending job with that key is cancelled ('superseded
 * by job N') in the same transaction; a running one is left alone. On PostgreSQL an advisory lock
 * on the key serialises inserts of one key, so the later one supersedes the earlier instead of
 * hitting the one-pending-job-per-key index. Given a transaction, it runs in a savepoint of it.
 */
export async function insertJob<P>(db: Db | Trx, job: NewJob, ts: string): Promise<JobRow<P>> {
  const key = job.dedupeKey;
  return db.transaction(async (trx) => {
    let superseded: number[] = [];
    if (key !== null) {
      if (isPostgres(db)) await trx.raw('SELECT pg_advisory_xact_lock(?, hashtext(?))', [ADVISORY_NAMESPACE, key]);
      const rows = (await trx('jobs')
        .where({ dedupe_key: key, status: 'pending' })
        .update({ status: 'cancelled', error: 'superseded', finished_at: ts, updated_at: ts })
        .returning('id')) as Array<{ id: number | string }>;
      superseded = rows.map((r) => Number(r.id));
    }
    const [row] = (await trx('jobs')
      .insert({
        kind: job.kind,
        payload: job.payloadJson,
        status: 'pending',
        attempts: 0,
        max_attempts: job.maxAttempts,
        next_run_at: job.nextRunAt,
        dedupe_key: key,
        created_at: ts,
        updated_at: ts,
      })
      .returning('*')) as Row[];
    const inserted = fromRow<P, unknown>(row!);
    if (superseded.length)
      await trx('jobs')
        .whereIn('id', superseded)
        .update({ error: `superseded by job ${inserted.id}` });
    return inserted;
  });
}

/**
 * Makes sure one pending job of `job.dedupeKey` exists, in the caller's transaction. None: it is
 * inserted to run at `nextRunAt`. One already: 'debounce' moves it to `nextRunAt`, 'earliest'
 * keeps the sooner of the two. One upsert against the one-pending-job-per-key index, the same
 * statement on SQLite and PostgreSQL; on PostgreSQL a concurrent upsert of the key waits for this
 * transaction, then updates the same row.
 */
export async function upsertPendingJob(
  trx: Trx | Db,
  job: NewJob & { dedupeKey: string },
  mode: 'debounce' | 'earliest',
  ts: string,
): Promise<void> {
  const next =
    mode === 'debounce'
      ? 'excluded.next_run_at'
      : 'CASE WHEN excluded.next_run_at < jobs.next_run_at THEN excluded.next_run_at ELSE jobs.next_run_at END';
  await trx.raw(
    `INSERT INTO jobs (kind, payload, status, attempts, max_attempts, next_run_at, dedupe_key, created_at, updated_at)
       VALUES (?, ?, 'pending', 0, ?, ?, ?, ?, ?)
       ON CONFLICT (dedupe_key) WHERE status = 'pending' AND dedupe_key IS NOT NULL
       DO UPDATE SET next_run_at = ${next}, updated_at = excluded.updated_at`,
    [job.kind, job.payloadJson, job.maxAttempts, job.nextRunAt, job.dedupeKey, ts, ts],
  );
}

/**
 * The oldest due pending job of one of `kinds`, now running for `workerId`; undefined when none.
 * PostgreSQL picks the row with FOR UPDATE SKIP LOCKED, so nodes never queue up behind each other
 * or take the same job. SQLite has one writer at a time, so the conditional update alone is the
 * claim; doing it in one statement, with no read before it, also keeps a second process on the
 * same file from failing with SQLITE_BUSY_SNAPSHOT.
 */
export async function claimDueJob(db: Db, workerId: string, kinds: readonly string[], ts: string): Promise<JobRow | undefined> {
  // A plain read first: nothing due is the common answer (a wake-up while arrivals keep
  // pushing a settle job back), and it then costs no write transaction on SQLite.
  const due = await db('jobs')
    .where('status', 'pending')
    .andWhere('next_run_at', '<=', ts)
    .whereIn('kind', [...kinds])
    .first('id');
  if (!due) return undefined;
  return db.transaction(async (trx) => {
    let pick = trx('jobs')
      .select('id')
      .where('status', 'pending')
      .andWhere('next_run_at', '<=', ts)
      .whereIn('kind', [...kinds])
      .orderBy('next_run_at')
      .orderBy('id')
      .limit(1);
    if (isPostgres(db)) pick = pick.forUpdate().skipLocked();
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
      .returning('*')) as Row[];
    return row ? fromRow<unknown, unknown>(row) : undefined;
  });
}

/** A running job as its worker names it; `attempts` pins the attempt it read (see runningJob). */
export interface JobOwner {
  id: number;
  workerId: string;
  attempts?: number;
}

function owned(db: Db, o: JobOwner): QueryBuilder {
  const q = db('jobs').where({ id: o.id, status: 'running', locked_by: o.workerId });
  if (o.attempts !== undefined) q.where({ attempts: o.attempts });
  return q;
}

/** Heartbeat of a running job, with its progress when given; false when it is not `workerId`'s. */
export async function touchRunningJob(db: Db, id: number, workerId: string, ts: string, progress?: JobProgress): Promise<boolean> {
  const patch: Record<string, string | number | null> = { heartbeat_at: ts, updated_at: ts };
  if (progress) {
    patch.progress_stage = progress.stage;
    patch.progress_percent = progress.percent;
  }
  return (await owned(db, { id, workerId }).update(patch)) > 0;
}

/** Status and lock holder of a job; undefined when it is gone. */
export async function jobLock(db: Db, id: number): Promise<{ status: JobStatus; lockedBy: string | null } | undefined> {
  const row = (await db('jobs').where({ id }).first('status', 'locked_by')) as Pick<Row, 'status' | 'locked_by'> | undefined;
  return row && { status: row.status, lockedBy: row.locked_by };
}

/** What a settlement needs of a job still running for its worker; undefined when it is not. */
export async function runningJob(
  db: Db,
  id: number,
  workerId: string,
): Promise<{ attempts: number; maxAttempts: number; dedupeKey: string | null } | undefined> {
  const row = (await owned(db, { id, workerId }).first('attempts', 'max_attempts', 'dedupe_key')) as
    | Pick<Row, 'attempts' | 'max_attempts' | 'dedupe_key'>
    | undefined;
  return row && { attempts: Number(row.attempts), maxAttempts: Number(row.max_attempts), dedupeKey: row.dedupe_key };
}

/** The pending job holding this dedupe key, if any (there is at most one). */
export async function pendingJobWithKey(db: Db, key: string): Promise<number | undefined> {
  const row = (await db('jobs').where({ dedupe_key: key, status: 'pending' }).first('id')) as { id: number | string } | undefined;
  return row ? Number(row.id) : undefined;
}

/**
 * Where a running job goes: done, over (failed, cancelled), or back to pending at `nextRunAt`
 * unlocked, with the attempt given back when the worker stopped rather than failed.
 */
export type JobSettlement =
  | { status: 'succeeded'; resultJson: string }
  | { status: 'failed' | 'cancelled'; error: string }
  | { status: 'pending'; error: string; nextRunAt: string; giveBackAttempt?: boolean };

/** One conditional UPDATE of a job `owner` still holds; false when it no longer does. */
export async function settleRunningJob(db: Db, owner: JobOwner, s: JobSettlement, ts: string): Promise<boolean> {
  let patch: Record<string, unknown>;
  if (s.status === 'succeeded') patch = { status: 'succeeded', result: s.resultJson, error: null, finished_at: ts, updated_at: ts };
  else if (s.status === 'pending')
    patch = {
      status: 'pending',
      ...(s.giveBackAttempt ? { attempts: db.raw('attempts - 1') } : {}),
      error: s.error,
      next_run_at: s.nextRunAt,
      locked_by: null,
      locked_at: null,
      heartbeat_at: null,
      updated_at: ts,
    };
  else patch = { status: s.status, error: s.error, finished_at: ts, updated_at: ts };
  return (await owned(db, owner).update(patch)) > 0;
}

/** Pending or running → cancelled; false when the job is finished or unknown. */
export async function cancelJob(db: Db, id: number, error: string, ts: string): Promise<boolean> {
  const n = await db('jobs')
    .where({ id })
    .whereIn('status', ['pending', 'running'])
    .update({ status: 'cancelled', error, finished_at: ts, updated_at: ts });
  return n > 0;
}

/** P and R name what the caller expects in payload and result; they are not checked. */
export async function jobById<P = unknown, R = unknown>(db: Db, id: number): Promise<JobRow<P, R> | undefined> {
  const row = (await db('jobs').where({ id }).first()) as Row | undefined;
  return row ? fromRow<P, R>(row) : undefined;
}

/** Newest first, at most `limit`; with `beforeId`, the page after the job of that id. */
export async function listJobs<P = unknown, R = unknown>(
  db: Db,
  q: { kind?: string; status?: JobStatus; limit: number; beforeId?: number },
): Promise<Array<JobRow<P, R>>> {
  const b = db('jobs');
  if (q.kind !== undefined) b.where('kind', q.kind);
  if (q.status !== undefined) b.where('status', q.status);
  if (q.beforeId !== undefined) b.where('id', '<', q.beforeId);
  return ((await b.orderBy('id', 'desc').limit(q.limit)) as Row[]).map((r) => fromRow<P, R>(r));
}

/**
 * Deletes succeeded and cancelled jobs of `kinds` that finished before `before`, a thousand per
 * statement so no statement holds the table long; failed ones stay. Returns how many went.
 */
export async function deleteFinishedJobs(db: Db, kinds: readonly string[], before: string): Promise<number> {
  let deleted = 0;
  for (;;) {
    const old = db('jobs')
      .select('id')
      .whereIn('kind', [...kinds])
      .whereIn('status', ['succeeded', 'cancelled'])
      .andWhere('finished_at', '<', before)
      .limit(PRUNE_BATCH);
    const n = await db('jobs').whereIn('id', old).del();
    deleted += n;
    if (n < PRUNE_BATCH) return deleted;
  }
}

/**
 * Running jobs whose heartbeat is older than `cutoff` go back to pending, or to failed when their
 * attempts are used up, with `reason` as the error. Clearing locked_by makes a worker that was
 * only slow see it lost at its next heartbeat. One pending job per dedupe key: a stale job whose
 * key already has a pending job is superseded by it, and of several stale jobs of one key the
 * newest goes back. Each job is its own conditional UPDATE (no read-then-write transaction: no
 * SQLITE_BUSY), so a race with an enqueue of the same key costs that one job a supersede, never
 * the whole reclaim.
 */
export async function reclaimStaleJobs(
  db: Db,
  cutoff: string,
  ts: string,
  reason: string,
): Promise<{ requeued: number; failed: number; superseded: number }> {
  const stale = (q: QueryBuilder) => q.where('status', 'running').andWhere('heartbeat_at', '<', cutoff);
  const newerPending = (q: QueryBuilder) =>
    q.select(1).from('jobs as newer').whereRaw('newer.dedupe_key = jobs.dedupe_key').andWhere('newer.status', 'pending');
  const failed = await stale(db('jobs'))
    .andWhereRaw('attempts >= max_attempts')
    .update({ status: 'failed', error: reason, locked_by: null, finished_at: ts, updated_at: ts });
  const candidates = (await stale(db('jobs')).andWhereRaw('attempts < max_attempts').orderBy('id', 'desc').select('id')) as Array<{
    id: number | string;
  }>;
  let requeued = 0;
  let superseded = 0;
  for (const { id } of candidates) {
    const one = () => stale(db('jobs').where({ id })).andWhereRaw('attempts < max_attempts');
    let n = 0;
    try {
      n = await one().whereNotExists(newerPending).update({
        status: 'pending',
        error: reason,
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
    const newer = (await db('jobs as newer')
      .join('jobs', 'jobs.dedupe_key', 'newer.dedupe_key')
      .where({ 'jobs.id': id, 'newer.status': 'pending' })
      .first('newer.id as id')) as { id: number | string } | undefined;
    if (newer === undefined) continue; // no longer stale, or finished meanwhile
    superseded += await one().update({
      status: 'cancelled',
      error: `${reason}; superseded by job ${Number(newer.id)}`,
      locked_by: null,
      finished_at: ts,
      updated_at: ts,
    });
  }
  return { requeued, failed, superseded };
}

/** How many jobs there are of each kind and status (the queue's depth). */
export async function countJobsByKindAndStatus(db: Db): Promise<Array<{ kind: string; status: JobStatus; count: number }>> {
  const rows = (await db('jobs').select('kind', 'status').count({ n: '*' }).groupBy('kind', 'status').orderBy('kind')) as Array<{
    kind: string;
    status: JobStatus;
    n: number | string;
  }>;
  return rows.map((r) => ({ kind: r.kind, status: r.status, count: Number(r.n) }));
}

/**
 * A failed job back to pending, due at `ts`, with its attempts counted afresh (the reason it
 * failed stays in `error` until it runs). 'not-failed' when it is not failed (or unknown);
 * 'superseded' when its dedupe key already has a pending job (that one will do the work).
 */
export async function retryFailedJob(db: Db, id: number, ts: string): Promise<'retried' | 'not-failed' | 'superseded'> {
  try {
    const n = await db('jobs').where({ id, status: 'failed' }).update({
      status: 'pending',
      attempts: 0,
      next_run_at: ts,
      locked_by: null,
      locked_at: null,
      heartbeat_at: null,
      finished_at: null,
      updated_at: ts,
    });
    return n > 0 ? 'retried' : 'not-failed';
  } catch (err) {
    if (isUniqueViolation(err)) return 'superseded';
    throw err;
  }
}
