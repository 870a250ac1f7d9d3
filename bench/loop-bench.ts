/**
 * `node dist/bench/bench.js loop`: the closed loop's latency (issue 16, item 5). DCMTK storescu
 * pushes the corpus chest CT (99 × 512²) to a node with AUTO_ANALYZE=all, a stand-in
 * OpenAI-compatible endpoint that answers at once and MEDGEMMA_ALLOW_UNVALIDATED_MODEL=true; the
 * node analyses the stable study, drafts the report and publishes its SR and PDF, and an "AI
 * results" forwarding rule sends both to a DCMTK storescp. Measured from the last instance
 * acknowledged (storescu done) to both objects written by storescp, with where the time went:
 * the configured study-stable wait, the analysis (queue, select, prepare, inference, store), the
 * report draft, the SR + PDF build and ingest, and forwarding. Goal: under 10 s without the wait.
 * The analysis runs at the node's defaults (MEDGEMMA_MAX_SLICES, ANALYSIS_IMAGE_SIZE), as a user
 * would get them; BENCH_LOOP_STABLE_SECONDS sets the wait (default 1).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startNode, type RunningNode } from '../src/app.js';
import { getAnalysis } from '../src/analysis/analyses.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import type { ReportPublishResult } from '../src/reports/publish-job.js';
import { startStorescp } from '../test/helpers/dcmtk.js';
import { answeringEndpoint, forwardAiResultsTo, noduleAnswer } from '../test/helpers/ai-results.js';
import { freePort } from '../test/helpers/node.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const STABLE_SECONDS = Number(process.env.BENCH_LOOP_STABLE_SECONDS ?? 1);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** What the stand-in model answers: one finding with a box on the second image, an impression. */
const ANSWER = noduleAnswer([300, 250, 520, 480]);

function storescu(port: number, files: string[]): Promise<number | null> {
  return new Promise((resolve) => {
    const c = spawn('storescu', ['-aet', 'BENCHSCU', '-aec', 'RADIANT', '127.0.0.1', String(port), ...files], { stdio: 'ignore' });
    c.on('close', resolve);
  });
}

/** When (performance.now()) each step of the loop was first seen done, polling the node's tables. */
interface Marks {
  analysisQueued?: number;
  analysisDone?: number;
  reportCreated?: number;
  published?: number;
  atPacs?: number;
}

export interface LoopRun {
  totalMs: number;
  marks: Marks;
  analysis: Record<string, number>;
  publish: NonNullable<ReportPublishResult['timings']>;
}

