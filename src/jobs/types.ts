/**
 * The job queue's public shapes. Payloads and results are JSON in the database; the type
 * parameters say what the caller expects there, they are not checked (a handler that needs
 * certainty validates its payload, see `typedHandler`).
 */

export type JobStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export const JOB_STATUSES: readonly JobStatus[] = ['pending', 'running', 'succeeded', 'failed', 'cancelled'];

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

export interface EnqueueInput<P> {
  kind: string;
  payload: P;
  /** A pending job with this key is superseded (cancelled) by the new one. */
  dedupeKey?: string;
  /** Not run before this time (default: now). */
  runAt?: Date;
  maxAttempts?: number;
}

export interface Backoff {
  /** Delay after the first failed attempt; doubles with each further one. */
  baseMs: number;
  /** Upper bound of the delay. */
  maxMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { baseMs: 5_000, maxMs: 10 * 60_000 };

/** The delay before retry number `attempts` (1 = after the first failure). */
export function backoffDelay(b: Backoff, attempts: number): number {
  return Math.min(b.maxMs, b.baseMs * 2 ** Math.max(0, attempts - 1));
}

export type HeartbeatOutcome = 'ok' | 'cancelled' | 'lost';
