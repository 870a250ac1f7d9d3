/**
 * Observability (issue 21, item 5): JSON log lines that carry the request's ID or the
 * association's ID and no patient name; /metrics series that move with a C-STORE (storescu, a
 * real DCMTK peer) and an analysis (remote engine stand-in); /readyz that names the check that
 * fails (database, storage, AI engine).
 */
import { expect } from 'chai';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import type http from 'node:http';
import path from 'node:path';
import { Writable } from 'node:stream';
import { makeCtSeries } from '../fixtures/generate.js';
import { createLogger } from '../src/logger.js';
import { apiClient, type ApiClient } from './helpers/api.js';
import { storescu } from './helpers/dcmtk.js';
import { fakeEndpoint, okReply } from './helpers/fake-openai.js';
import { baseUrl, bearer, tokenFor } from './helpers/http.js';
import { startTestNode, tempDir, type TestNode } from './helpers/node.js';
import { until } from './helpers/until.js';

/** Every JSON line the node's logger wrote, kept in memory. */
function captureLog(): { stream: Writable; lines: () => Array<Record<string, unknown>>; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString('utf8'));
      cb();
    },
  });
  const text = () => chunks.join('');
  const lines = () =>
    text()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { stream, lines, text };
}

/** The value of one series in a Prometheus text exposition (0 when absent). */
function sample(metrics: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const open = line.indexOf('{');
    const labelText = open >= 0 && line.startsWith(`${name}{`) ? line.slice(open + 1, line.lastIndexOf('}')) : '';
    if (Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

const answer = {
  findings: [],
  measurements: [],
  impression: 'No acute abnormality.',
  comparison_with_prior: '',
  technical_limitations: '',
};

describe('Observability: request/association IDs in the logs, no PHI, /metrics, /readyz', function () {
  this.timeout(180_000);
  const log = captureLog();
  let node: TestNode;
  let api: ApiClient;
  let token: string;
  let fake: Awaited<ReturnType<typeof fakeEndpoint>>;
  let dir: string;
  const patient = { id: 'OBSV-PID-9931', name: 'Obsvfamily^Quillon', birthDate: '19470519', sex: 'M' as const };
  const files = makeCtSeries({ seed: 'observability', patient, studyDate: '20240302', slices: 3, size: 32 });
  const second = makeCtSeries({ seed: 'observability-2', patient, studyDate: '20240303', slices: 5, size: 32 });
  const paths: string[] = [];
  const secondPaths: string[] = [];

  before(async () => {
    fake = await fakeEndpoint((req: http.IncomingMessage, res: http.ServerResponse) => {
      req.resume();
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(okReply(JSON.stringify(answer)));
      });
    });
    node = await startTestNode(
      {
        MEDGEMMA_BACKEND: 'remote',
        MEDGEMMA_API_ENDPOINT: fake.url,
        MEDGEMMA_API_MODEL: 'medgemma-1.5-4b-it',
        MEDGEMMA_CONTEXT: '8192',
        ANALYSIS_IMAGE_SIZE: '64',
        JOB_POLL_MS: '100',
      },
      { log: createLogger('debug', { destination: log.stream }) },
    );
    token = await tokenFor(node, 'radiologist');
    api = apiClient(node, token);
    dir = await tempDir('obs');
    for (const [list, out] of [
      [files, paths],
      [second, secondPaths],
    ] as const) {
      for (const f of list) {
        const p = path.join(dir, `${f.sopInstanceUid}.dcm`);
        await fsp.writeFile(p, f.bytes);
        out.push(p);
      }
    }
  });
  after(async () => {
    await node?.cleanup();
    await fake?.close();
    if (dir) await fsp.rm(dir, { recursive: true, force: true });
  });

  it('tags each line of an association with its assocId and of a request with its X-Request-Id; no patient name logged', async () => {
    const stored = await storescu(node.dicomPort, paths);
    expect(stored.code, stored.stderr).to.equal(0);
    await until('association summed up', async () => log.lines().some((l) => l.msg === 'association ended'));

    const res = await fetch(`${baseUrl(node)}/dicom-web/studies?PatientName=Obsvfamily*&PatientID=${patient.id}`, {
      headers: { ...bearer(token), 'X-Request-Id': 'obs-test-request-1' },
    });
    expect(res.status).to.equal(200);
    expect(res.headers.get('x-request-id')).to.equal('obs-test-request-1');
    expect(JSON.stringify(await res.json())).to.include('Obsvfamily');
    // An ID that is not a plain token is not echoed: the node makes its own.
    const odd = await fetch(`${baseUrl(node)}/healthz`, { headers: { 'X-Request-Id': 'a b<script>' } });
    expect(odd.headers.get('x-request-id')).to.match(/^[0-9a-f-]{36}$/);

    const lines = log.lines();
    const ended = lines.filter((l) => l.msg === 'association ended');
    expect(ended).to.have.length(1);
    // Written from the socket's close handling, with no ID passed: it comes from the log context.
    expect(ended[0]!.assocId).to.be.a('string').with.length(36);
    const http = lines.filter((l) => l.requestId === 'obs-test-request-1');
    expect(http.map((l) => l.msg)).to.include('http');
    expect(http.every((l) => l.assocId === undefined)).to.equal(true);
    // Lines outside any request or association carry neither.
    expect(lines.find((l) => l.msg === 'HTTP listener started')).to.not.have.property('requestId');

    // No PHI: neither the name (as sent, as searched, any case) nor the birth date is in the log.
    const text = log.text();
    expect(text.toLowerCase()).to.not.include('obsvfamily');
    expect(text.toLowerCase()).to.not.include('quillon');
    expect(text).to.not.include(patient.birthDate);
  });

  it('moves the ingest, DIMSE, job, model, queue and pool series after a C-STORE and an analysis', async () => {
    const scrape = async () => (await fetch(`${baseUrl(node)}/metrics`)).text();
    const before = await scrape();
    const stored = await storescu(node.dicomPort, secondPaths);
    expect(stored.code, stored.stderr).to.equal(0);
    const afterStore = await scrape();
    const dimseIn = { source: 'dimse' };
    expect(
      sample(afterStore, 'radiant_instances_stored_total', dimseIn) - sample(before, 'radiant_instances_stored_total', dimseIn),
    ).to.equal(5);
    const cstore = { operation: 'C-STORE', status: '0x0000' };
    expect(
      sample(afterStore, 'radiant_dimse_operations_total', cstore) - sample(before, 'radiant_dimse_operations_total', cstore),
    ).to.equal(5);
    for (const state of ['used', 'free', 'pending'])
      expect(afterStore).to.match(new RegExp(`radiant_db_pool_connections\\{state="${state}"\\} \\d+`));
    expect(
      sample(afterStore, 'radiant_db_pool_connections', { state: 'free' }) +
        sample(afterStore, 'radiant_db_pool_connections', { state: 'used' }),
    ).to.be.greaterThan(0);

    const r = await api.post<{ id: number }>('/api/analysis', { study_id: second[0]!.studyInstanceUid });
    expect(r.status, JSON.stringify(r.body)).to.be.oneOf([200, 201, 202]);
    const done = await until('analysis finished', async () => {
      const a = await api.get<{ status: string; error: string | null }>(`/api/analysis/${r.body.id}`);
      return ['succeeded', 'failed'].includes(a.body.status) && a.body;
    });
    expect(done.status, done.error ?? '').to.equal('succeeded');
    const afterAnalysis = await until('job counted', async () => {
      const m = await scrape();
      return sample(m, 'radiant_job_duration_seconds_count', { kind: 'analysis.run', outcome: 'succeeded' }) >= 1 && m;
    });
    // The job's lines carry its job ID, not the ID of the request that queued it.
    const jobLines = log.lines().filter((l) => l.msg === 'job succeeded' && l.kind === 'analysis.run');
    expect(jobLines).to.have.length(1);
    expect(jobLines[0]).to.not.have.property('requestId');
    const model = { backend: 'remote', outcome: 'success' };
    const modelCalls = sample(afterAnalysis, 'radiant_model_request_duration_seconds_count', model);
    expect(modelCalls - sample(afterStore, 'radiant_model_request_duration_seconds_count', model)).to.equal(1);
    expect(sample(afterAnalysis, 'radiant_jobs', { kind: 'analysis.run', status: 'succeeded' })).to.be.at.least(1);
    expect(sample(afterAnalysis, 'radiant_http_requests_total', { method: 'POST', route: '/api/analysis' })).to.be.at.least(1);

    // A failed storage operation is counted by back end and operation; a missing object is not an error.
    const errorsBefore = sample(afterAnalysis, 'radiant_storage_errors_total', { backend: 'local', op: 'get' });
    await node.storage.get('no/such/object').then(
      () => expect.fail('a missing object was read'),
      () => undefined,
    );
    await node.storage.get('../escape').then(
      () => expect.fail('a key outside the root was read'),
      () => undefined,
    );
    const last = await scrape();
    expect(sample(last, 'radiant_storage_errors_total', { backend: 'local', op: 'get' }) - errorsBefore).to.equal(1);
  });

  it('/readyz: database, storage and engine ok; a node without an engine does not need one', async () => {
    const res = await fetch(`${baseUrl(node)}/readyz`);
    expect(res.status).to.equal(200);
    expect(await res.json()).to.deep.equal({ status: 'ready', checks: { database: 'ok', storage: 'ok', engine: 'ok' } });
  });
});

