/**
 * Scale-out without containers (issue 21, item 2): two `radiant serve` nodes and `radiant worker`
 * processes on one real PostgreSQL and one S3 bucket (s3rver), each process with its own DATA_DIR
 * as if on its own machine. C-STORE to node A is seen at once by QIDO-RS/WADO-RS on node B; an
 * analysis queued on A runs exactly once on the worker (the stand-in OpenAI endpoint counts the
 * calls); a worker SIGKILLed while the stand-in holds its answer has the job handed back after
 * JOB_STALE_MS and a second worker completes it once; migrations run once when both nodes start
 * together. Also: concurrent `radiant migrate` on a fresh PostgreSQL and SQLite database.
 */
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { expect } from 'chai';
import fsp from 'node:fs/promises';
import type http from 'node:http';
import path from 'node:path';
import pg from 'pg';
import { makeCtSeries } from '../fixtures/generate.js';
import { storescu } from './helpers/dcmtk.js';
import { fakeEndpoint, okReply } from './helpers/fake-openai.js';
import { freePort, tempDir } from './helpers/node.js';
import { spawnRadiant, type RadiantProcess } from './helpers/node-process.js';
import { freshPostgresUrl } from './helpers/postgres.js';
import { startS3rver, type RunningS3rver } from './helpers/s3rver.js';
import { until } from './helpers/until.js';

const answer = {
  findings: [
    {
      description: 'Small nodule',
      anatomical_location: 'left upper lobe',
      laterality: 'left',
      category: 'abnormal',
      severity: 'mild',
      confidence: 0.7,
      image_numbers: [1],
      recommendation: '',
      region: { image_number: 1, box_2d: [100, 100, 300, 300] },
    },
  ],
  measurements: [],
  impression: 'A small nodule.',
  comparison_with_prior: '',
  technical_limitations: '',
};

const STALE_MS = 4000;

async function query<T>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
}

