import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config.js';
import type { Db } from '../db/connection.js';
import { openCore, type Core } from '../app.js';
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
 * `radiant worker`: the node's index and storage, no listeners, a job worker until SIGINT or
 * SIGTERM. It may run beside `radiant serve` on the same data, so it gets its own spool
 * directory: openCore empties the one it is given, and serve's is in use.
 */
export async function runWorkerProcess(config: Config, log: Logger): Promise<void> {
  const tempDir = path.join(path.dirname(config.tempDir), `worker-${process.pid}`);
  const core = await openCore({ ...config, tempDir }, log);
  const worker = startJobWorker(core, log);
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  log.info({ signal }, 'shutting down');
  try {
    await worker.stop();
  } finally {
    await core.close();
    await fsp.rm(tempDir, { recursive: true, force: true });
  }
}
