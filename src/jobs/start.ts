import type { Config } from '../config.js';
import type { Db } from '../db/connection.js';
import type { Core } from '../app.js';
import type { Logger } from '../logger.js';
import { jobHandlers } from './handlers.js';
import { JobQueue } from './queue.js';
import { JobWorker, type JobHandlers } from './worker.js';

/** The queue as this node's configuration sets it up (default max attempts). */
export function jobQueue(core: { db: Db; config: Config }): JobQueue {
  return new JobQueue(core.db, { defaultMaxAttempts: core.config.jobs.maxAttempts });
}

/** A started worker with the JOB_* settings; stop() it before closing the core. */
export function startJobWorker(core: Core, log: Logger, handlers: JobHandlers = jobHandlers(core)): JobWorker {
  const { pollMs, heartbeatMs, staleMs, concurrency } = core.config.jobs;
  const worker = new JobWorker(jobQueue(core), handlers, { pollMs, heartbeatMs, staleMs, concurrency, log });
  worker.start();
  return worker;
}

/**
 * The worker for the node's own light kinds (forward.send, metadata.prebuild): its own lane, so
 * an analysis running for minutes never holds up a forward. It looks at the queue every
 * FORWARD_POLL_MS unless the event bus wakes it sooner (jobs of other nodes sharing the database).
 */
export function startServiceWorker(core: { db: Db; config: Config }, log: Logger, handlers: JobHandlers): JobWorker {
  const { heartbeatMs, staleMs } = core.config.jobs;
  const pollMs = core.config.forwarding.pollMs;
  const worker = new JobWorker(jobQueue(core), handlers, { pollMs, heartbeatMs, staleMs, concurrency: SERVICE_CONCURRENCY, log });
  worker.start();
  return worker;
}

/** Forwards to different destinations and prebuilds of different series run side by side. */
const SERVICE_CONCURRENCY = 4;