describe('Scale-out: two nodes and a worker as processes on one PostgreSQL and one S3 bucket', function () {
  this.timeout(300_000);
  let s3: RunningS3rver;
  let fake: Awaited<ReturnType<typeof fakeEndpoint>>;
  let dbUrl: string;
  let common: Record<string, string>;
  const procs: RadiantProcess[] = [];
  let nodeA: { proc: RadiantProcess; http: string; dicomPort: number };
  let nodeB: { proc: RadiantProcess; http: string; dicomPort: number };
  let token: string;
  let worker1: RadiantProcess;
  let dir: string;
  // The stand-in endpoint: every call counted; while `hold` is set a call gets no answer.
  let calls = 0;
  let hold = false;
  let held: (() => void) | undefined;
  const heldCall = () => new Promise<void>((r) => (held = r));
  const files = makeCtSeries({ seed: 'scale-out', slices: 6, size: 64, studyDate: '20240301' });
  const study = files[0]!.studyInstanceUid;

  const spawn = (args: string[], name: string, env: Record<string, string> = {}) => {
    const p = spawnRadiant(args, { ...common, DATA_DIR: path.join(dir, name), ...env });
    procs.push(p);
    return p;
  };
  const startServe = async (name: string) => {
    const dicomPort = await freePort();
    const proc = spawn(['serve'], name, { DICOM_PORT: String(dicomPort), HTTP_PORT: '0' });
    const line = await proc.logLine('HTTP listener started', 120_000);
    await proc.logLine('RadiantAI node ready', 120_000);
    return { proc, http: `http://127.0.0.1:${Number(line.port)}`, dicomPort };
  };
  const get = async (base: string, p: string, accept = 'application/json') =>
    fetch(`${base}${p}`, { headers: { authorization: `Bearer ${token}`, accept } });
  const analysisOn = async (base: string, id: number) =>
    (await (await get(base, `/api/analysis/${id}`)).json()) as { status: string; error: string | null };

  before(async () => {
    dir = await tempDir('scale-out');
    s3 = await startS3rver();
    const client = new S3Client({
      endpoint: s3.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    await client.send(new CreateBucketCommand({ Bucket: 'radiant-cluster' }));
    client.destroy();
    fake = await fakeEndpoint((req: http.IncomingMessage, res: http.ServerResponse) => {
      req.resume();
      req.on('end', () => {
        calls++;
        if (hold) {
          held?.();
          return; // no answer: the worker is killed while it waits
        }
        res.setHeader('content-type', 'application/json');
        res.end(okReply(JSON.stringify(answer)));
      });
    });
    dbUrl = await freshPostgresUrl('scaleout');
    common = {
      DATABASE_URL: dbUrl,
      STORAGE_TYPE: 's3',
      S3_BUCKET: 'radiant-cluster',
      S3_ENDPOINT: s3.endpoint,
      S3_ACCESS_KEY: s3.accessKeyId,
      S3_SECRET_KEY: s3.secretAccessKey,
      S3_REGION: 'us-east-1',
      SECRET_KEY: 'scale-out-shared-secret-key-0123456789abcdef',
      JOB_WORKER_IN_SERVE: 'off',
      JOB_POLL_MS: '200',
      JOB_HEARTBEAT_MS: '500',
      JOB_STALE_MS: String(STALE_MS),
      MEDGEMMA_BACKEND: 'off',
      METADATA_PREBUILD_MS: '0',
    };
    // Both nodes start together on the empty database: one of them migrates, under the lock.
    [nodeA, nodeB] = await Promise.all([startServe('a'), startServe('b')]);
    const create = spawn(['user', 'create', 'cluster-admin', 'admin'], 'cli', { RADIANT_USER_PASSWORD: 'cluster-admin-password' });
    expect(await create.exited(), create.output()).to.equal(0);
    // A token issued by node B is honoured by node A (one SECRET_KEY for the cluster).
    const login = await fetch(`${nodeB.http}/api/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: 'cluster-admin', password: 'cluster-admin-password' }),
    });
    expect(login.status).to.equal(200);
    token = ((await login.json()) as { access_token: string }).access_token;
  });

  after(async () => {
    for (const p of procs) await p.kill();
    await fake?.close();
    await s3?.stop();
    if (dir) await fsp.rm(dir, { recursive: true, force: true });
  });

  it('ran each migration once when both nodes started together (one lock row, nothing locked)', async () => {
    const names = await query<{ name: string; n: string }>(dbUrl, 'select name, count(*) as n from knex_migrations group by name');
    expect(names.length).to.be.greaterThan(10);
    for (const row of names) expect(Number(row.n), row.name).to.equal(1);
    const locks = await query<{ is_locked: number }>(dbUrl, 'select is_locked from knex_migrations_lock');
    expect(locks).to.deep.equal([{ is_locked: 0 }]);
  });

  it('C-STORE to node A: QIDO-RS and WADO-RS on node B see it at once', async () => {
    const fileDir = path.join(dir, 'files');
    await fsp.mkdir(fileDir, { recursive: true });
    const paths = await Promise.all(
      files.map(async (f, i) => {
        const p = path.join(fileDir, `${i}.dcm`);
        await fsp.writeFile(p, f.bytes);
        return p;
      }),
    );
    const r = await storescu(nodeA.dicomPort, paths);
    expect(r.code, r.stderr).to.equal(0);
    const qido = await get(nodeB.http, `/dicom-web/studies?StudyInstanceUID=${study}`, 'application/dicom+json');
    expect(qido.status).to.equal(200);
    const studies = (await qido.json()) as Array<Record<string, { Value?: unknown[] }>>;
    expect(studies).to.have.length(1);
    expect(studies[0]!['00201208']!.Value).to.deep.equal([files.length]);
    const f = files[2]!;
    const wado = await get(
      nodeB.http,
      `/dicom-web/studies/${study}/series/${f.seriesInstanceUid}/instances/${f.sopInstanceUid}`,
      'multipart/related; type="application/dicom"',
    );
    expect(wado.status).to.equal(200);
    const body = Buffer.from(await wado.arrayBuffer());
    // The data set's tail (pixel data) as sent; the file meta is the receiving node's own.
    expect(body.includes(Buffer.from(f.bytes.subarray(f.bytes.length - 4096)))).to.equal(
      true,
      'node B returns the bytes stored through node A',
    );
  });

  it('an analysis queued on node A runs exactly once on the worker', async () => {
    worker1 = spawn(['worker'], 'worker-1', { MEDGEMMA_BACKEND: 'remote', MEDGEMMA_API_ENDPOINT: fake.url, ...modelEnv });
    const res = await fetch(`${nodeA.http}/api/analysis`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ study_id: study }),
    });
    expect(res.status).to.equal(202);
    const { id } = (await res.json()) as { id: number };
    const done = await until('analysis finished', async () => {
      const a = await analysisOn(nodeB.http, id);
      return a.status === 'succeeded' || a.status === 'failed' ? a : undefined;
    });
    expect(done.status, done.error ?? '').to.equal('succeeded');
    // Nodes A and B run no jobs, the worker ran it once: one call, one attempt, one set of findings.
    await new Promise((r) => setTimeout(r, 1500));
    expect(calls).to.equal(1);
    const [job] = await query<{ attempts: number; status: string }>(
      dbUrl,
      'select j.attempts, j.status from jobs j join medgemma_analyses a on a.job_id = j.id where a.id = $1',
      [id],
    );
    expect(job).to.deep.equal({ attempts: 1, status: 'succeeded' });
    const findings = await query(dbUrl, 'select id from findings where analysis_id = $1', [id]);
    expect(findings).to.have.length(1);
  });

  it('a worker killed mid-job: the job goes back after JOB_STALE_MS and a second worker completes it once', async () => {
    calls = 0;
    hold = true;
    const waiting = heldCall();
    const res = await fetch(`${nodeB.http}/api/analysis`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ study_id: study, analysis_type: 'primary' }),
    });
    expect(res.status).to.equal(202);
    const { id } = (await res.json()) as { id: number };
    await Promise.race([
      waiting,
      new Promise((_, reject) => setTimeout(() => reject(new Error('the worker never called the model')), 60_000)),
    ]);
    await worker1.kill();
    const killedAt = Date.now();
    hold = false;
    spawn(['worker'], 'worker-2', { MEDGEMMA_BACKEND: 'remote', MEDGEMMA_API_ENDPOINT: fake.url, ...modelEnv });
    const done = await until('analysis finished after the worker died', async () => {
      const a = await analysisOn(nodeA.http, id);
      return a.status === 'succeeded' || a.status === 'failed' ? a : undefined;
    });
    const tookMs = Date.now() - killedAt;
    expect(done.status, done.error ?? '').to.equal('succeeded');
    // Handed back only once its heartbeat was stale (the dead worker's last beat was < 500 ms before the kill).
    expect(tookMs).to.be.greaterThan(STALE_MS - 600);
    await new Promise((r) => setTimeout(r, 1500));
    expect(calls).to.equal(2); // the call the dead worker never got an answer to, and the second worker's
    const [job] = await query<{ attempts: number; status: string; worker_id: string | null }>(
      dbUrl,
      'select j.attempts, j.status from jobs j join medgemma_analyses a on a.job_id = j.id where a.id = $1',
      [id],
    );
    expect(job).to.deep.include({ attempts: 2, status: 'succeeded' });
    expect(await query(dbUrl, 'select id from findings where analysis_id = $1', [id])).to.have.length(1);
  });
});

const modelEnv = {
  MEDGEMMA_API_MODEL: 'medgemma-1.5-4b-it',
  MEDGEMMA_CONTEXT: '8192',
  ANALYSIS_IMAGE_SIZE: '64',
  MEDGEMMA_MAX_RETRIES: '0',
};

describe('Migrations under a lock: processes migrating one fresh database at once', function () {
  this.timeout(180_000);
  let dir: string;
  before(async () => {
    dir = await tempDir('migrate-lock');
  });
  after(async () => {
    if (dir) await fsp.rm(dir, { recursive: true, force: true });
  });

  for (let round = 1; round <= 2; round++) {
    it(`PostgreSQL, round ${round}: every process succeeds, one applies the migrations`, async () => {
      const url = await freshPostgresUrl('miglock');
      const runs = [1, 2, 3, 4].map((n) => spawnRadiant(['migrate'], { DATA_DIR: path.join(dir, `pg${round}-${n}`), DATABASE_URL: url }));
      const codes = await Promise.all(runs.map((r) => r.exited()));
      expect(codes, runs.map((r) => r.output()).join('\n')).to.deep.equal([0, 0, 0, 0]);
      expect(runs.filter((r) => r.output().includes('applied:'))).to.have.length(1);
      const names = await query<{ n: string }>(url, 'select count(*) as n from knex_migrations group by name having count(*) > 1');
      expect(names).to.deep.equal([]);
      expect(await query(url, 'select is_locked from knex_migrations_lock')).to.deep.equal([{ is_locked: 0 }]);
    });
    it(`SQLite, round ${round}: every process succeeds, one applies the migrations`, async () => {
      const file = path.join(dir, `sq${round}`, 'radiant.sqlite');
      const runs = [1, 2, 3, 4].map((n) =>
        spawnRadiant(['migrate'], { DATA_DIR: path.join(dir, `sq${round}-${n}`), SQLITE_DATABASE_URL: file }),
      );
      const codes = await Promise.all(runs.map((r) => r.exited()));
      expect(codes, runs.map((r) => r.output()).join('\n')).to.deep.equal([0, 0, 0, 0]);
      expect(runs.filter((r) => r.output().includes('applied:'))).to.have.length(1);
    });
  }
});
