import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { loadConfig } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import { createDb, migrateLatest, type Db } from '../src/db/connection.js';
import { JobQueue, STALE_ERROR } from '../src/jobs/queue.js';
import { JobWorker, typedHandler, type JobHandlers, type JobWorkerOptions } from '../src/jobs/worker.js';
import { JobAbortedError, JobError } from '../src/jobs/errors.js';
import type { JobRow, JobStatus } from '../src/jobs/types.js';
import { backoffDelay } from '../src/backoff.js';
import { tempDir } from './helpers/node.js';
import { onBothDatabases } from './helpers/postgres.js';

/**
 * The job queue and its worker on a real SQLite file and a real PostgreSQL; on PostgreSQL also
 * worker processes sharing one database (dist/test/helpers/job-worker-child.js). Every test uses
 * its own job kinds, so workers of one test never take another test's jobs.
 */

const here = path.dirname(fileURLToPath(import.meta.url));
const CHILD = path.join(here, 'helpers', 'job-worker-child.js');
const CLI = path.resolve(here, '..', 'src', 'cli.js');

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Resolves when the signal aborts, with its reason. */
const aborted = (signal: AbortSignal): Promise<unknown> =>
  new Promise((resolve) => (signal.aborted ? resolve(signal.reason) : signal.addEventListener('abort', () => resolve(signal.reason))));

const fast: JobWorkerOptions = { pollMs: 20, heartbeatMs: 40, staleMs: 2_000, backoff: { baseMs: 20, maxMs: 1_000 } };

describe('job queue: back-off and configuration', () => {
  it('doubles the delay per attempt up to the cap', () => {
    const b = { baseMs: 1000, maxMs: 5000 };
    expect([1, 2, 3, 4, 5].map((a) => backoffDelay(b, a))).to.deep.equal([1000, 2000, 4000, 5000, 5000]);
  });
  it('reads the JOB_* settings and refuses a stale threshold under two heartbeats', () => {
    const c = loadConfig(
      { JOB_POLL_MS: '250', JOB_HEARTBEAT_MS: '1000', JOB_STALE_MS: '2000', JOB_CONCURRENCY: '4', JOB_MAX_ATTEMPTS: '7' },
      '/tmp',
    );
    expect(c.jobs).to.deep.equal({
      pollMs: 250,
      heartbeatMs: 1000,
      staleMs: 2000,
      concurrency: 4,
      maxAttempts: 7,
      inServe: true,
      retentionHours: 24,
    });
    expect(loadConfig({ JOB_WORKER_IN_SERVE: 'off' }, '/tmp').jobs.inServe).to.equal(false);
    expect(() => loadConfig({ JOB_HEARTBEAT_MS: '1000', JOB_STALE_MS: '1500' }, '/tmp')).to.throw(ConfigError, /JOB_STALE_MS/);
    expect(() => loadConfig({ JOB_CONCURRENCY: '0' }, '/tmp')).to.throw(ConfigError, /JOB_CONCURRENCY/);
  });
});