describe('/readyz: each check failing answers 503 and names it', function () {
  this.timeout(120_000);

  it('engine configured but not available → 503 engine; engine off → not configured; storage gone → 503 storage; database gone → 503 database', async () => {
    const broken = await startTestNode({ MEDGEMMA_BACKEND: 'llama-server', MEDGEMMA_MODEL_PATH: '/nonexistent/model.gguf' });
    try {
      await until('engine start failed', async () => broken.engine.status.state === 'failed');
      const res = await fetch(`${baseUrl(broken)}/readyz`);
      expect(res.status).to.equal(503);
      const body = (await res.json()) as { status: string; checks: Record<string, string> };
      expect(body).to.deep.equal({ status: 'not ready', checks: { database: 'ok', storage: 'ok', engine: 'unavailable' } });
    } finally {
      await broken.cleanup();
    }

    const node = await startTestNode();
    try {
      const ok = await fetch(`${baseUrl(node)}/readyz`);
      expect(ok.status).to.equal(200);
      expect(((await ok.json()) as { checks: unknown }).checks).to.deep.equal({ database: 'ok', storage: 'ok', engine: 'not configured' });

      // The storage root replaced by a file: the storage check cannot write its probe.
      const root = node.config.storage.type === 'local' ? node.config.storage.root : '';
      await fsp.rm(root, { recursive: true, force: true });
      fs.writeFileSync(root, 'not a directory');
      const noStorage = await fetch(`${baseUrl(node)}/readyz`);
      expect(noStorage.status).to.equal(503);
      expect(((await noStorage.json()) as { checks: unknown }).checks).to.deep.equal({
        database: 'ok',
        storage: 'unavailable',
        engine: 'not configured',
      });
      await fsp.rm(root, { force: true });

      await node.db.destroy();
      const noDb = await fetch(`${baseUrl(node)}/readyz`);
      expect(noDb.status).to.equal(503);
      expect(((await noDb.json()) as { checks: Record<string, string> }).checks.database).to.equal('unavailable');
    } finally {
      await node.cleanup().catch(() => undefined);
    }
  });
});
