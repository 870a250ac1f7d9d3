import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../src/config.js';
import { createDb, migrateLatest } from '../../src/db/connection.js';
import { createLogger } from '../../src/logger.js';
import { JobQueue } from '../../src/jobs/queue.js';
import { JobWorker, typedHandler } from '../../src/jobs/worker.js';

/**
 * A job worker in a process of its own, for test/jobs.test.ts: the node's configuration from the
 * environment (DATABASE_URL, JOB_*), worker id TEST_WORKER_ID. Prints "ready" once it polls;
 * SIGTERM stops it gracefully (exit 0). Every run it finishes is a row in `job_runs`, which the
 * test creates, so "each job ran exactly once" is read from the database, not from the queue.
 *
 * Kinds: `record` ({ms}: takes ms, then records the run); `hold` ({holdOnAttempt}: on that
 * attempt reports progress 'holding' and waits until aborted or killed; otherwise records).
 */

function narrow(payload: unknown): Record<string, unknown> {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw new TypeError('payload must be an object');
  return payload as Record<string, unknown>;
}
const num = (v: unknown, name: string): number => {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new TypeError(`${name} must be a number`);
  return v;
};

const config = loadConfig();
const workerId = process.env.TEST_WORKER_ID ?? `child-${process.pid}`;
const db = createDb(config.database);
await migrateLatest(db);
const log = createLogger(process.env.RADIANT_TEST_LOG ?? 'silent', { stderr: true });

const record = async (jobId: number, attempt: number): Promise<{ worker: string }> => {
  await db('job_runs').insert({ job_id: jobId, worker_id: workerId, attempt });
  return { worker: workerId };
};

const worker = new JobWorker(
  new JobQueue(db, { defaultMaxAttempts: config.jobs.maxAttempts }),
  {
    record: typedHandler(
      (p) => ({ ms: num(narrow(p).ms, 'ms') }),
      async (job, ctx) => {
        await sleep(job.payload.ms, undefined, { signal: ctx.signal });
        return record(job.id, job.attempts);
      },
    ),
    hold: typedHandler(
      (p) => ({ holdOnAttempt: num(narrow(p).holdOnAttempt, 'holdOnAttempt') }),
      async (job, ctx) => {
        if (job.attempts === job.payload.holdOnAttempt) {
          await ctx.progress('holding', 10);
          await new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
        }
        return record(job.id, job.attempts);
      },
    ),
  },
  { workerId, ...config.jobs, log },
);
worker.start();
process.stdout.write('ready\n');

process.once('SIGTERM', () => {
  worker
    .stop(5000)
    .then(() => db.destroy())
    .then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`stop failed: ${String(err)}\n`);
        process.exit(1);
      },
    );
});
