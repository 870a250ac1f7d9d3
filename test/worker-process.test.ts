/**
 * `radiant worker` runs every job kind that needs only the core (issue 21, loose ends): a serve
 * node that runs no jobs (JOB_WORKER_IN_SERVE=off) and looks at its light lane only every ten
 * minutes, and a worker process on the same data: a pushed study is analysed, drafted and its
 * report published by the worker (the jobs' locked_by names its pid), with no API call. The
 * worker's WORKER_HTTP_PORT answers /healthz and /metrics with its own job figures.
 */
import { expect } from 'chai';
import fsp from 'node:fs/promises';
import { makeCtSeries, writeSeries } from '../fixtures/generate.js';
import { answeringEndpoint, noduleAnswer, autoAnalysisEnv } from './helpers/ai-results.js';
import { apiClient } from './helpers/api.js';
import { storescu } from './helpers/dcmtk.js';
import { tokenFor } from './helpers/http.js';
import { startTestNode, tempDir, type TestNode } from './helpers/node.js';
import { spawnRadiant, type RadiantProcess } from './helpers/node-process.js';
import { until } from './helpers/until.js';

interface AnalysisView {
  id: number;
  status: string;
  trigger: string;
  auto_publish: { status: string; reason: string | null; report_id: number | null };
}

describe('radiant worker: the light job kinds too, and /metrics on WORKER_HTTP_PORT', function () {
  this.timeout(240_000);
  let fake: Awaited<ReturnType<typeof answeringEndpoint>>;
  let node: TestNode;
  let worker: RadiantProcess;
  let workerHttp: string;
  const work: string[] = [];

  before(async () => {
    fake = await answeringEndpoint(noduleAnswer([80, 80, 180, 180]));
    const common = {
      ...autoAnalysisEnv(fake.url),
      METADATA_PREBUILD_MS: '0',
    };
    // The serve node's light lane would take a report job only at its next poll, ten minutes away.
    node = await startTestNode({ ...common, JOB_WORKER_IN_SERVE: 'off', FORWARD_POLL_MS: '600000' });
    worker = spawnRadiant(['worker'], { ...common, DATA_DIR: node.dir, FORWARD_POLL_MS: '200', WORKER_HTTP_PORT: '0' });
    const line = await worker.logLine('worker HTTP listener started', 60_000);
    workerHttp = `http://127.0.0.1:${Number(line.port)}`;
    await worker.logLine('RadiantAI worker ready', 60_000);
  });

  after(async () => {
    if (worker) expect(await worker.stop(), worker.output().slice(-2000)).to.equal(0);
    await node?.cleanup();
    await fake?.close();
    for (const d of work) await fsp.rm(d, { recursive: true, force: true });
  });

  it('a pushed study is analysed, drafted and published by the worker process, not by serve', async () => {
    const files = makeCtSeries({ seed: 'worker-light-kinds', slices: 6, size: 96 });
    const study = files[0]!.studyInstanceUid;
    const dir = await tempDir('worker-push');
    work.push(dir);
    const sent = await storescu(node.dicomPort, await writeSeries(dir, files));
    expect(sent.code, sent.stderr).to.equal(0);

    const api = apiClient(node, await tokenFor(node, 'viewer'));
    const published = await until(
      'the automatic report published',
      async () => {
        const list = await api.get<{ items: Array<{ id: number; trigger: string }> }>(`/api/studies/${study}/analyses`);
        const auto = list.body.items?.find((a) => a.trigger === 'auto');
        if (!auto) return undefined;
        const a = (await api.get<AnalysisView>(`/api/analysis/${auto.id}`)).body;
        return a.auto_publish.status === 'published' ? a : undefined;
      },
      120_000,
    );
    expect(published.status).to.equal('succeeded');
    const report = await api.get<{ id: number; state: string }>(`/api/reports/${published.auto_publish.report_id}`);
    expect(report.status).to.equal(200);

    // Every job of the chain ran in the worker process (workerId = host:pid:random).
    const pid = worker.child.pid!;
    const rows = (await node.db('jobs').whereIn('kind', ['analysis.run', 'report.autodraft', 'report.publish'])) as Array<{
      kind: string;
      status: string;
      locked_by: string | null;
    }>;
    for (const kind of ['analysis.run', 'report.autodraft', 'report.publish']) {
      const row = rows.find((r) => r.kind === kind);
      expect(row, kind).to.not.equal(undefined);
      expect(row!.status, kind).to.equal('succeeded');
      expect(row!.locked_by?.split(':')[1], `${kind} ran by ${row!.locked_by}`).to.equal(String(pid));
    }
  });

  it("the worker's /healthz and /metrics answer, with the jobs it ran; anything else is 404", async () => {
    const health = await fetch(`${workerHttp}/healthz`);
    expect(health.status).to.equal(200);
    expect(await health.json()).to.deep.equal({ status: 'ok', role: 'worker' });
    const metrics = await fetch(`${workerHttp}/metrics`);
    expect(metrics.status).to.equal(200);
    expect(metrics.headers.get('content-type')).to.match(/^text\/plain/);
    const text = await metrics.text();
    expect(text).to.match(/radiant_job_duration_seconds_count\{kind="report\.autodraft",outcome="succeeded"\} [1-9]/);
    expect(text).to.match(/radiant_job_duration_seconds_count\{kind="analysis\.run",outcome="succeeded"\} [1-9]/);
    expect(text).to.match(/radiant_model_request_duration_seconds_count\{backend="remote",outcome="[a-z]+"\} [1-9]/);
    expect(text).to.match(/radiant_jobs\{kind="report\.publish",status="succeeded"\} [1-9]/);
    expect(text).to.include('radiant_db_pool_connections');
    expect((await fetch(`${workerHttp}/api/studies`)).status).to.equal(404);
    expect((await fetch(`${workerHttp}/metrics`, { method: 'POST' })).status).to.equal(405);
  });
});