function describeQueue(name: string, env: () => Promise<Record<string, string>>): void {
  describe(`job queue and worker (${name})`, function () {
    this.timeout(30_000);
    let dir: string;
    let db: Db;
    let q: JobQueue;
    const workers: JobWorker[] = [];
    const worker = (handlers: JobHandlers, opts: JobWorkerOptions = {}): JobWorker => {
      const w = new JobWorker(q, handlers, { ...fast, ...opts });
      workers.push(w);
      w.start();
      return w;
    };
    const statusOf = async (id: number): Promise<JobStatus | undefined> => (await q.get(id))?.status;
    const settled = (id: number, status: JobStatus) =>
      waitFor(`job ${id} ${status}`, async () => ((await q.get(id))?.status === status ? q.get(id) : undefined));

    before(async () => {
      dir = await tempDir('jobs');
      db = createDb(loadConfig({ DATA_DIR: dir, ...(await env()) }, dir).database);
      await migrateLatest(db);
      q = new JobQueue(db);
    });
    afterEach(async () => {
      await Promise.all(workers.splice(0).map((w) => w.stop(2_000)));
    });
    after(async () => {
      await db?.destroy();
      await fsp.rm(dir, { recursive: true, force: true });
    });

    it('enqueues, hands a job to one claimant only, and completes it', async () => {
      const a = await q.enqueue({ kind: 'basic', payload: { n: 1 } });
      const later = await q.enqueue({ kind: 'basic', payload: { n: 2 }, runAt: new Date(Date.now() + 60_000) });
      const other = await q.enqueue({ kind: 'basic-other', payload: {} });
      expect(a).to.include({ kind: 'basic', status: 'pending', attempts: 0, maxAttempts: 3, lockedBy: null, result: null });
      expect(a.payload).to.deep.equal({ n: 1 });

      const c = await q.claim('w1', ['basic']);
      expect(c).to.include({ id: a.id, status: 'running', attempts: 1, lockedBy: 'w1' });
      expect(c!.heartbeatAt).to.be.a('string');
      // the other one is not due, and a kind not asked for is never handed out
      expect(await q.claim('w2', ['basic'])).to.equal(undefined);
      expect((await q.claim('w2', ['basic'], new Date(Date.now() + 61_000)))?.id).to.equal(later.id);
      expect(await statusOf(other.id)).to.equal('pending');

      expect(await q.complete(a.id, 'w2', { by: 'w2' }), 'not its job').to.equal(false);
      expect(await q.complete(a.id, 'w1', { ok: true, score: 0.5 })).to.equal(true);
      const done = await q.get<{ n: number }, { ok: boolean; score: number }>(a.id);
      expect(done).to.include({ status: 'succeeded', error: null });
      expect(done!.result).to.deep.equal({ ok: true, score: 0.5 });
      expect(done!.finishedAt).to.be.a('string');
      expect(await q.complete(a.id, 'w1', {}), 'completed twice').to.equal(false);

      expect((await q.list({ kind: 'basic' })).map((j) => j.id)).to.deep.equal([later.id, a.id]);
      expect((await q.list({ kind: 'basic', status: 'succeeded' })).map((j) => j.id)).to.deep.equal([a.id]);
      expect(await q.list({ kind: 'basic', limit: 1 })).to.have.length(1);
    });

    it('a dedupe key supersedes the pending job, not a running one', async () => {
      const first = await q.enqueue({ kind: 'dedupe', payload: { v: 1 }, dedupeKey: 'study-1' });
      const elsewhere = await q.enqueue({ kind: 'dedupe-other', payload: { v: 9 }, dedupeKey: 'study-2' });
      const second = await q.enqueue({ kind: 'dedupe', payload: { v: 2 }, dedupeKey: 'study-1' });
      expect(await q.get(first.id)).to.include({ status: 'cancelled', error: `superseded by job ${second.id}` });
      expect(await q.get(second.id)).to.include({ status: 'pending', dedupeKey: 'study-1' });
      expect(await statusOf(elsewhere.id)).to.equal('pending');

      const running = await q.claim('w1', ['dedupe']);
      expect(running?.id).to.equal(second.id);
      const third = await q.enqueue({ kind: 'dedupe', payload: { v: 3 }, dedupeKey: 'study-1' });
      expect(await statusOf(second.id)).to.equal('running');
      expect(await statusOf(third.id)).to.equal('pending');

      // enqueues of one key at the same time: the last one wins, the others are superseded
      const burst = await Promise.all([4, 5, 6, 7, 8].map((v) => q.enqueue({ kind: 'dedupe', payload: { v }, dedupeKey: 'study-3' })));
      const states = await Promise.all(burst.map((j) => q.get(j.id)));
      expect(
        states.filter((j) => j?.status === 'pending'),
        'one pending job per key',
      ).to.have.length(1);
      expect(states.filter((j) => j?.status === 'cancelled' && /^superseded by job \d+$/.test(j.error ?? ''))).to.have.length(4);
    });

    it('a job that would go back to pending yields to a newer pending job with its key', async () => {
      const kind = 'dedupe-yield';
      const claim = async (key: string, worker: string) => {
        const j = await q.enqueue({ kind, payload: {}, dedupeKey: key });
        expect((await q.claim(worker, [kind]))?.id).to.equal(j.id);
        return j;
      };
      // a retryable failure
      const a = await claim('k-fail', 'w1');
      const b = await q.enqueue({ kind: 'dedupe-yield-idle', payload: {}, dedupeKey: 'k-fail' });
      expect(await q.fail(a.id, 'w1', 'engine down', { retryable: true })).to.equal('superseded');
      expect(await q.get(a.id)).to.include({ status: 'cancelled', error: `engine down; superseded by job ${b.id}` });
      // a graceful stop
      const c = await claim('k-release', 'w1');
      const d = await q.enqueue({ kind: 'dedupe-yield-idle', payload: {}, dedupeKey: 'k-release' });
      expect(await q.release(c.id, 'w1', 'interrupted')).to.equal(true);
      expect(await q.get(c.id)).to.include({ status: 'cancelled', error: `interrupted; superseded by job ${d.id}` });
      // a lost worker, beside a pending job of its key
      const e = await claim('k-stale', 'dead-1');
      const f = await q.enqueue({ kind: 'dedupe-yield-idle', payload: {}, dedupeKey: 'k-stale' });
      // two lost workers running jobs of one key: the newer goes back, the older yields to it
      const g = await claim('k-stale-2', 'dead-2');
      const h = await claim('k-stale-2', 'dead-3');
      const r = await q.reclaimStale(1_000, new Date(Date.now() + 5_000));
      expect(r.superseded).to.be.at.least(2);
      expect(await q.get(e.id)).to.include({ status: 'cancelled', error: `${STALE_ERROR}; superseded by job ${f.id}` });
      expect(await q.get(f.id)).to.include({ status: 'pending' });
      expect(await q.get(h.id)).to.include({ status: 'pending', error: STALE_ERROR, attempts: 1 });
      expect(await q.get(g.id)).to.include({ status: 'cancelled', error: `${STALE_ERROR}; superseded by job ${h.id}` });
    });

    it('retries a retryable failure after an exponential back-off', async () => {
      const now = new Date('2030-01-01T00:00:00.000Z');
      const at = (ms: number) => new Date(now.getTime() + ms);
      const backoff = { baseMs: 1000, maxMs: 3000 };
      const job = await q.enqueue({ kind: 'backoff', payload: {}, maxAttempts: 5, runAt: now });
      const expected = [1000, 2000, 3000];
      let t = 0;
      for (const [i, delay] of expected.entries()) {
        expect((await q.claim('w1', ['backoff'], at(t)))?.attempts).to.equal(i + 1);
        expect(await q.fail(job.id, 'w1', `transient ${i + 1}`, { retryable: true, backoff }, at(t))).to.equal('retrying');
        const j = await q.get(job.id);
        expect(j).to.include({ status: 'pending', error: `transient ${i + 1}`, lockedBy: null });
        expect(j!.nextRunAt).to.equal(at(t + delay).toISOString());
        expect(await q.claim('w1', ['backoff'], at(t + delay - 1)), 'not before its time').to.equal(undefined);
        t += delay;
      }
      expect((await q.claim('w1', ['backoff'], at(t)))?.attempts).to.equal(4);
      expect(await q.complete(job.id, 'w1', 'done')).to.equal(true);
      expect(await q.get(job.id)).to.include({ status: 'succeeded', result: 'done', error: null, attempts: 4 });
    });

    it('a worker retries a failing handler with back-off until it succeeds', async () => {
      const starts: number[] = [];
      worker(
        {
          flaky: async (job) => {
            starts.push(Date.now());
            if (job.attempts < 3) throw new JobError(`engine busy (attempt ${job.attempts})`, { retryable: true });
            return { attempts: job.attempts };
          },
        },
        { backoff: { baseMs: 150, maxMs: 5_000 } },
      );
      const job = await q.enqueue({ kind: 'flaky', payload: {}, maxAttempts: 5 });
      const done = await settled(job.id, 'succeeded');
      expect(done).to.include({ attempts: 3, error: null });
      expect(done!.result).to.deep.equal({ attempts: 3 });
      expect(starts).to.have.length(3);
      expect(starts[1]! - starts[0]!, 'first back-off').to.be.at.least(145);
      expect(starts[2]! - starts[1]!, 'second back-off, doubled').to.be.at.least(295);
    });

    it('marks a job failed with its last reason once attempts run out, at once when not retryable', async () => {
      worker({
        boom: async (job) => {
          throw new Error(`boom on attempt ${job.attempts}`);
        },
        refuse: async () => {
          throw new JobError('the study has no images', { retryable: false });
        },
        typed: typedHandler(
          (p) => {
            if (typeof p !== 'object' || p === null || typeof (p as { study?: unknown }).study !== 'string')
              throw new TypeError('study missing');
            return p as { study: string };
          },
          async (job) => job.payload.study,
        ),
      });
      const boom = await q.enqueue({ kind: 'boom', payload: {}, maxAttempts: 2 });
      const refuse = await q.enqueue({ kind: 'refuse', payload: {}, maxAttempts: 5 });
      const bad = await q.enqueue({ kind: 'typed', payload: { nope: 1 }, maxAttempts: 5 });
      const good = await q.enqueue({ kind: 'typed', payload: { study: '1.2.3' } });
      expect(await settled(boom.id, 'failed')).to.include({ attempts: 2, error: 'boom on attempt 2' });
      expect(await settled(refuse.id, 'failed')).to.include({ attempts: 1, error: 'the study has no images' });
      const invalid = await settled(bad.id, 'failed');
      expect(invalid).to.include({ attempts: 1 });
      expect(invalid!.error).to.match(/invalid typed payload: study missing/);
      expect(await settled(good.id, 'succeeded')).to.include({ result: '1.2.3' });
    });

    it('cancels a pending job at once, and a running one at its next heartbeat (the handler sees the abort)', async () => {
      const pending = await q.enqueue({ kind: 'cancel-pending', payload: {} });
      expect(await q.cancel(pending.id)).to.equal(true);
      expect(await q.get(pending.id)).to.include({ status: 'cancelled', error: 'cancelled' });
      expect(await q.claim('w1', ['cancel-pending'])).to.equal(undefined);
      expect(await q.cancel(pending.id), 'already finished').to.equal(false);

      const started = deferred();
      let seen: unknown;
      const w = worker({
        'cancel-running': async (_job, ctx) => {
          started.resolve();
          seen = await aborted(ctx.signal);
          throw seen;
        },
      });
      const job = await q.enqueue({ kind: 'cancel-running', payload: {} });
      await started.promise;
      expect(await q.cancel(job.id, 'cancelled by user 7')).to.equal(true);
      await waitFor('the handler to see the abort', async () => seen !== undefined);
      expect(seen).to.be.instanceOf(JobAbortedError);
      expect((seen as JobAbortedError).reason).to.equal('cancelled');
      await waitFor('the worker to let go', async () => w.running.length === 0);
      // not a failure, and not run again
      await new Promise((r) => setTimeout(r, 150));
      expect(await q.get(job.id)).to.include({ status: 'cancelled', error: 'cancelled by user 7', attempts: 1 });
    });

    it('reports progress through get()', async () => {
      const gate = deferred();
      worker({
        progress: async (_job, ctx) => {
          await ctx.progress('rendering', 40);
          await gate.promise;
          await ctx.progress('inference', 250);
          return 'ok';
        },
      });
      const job = await q.enqueue({ kind: 'progress', payload: {} });
      const during = await waitFor('progress', async () => {
        const j = await q.get(job.id);
        return j?.progress ? j : undefined;
      });
      expect(during.progress).to.deep.equal({ stage: 'rendering', percent: 40 });
      expect(during.status).to.equal('running');
      gate.resolve();
      const done = await settled(job.id, 'succeeded');
      expect(done!.progress, 'percent clamped to 100').to.deep.equal({ stage: 'inference', percent: 100 });
    });

    it('a job whose worker stopped heartbeating is reclaimed and run by another worker', async () => {
      const job = await q.enqueue({ kind: 'stale', payload: {} });
      expect((await q.claim('dead-worker', ['stale']))?.id).to.equal(job.id);
      const b = worker({ stale: async (j, ctx) => ({ attempt: j.attempts, by: ctx.workerId }) }, { staleMs: 300, heartbeatMs: 50 });
      const done = await settled(job.id, 'succeeded');
      expect(done).to.include({ attempts: 2, lockedBy: b.workerId });
      expect(done!.result).to.deep.equal({ attempt: 2, by: b.workerId });
      expect(await q.heartbeat(job.id, 'dead-worker')).to.equal('lost');
      expect(await q.complete(job.id, 'dead-worker', 'late')).to.equal(false);
      expect((await q.get(job.id))!.result).to.deep.equal({ attempt: 2, by: b.workerId });
    });

    it('a stale job with no attempts left fails with the reason, and a slow worker learns it lost the job', async () => {
      const last = await q.enqueue({ kind: 'stale-last', payload: {}, maxAttempts: 1 });
      await q.claim('dead-worker', ['stale-last']);
      const r = await q.reclaimStale(1_000, new Date(Date.now() + 5_000));
      expect(r.failed).to.be.at.least(1);
      expect(await q.get(last.id)).to.include({ status: 'failed', error: STALE_ERROR, attempts: 1 });

      // A live worker whose job was reclaimed under it (as if its heartbeats had stalled).
      let seen: unknown;
      worker(
        {
          slow: async (j, ctx) => {
            if (j.attempts === 1) {
              seen = await aborted(ctx.signal);
              throw seen;
            }
            return 'second run';
          },
        },
        { staleMs: 10_000 },
      );
      const job = await q.enqueue({ kind: 'slow', payload: {} });
      await waitFor('it to run', async () => (await statusOf(job.id)) === 'running');
      // (the clock given is also when it becomes due again: keep it close)
      await q.reclaimStale(1_000, new Date(Date.now() + 1_100));
      await waitFor('the handler to see the abort', async () => seen !== undefined);
      expect((seen as JobAbortedError).reason).to.equal('lost');
      expect(await settled(job.id, 'succeeded')).to.include({ attempts: 2, result: 'second run' });
    });

    it('stop() waits for running handlers, then aborts them and gives their jobs back', async () => {
      const w1 = worker({ short: async () => new Promise((r) => setTimeout(() => r('finished'), 150)) });
      const short = await q.enqueue({ kind: 'short', payload: {} });
      await waitFor('it to run', async () => w1.running.includes(short.id));
      await w1.stop(5_000);
      expect(await q.get(short.id)).to.include({ status: 'succeeded', result: 'finished' });

      let seen: unknown;
      const w2 = worker({ stuck: async (_j, ctx) => (seen = await aborted(ctx.signal)) });
      const stuck = await q.enqueue({ kind: 'stuck', payload: {} });
      await waitFor('it to run', async () => w2.running.includes(stuck.id));
      await w2.stop(100);
      expect((seen as JobAbortedError).reason).to.equal('shutdown');
      // back in the queue at once, the interrupted attempt not counted
      expect(await q.get(stuck.id)).to.include({ status: 'pending', attempts: 0, error: 'interrupted: worker stopped', lockedBy: null });
      expect((await q.claim('w9', ['stuck']))?.id).to.equal(stuck.id);
    });

    it('wake() runs a fresh job without waiting for the next poll', async () => {
      const w = worker({ woken: async () => 'woken' }, { pollMs: 60_000 });
      await new Promise((r) => setTimeout(r, 100)); // past its first poll
      const job = await q.enqueue({ kind: 'woken', payload: {} });
      await new Promise((r) => setTimeout(r, 100));
      expect(await statusOf(job.id), 'no poll for a minute').to.equal('pending');
      w.wake();
      expect(await settled(job.id, 'succeeded')).to.include({ result: 'woken' });
    });

    it('prune() deletes old succeeded and cancelled jobs of the given kinds; a worker with a retention does it as housekeeping', async () => {
      const finished = async (kind: string, status: 'succeeded' | 'cancelled' | 'failed', hoursAgo: number): Promise<number> => {
        const job = await q.enqueue({ kind, payload: {} });
        const at = new Date(Date.now() - hoursAgo * 3_600_000).toISOString();
        await db('jobs').where({ id: job.id }).update({ status, finished_at: at, updated_at: at });
        return job.id;
      };
      const oldDone = await finished('trigger', 'succeeded', 30);
      const oldCancelled = await finished('trigger', 'cancelled', 30);
      const oldFailed = await finished('trigger', 'failed', 30);
      const recent = await finished('trigger', 'succeeded', 1);
      const otherKind = await finished('kept-kind', 'succeeded', 30);
      const pending = await q.enqueue({ kind: 'trigger', payload: {} });
      expect(await q.prune(['trigger'], new Date(Date.now() - 24 * 3_600_000))).to.equal(2);
      const left = async () => (await db('jobs').whereIn('kind', ['trigger', 'kept-kind']).pluck('id')).map(Number).sort((a, b) => a - b);
      expect(await left()).to.deep.equal([oldFailed, recent, otherKind, pending.id]);
      expect([oldDone, oldCancelled].every((id) => id < pending.id)).to.equal(true);

      await db('jobs')
        .where({ id: pending.id })
        .update({ status: 'cancelled', finished_at: new Date(Date.now() - 2 * 3_600_000).toISOString() });
      worker({ trigger: async () => null }, { retention: { kinds: ['trigger'], ms: 90 * 60_000 } });
      await waitFor("the worker's housekeeping", async () => (await q.get(pending.id)) === undefined);
      expect(await left()).to.deep.equal([oldFailed, recent, otherKind]);
    });

    it('runs up to `concurrency` jobs at once', async () => {
      let now = 0;
      let peak = 0;
      worker(
        {
          parallel: async () => {
            peak = Math.max(peak, ++now);
            await new Promise((r) => setTimeout(r, 60));
            now--;
            return null;
          },
        },
        { concurrency: 3 },
      );
      const jobs = await Promise.all(Array.from({ length: 9 }, () => q.enqueue({ kind: 'parallel', payload: {} })));
      for (const j of jobs) await settled(j.id, 'succeeded');
      expect(peak).to.equal(3);
    });
  });
}

