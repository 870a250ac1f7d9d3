/**
 * The job queue's public shapes. Payloads and results are JSON in the database; the type
 * parameters say what the caller expects there, they are not checked (a handler that needs
 * certainty validates its payload, see `typedHandler`).
 */

import type { Backoff } from '../backoff.js';
import type { JobStatus } from '../catalog/jobs.js';

export type { Backoff };
/** A job's row shapes are the index's (src/catalog/jobs.ts); the queue's callers name them here. */
export type { JobProgress, JobRow, JobStatus } from '../catalog/jobs.js';

export const JOB_STATUSES: readonly JobStatus[] = ['pending', 'running', 'succeeded', 'failed', 'cancelled'];

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
