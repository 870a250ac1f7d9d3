import type { JobRow, JobStatus } from './types.js';

/** A `jobs` row as the drivers return it (PostgreSQL: Dates and bigint strings; SQLite: text). */
export interface DbJobRow {
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
export function fromRow<P, R>(r: DbJobRow): JobRow<P, R> {
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