onBothDatabases(describeQueue, 'jobs');

interface Child {
  proc: ChildProcess;
  id: string;
  output: () => string;
  exited: Promise<number | null>;
}

async function startChild(id: string, env: Record<string, string>): Promise<Child> {
  const proc = spawn(process.execPath, [CHILD], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', TEST_WORKER_ID: id, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const child = { proc, id, output: () => out, exited };
  await Promise.race([
    waitFor(`worker ${id} ready`, async () => out.includes('ready\n')),
    exited.then((code) => {
      throw new Error(`worker ${id} exited with ${code}: ${out}`);
    }),
  ]);
  return child;
}

/**
 * Specified for PostgreSQL (nodes sharing one database); run on SQLite too, where it stands for
 * `radiant serve` and `radiant worker` sharing one file.
 */
function describeProcesses(name: string, dbEnv: () => Promise<Record<string, string>>): void {
  describe(`job workers in separate processes (${name})`, function () {
    this.timeout(60_000);
    let db: Db;
    let q: JobQueue;
    let env: Record<string, string>;
    let dir: string;
    const children: Child[] = [];

    before(async () => {
      dir = await tempDir('jobs-procs');
      env = { ...(await dbEnv()), DATA_DIR: dir, JOB_POLL_MS: '20', JOB_HEARTBEAT_MS: '100', JOB_STALE_MS: '800' };
      db = createDb(loadConfig(env, dir).database);
      await migrateLatest(db);
      await db.schema.createTable('job_runs', (t) => {
        t.increments('id');
        t.bigInteger('job_id').notNullable();
        t.string('worker_id', 64).notNullable();
        t.integer('attempt').notNullable();
      });
      q = new JobQueue(db);
    });
    afterEach(() => {
      for (const c of children.splice(0)) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    });
    after(async () => {
      await db?.destroy();
      await fsp.rm(dir, { recursive: true, force: true });
    });

    const runsOf = async (kind: string) =>
      (await db('job_runs')
        .join('jobs', 'jobs.id', 'job_runs.job_id')
        .where('jobs.kind', kind)
        .select('job_runs.job_id', 'job_runs.worker_id', 'job_runs.attempt')) as Array<{
        job_id: number | string;
        worker_id: string;
        attempt: number;
      }>;

    it('two worker processes drain 200 jobs, each job run exactly once', async () => {
      const a = await startChild('A', { ...env, JOB_CONCURRENCY: '2' });
      const b = await startChild('B', { ...env, JOB_CONCURRENCY: '2' });
      children.push(a, b);
      const jobs: JobRow[] = [];
      for (let i = 0; i < 200; i++) jobs.push(await q.enqueue({ kind: 'record', payload: { ms: 5 } }));
      await waitFor(
        'all 200 jobs to succeed',
        async () =>
          Number(
            ((await db('jobs').where({ kind: 'record', status: 'succeeded' }).count({ n: '*' })) as Array<{ n: number | string }>)[0]!.n,
          ) === 200,
        45_000,
      );
      const runs = await runsOf('record');
      expect(runs, 'one run recorded per job').to.have.length(200);
      const perJob = new Map<number, number>();
      for (const r of runs) perJob.set(Number(r.job_id), (perJob.get(Number(r.job_id)) ?? 0) + 1);
      expect([...perJob.keys()].sort((x, y) => x - y)).to.deep.equal(jobs.map((j) => j.id));
      expect([...perJob.values()].every((n) => n === 1)).to.equal(true);
      const byWorker = { A: runs.filter((r) => r.worker_id === 'A').length, B: runs.filter((r) => r.worker_id === 'B').length };
      expect(byWorker.A + byWorker.B).to.equal(200);
      expect(byWorker.A, JSON.stringify(byWorker)).to.be.greaterThan(0);
      expect(byWorker.B, JSON.stringify(byWorker)).to.be.greaterThan(0);
      // the queue agrees with the runs table about who ran what
      for (const j of await q.list({ kind: 'record', limit: 1000 })) {
        expect(j.attempts).to.equal(1);
        expect((j.result as { worker: string }).worker).to.equal(j.lockedBy);
      }
      a.proc.kill('SIGTERM');
      b.proc.kill('SIGTERM');
      expect(await a.exited, a.output()).to.equal(0);
      expect(await b.exited, b.output()).to.equal(0);
    });

    it('a worker killed mid-job: another process reclaims the job and finishes it', async () => {
      const a = await startChild('A2', env);
      children.push(a);
      const job = await q.enqueue({ kind: 'hold', payload: { holdOnAttempt: 1 } });
      await waitFor('A2 to hold the job', async () => {
        const j = await q.get(job.id);
        return j?.lockedBy === 'A2' && j.progress?.stage === 'holding';
      });
      a.proc.kill('SIGKILL');
      await a.exited;
      const b = await startChild('B2', env);
      children.push(b);
      const done = await waitFor('the job to succeed', async () => {
        const j = await q.get(job.id);
        return j?.status === 'succeeded' ? j : undefined;
      });
      expect(done).to.include({ attempts: 2, lockedBy: 'B2' });
      const runs = await runsOf('hold');
      expect(runs.map((r) => ({ job: Number(r.job_id), worker: r.worker_id, attempt: r.attempt }))).to.deep.equal([
        { job: job.id, worker: 'B2', attempt: 2 },
      ]);
      b.proc.kill('SIGTERM');
      expect(await b.exited, b.output()).to.equal(0);
    });
  });
}

onBothDatabases(describeProcesses, 'jobs_procs');

describe('radiant worker (child process, SQLite)', function () {
  this.timeout(60_000);

  it('migrates, runs until SIGTERM and leaves the node spool directory alone', async () => {
    const dir = await tempDir('jobs-cli');
    try {
      // An instance being received by `radiant serve` on the same data: its spool file must survive.
      const spool = path.join(dir, 'storage', '.tmp', 'incoming');
      await fsp.mkdir(spool, { recursive: true });
      await fsp.writeFile(path.join(spool, 'in-flight.part'), 'x');
      // And a blob serve is writing into local storage.
      const blobTemp = path.join(dir, 'storage', '.tmp', 'put-in-flight.part');
      await fsp.writeFile(blobTemp, 'y');
      const proc = spawn(process.execPath, [CLI, 'worker'], {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', DATA_DIR: dir, JOB_POLL_MS: '50', LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
      proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
      await waitFor('job worker started', async () => out.includes('job worker started') || proc.exitCode !== null, 30_000);
      expect(out).to.include('job worker started');
      const workerSpool = path.join(dir, 'storage', '.tmp', `worker-${proc.pid}`);
      expect(fs.existsSync(workerSpool), 'its own spool directory').to.equal(true);
      expect(fs.existsSync(path.join(spool, 'in-flight.part')), 'serve spool untouched').to.equal(true);
      expect(fs.existsSync(blobTemp), "serve's blob upload untouched").to.equal(true);

      const db = createDb({ client: 'sqlite', filename: path.join(dir, 'radiant.sqlite') });
      try {
        const job = await new JobQueue(db).enqueue({ kind: 'nobody-handles-this', payload: {} });
        await new Promise((r) => setTimeout(r, 200));
        expect((await new JobQueue(db).get(job.id))?.status, 'no handler: not claimed').to.equal('pending');
      } finally {
        await db.destroy();
      }
      proc.kill('SIGTERM');
      expect(await exited, out).to.equal(0);
      expect(fs.existsSync(workerSpool), 'spool removed on exit').to.equal(false);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});
