import type { Config } from '../config.js';
import type { Db } from '../db/connection.js';
import type { Logger } from '../logger.js';
import { JobQueue } from './queue.js';
import { JobWorker, type JobHandlers, type JobWorkerOptions } from './worker.js';

/** The queue as this node's configuration sets it up (default max attempts). */
export function jobQueue(core: { db: Db; config: Config }): JobQueue {
  return new JobQueue(core.db, { defaultMaxAttempts: core.config.jobs.maxAttempts });
}

/** Finished jobs of `kinds` are deleted JOB_RETENTION_HOURS after they finished (0: kept). */
function retention(config: Config, kinds: readonly string[]): JobWorkerOptions['retention'] {
  const ms = config.jobs.retentionHours * 3_600_000;
  return ms > 0 && kinds.length > 0 ? { kinds, ms } : undefined;
}

/**
 * A started worker with the JOB_* settings (the analysis lane); stop() it before closing the
 * core. `pruned`: kinds of `handlers` whose finished rows are only a record that a trigger fired
 * (study.stable), unlike an analysis, whose job row its analysis names.
 */
export function startJobWorker(
  core: { db: Db; config: Config },
  log: Logger,
  handlers: JobHandlers,
  pruned: readonly string[] = [],
): JobWorker {
  const { pollMs, heartbeatMs, staleMs, concurrency } = core.config.jobs;
  const kinds = pruned.filter((k) => Object.hasOwn(handlers, k));
  const opts: JobWorkerOptions = { pollMs, heartbeatMs, staleMs, concurrency, log, retention: retention(core.config, kinds) };
  const worker = new JobWorker(jobQueue(core), handlers, opts);
  worker.start();
  return worker;
}

/**
 * The worker for the node's own light kinds (forward.send, metadata.prebuild): its own lane, so
 * an analysis running for minutes never holds up a forward. It looks at the queue every
 * FORWARD_POLL_MS unless the event bus wakes it sooner (jobs of other nodes sharing the database).
 * Its kinds' finished rows say nothing once done (the forward records keep what was sent): they
 * are deleted after JOB_RETENTION_HOURS.
 */
export function startServiceWorker(core: { db: Db; config: Config }, log: Logger, handlers: JobHandlers): JobWorker {
  const { heartbeatMs, staleMs } = core.config.jobs;
  const pollMs = core.config.forwarding.pollMs;
  const keep = retention(core.config, Object.keys(handlers));
  const opts: JobWorkerOptions = { pollMs, heartbeatMs, staleMs, concurrency: SERVICE_CONCURRENCY, log, retention: keep };
  const worker = new JobWorker(jobQueue(core), handlers, opts);
  worker.start();
  return worker;
}

/** Forwards to different destinations and prebuilds of different series run side by side. */
const SERVICE_CONCURRENCY = 4;
