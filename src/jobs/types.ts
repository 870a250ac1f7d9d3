/**
 * The job queue's public shapes. Payloads and results are JSON in the database; the type
 * parameters say what the caller expects there, they are not checked (a handler that needs
 * certainty validates its payload, see `typedHandler`).
 */

import type { Backoff } from '../backoff.js';

export type { Backoff };

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

/** Job retries: 5 s doubling up to 10 min. */
export const DEFAULT_BACKOFF: Backoff = { baseMs: 5_000, maxMs: 10 * 60_000 };

export type HeartbeatOutcome = 'ok' | 'cancelled' | 'lost';