/** One push of `files` and the loop it starts, timed from the last instance acknowledged; limitMs bounds the wait. */
export async function loopRun(node: RunningNode, files: string[], scpDir: string, limitMs = 300_000): Promise<LoopRun> {
  for (const f of fs.readdirSync(scpDir)) fs.rmSync(path.join(scpDir, f));
  const before = ((await node.db('medgemma_analyses').max({ id: 'id' }).first()) as { id: number | null }).id ?? 0;
  const code = await storescu(node.dicomPort, files);
  if (code !== 0) throw new Error(`storescu exited ${code}`);
  const t0 = performance.now();
  const marks: Marks = {};
  let analysisId = 0;
  for (;;) {
    const now = performance.now();
    if (now - t0 > limitMs) throw new Error(`the loop did not close in ${limitMs / 1000} s: ${JSON.stringify(marks)}`);
    if (!analysisId) {
      const a = (await node.db('medgemma_analyses').where('id', '>', before).first('id')) as { id: number } | undefined;
      if (a) {
        analysisId = a.id;
        marks.analysisQueued = now;
      }
    }
    if (analysisId && marks.analysisDone === undefined) {
      const a = await getAnalysis(node.db, analysisId, false);
      if (a && ['failed', 'cancelled'].includes(a.status)) throw new Error(`analysis ${a.status}: ${a.error}`);
      if (a?.status === 'succeeded') marks.analysisDone = now;
    }
    if (analysisId && marks.analysisDone !== undefined && (marks.reportCreated === undefined || marks.published === undefined)) {
      const r = (await node.db('reports').where({ analysis_id: analysisId }).first('id', 'sr_sop_instance_uid', 'pdf_sop_instance_uid')) as
        | { id: number; sr_sop_instance_uid: string | null; pdf_sop_instance_uid: string | null }
        | undefined;
      if (r && marks.reportCreated === undefined) marks.reportCreated = now;
      if (r?.sr_sop_instance_uid && r.pdf_sop_instance_uid) marks.published = now;
    }
    if (fs.readdirSync(scpDir).length >= 2) {
      marks.atPacs = now;
      break;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  const a = (await getAnalysis(node.db, analysisId, false))!;
  const jobs = await node.queue.list<unknown, ReportPublishResult>({ kind: 'report.publish' });
  const publish = jobs.find((j) => j.status === 'succeeded' && j.result?.already === false)?.result;
  return {
    totalMs: marks.atPacs! - t0,
    marks: Object.fromEntries(Object.entries(marks).map(([k, v]) => [k, v - t0])) as Marks,
    analysis: (a.timings ?? {}) as Record<string, number>,
    publish: publish?.timings ?? { srMs: 0, pdfMs: 0, storeMs: 0 },
  };
}

export async function loopBench(corpus: string): Promise<void> {
  const ctDir = path.join(corpus, 'ct-series-chest-99');
  if (!fs.existsSync(ctDir)) throw new Error(`corpus CT not found at ${ctDir}: set RADIANT_CORPUS`);
  const files = fs
    .readdirSync(ctDir)
    .filter((f) => f.endsWith('.dcm'))
    .sort()
    .map((f) => path.join(ctDir, f));
  const fake = await answeringEndpoint(ANSWER);
  const runs: LoopRun[] = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      // A fresh node and PACS per run: the same study pushed again would not be a new study.
      const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'radiant-bench-loop-'));
      const scpDir = path.join(dir, 'pacs');
      await fsp.mkdir(scpDir);
      const config = loadConfig(
        {
          DATA_DIR: path.join(dir, 'node'),
          DICOM_PORT: String(await freePort()),
          HTTP_PORT: '0',
          MEDGEMMA_BACKEND: 'remote',
          MEDGEMMA_API_ENDPOINT: fake.url,
          MEDGEMMA_ALLOW_UNVALIDATED_MODEL: 'true',
          AUTO_ANALYZE: 'all',
          STUDY_STABLE_SECONDS: String(STABLE_SECONDS),
        },
        path.join(dir, 'node'),
      );
      const node = await startNode(config, createLogger('silent', { stderr: true }));
      const scp = await startStorescp(await freePort(), scpDir, { aeTitle: 'BENCH_PACS' });
      try {
        for (let k = 0; k < 600 && node.engine.status.state === 'starting'; k++) await new Promise((r) => setTimeout(r, 50));
        await forwardAiResultsTo(node, 'BENCH_PACS', scp.port);
        runs.push(await loopRun(node, files, scpDir));
        if (i === RUNS - 1) printLoop(runs, node);
      } finally {
        await scp.stop();
        await node.stop();
        await fsp.rm(dir, { recursive: true, force: true });
      }
    }
  } finally {
    await fake.close();
  }
}

function printLoop(runs: LoopRun[], node: RunningNode): void {
  const m = (f: (r: LoopRun) => number | undefined) => median(runs.map((r) => f(r) ?? 0)).toFixed(0);
  const stableMs = STABLE_SECONDS * 1000;
  const c = node.config;
  console.log(
    `loop: last CT instance (99 × 512², storescu) → draft SR + PDF at a DCMTK storescp, stand-in model answering at once, median of ${runs.length}`,
  );
  console.log(
    `  total                         ${m((r) => r.totalMs)} ms, ${m((r) => r.totalMs - stableMs)} ms without the study-stable wait`,
  );
  console.log(
    `  study-stable wait             ${stableMs} ms configured (STUDY_STABLE_SECONDS=${STABLE_SECONDS}); analysis queued at ${m((r) => r.marks.analysisQueued)} ms`,
  );
  console.log(
    `  analysis                      ${m((r) => (r.marks.analysisDone ?? 0) - (r.marks.analysisQueued ?? 0))} ms: queue ${m((r) => r.analysis.queueWaitMs)}, select ${m((r) => r.analysis.selectMs)}, prepare ${m((r) => r.analysis.prepareMs)} (${c.analysis.maxSlices} images at ${c.analysis.imageSize}²), inference ${m((r) => r.analysis.inferenceMs)} ms`,
  );
  console.log(
    `  report draft                  ${m((r) => (r.marks.reportCreated ?? 0) - (r.marks.analysisDone ?? 0))} ms (report.autodraft job)`,
  );
  console.log(
    `  SR + PDF build and store      ${m((r) => (r.marks.published ?? 0) - (r.marks.reportCreated ?? 0))} ms (report.publish job: SR ${m((r) => r.publish.srMs)}, key images + PDF ${m((r) => r.publish.pdfMs)}, ingest ${m((r) => r.publish.storeMs)} ms)`,
  );
  console.log(
    `  forward to the PACS           ${m((r) => (r.marks.atPacs ?? 0) - (r.marks.published ?? 0))} ms (FORWARD_SETTLE_MS=${c.forwarding.settleMs}, FORWARD_POLL_MS=${c.forwarding.pollMs})`,
  );
}
