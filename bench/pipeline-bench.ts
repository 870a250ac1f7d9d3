/**
 * `node dist/bench/bench.js pipeline`: the analysis pipeline's own cost, without the model —
 * series selection + volume assembly (metadata first built, then cached) + image preparation
 * (85 images at 896², PNG) for the corpus chest CT (99 × 512²) and a generated 500-slice CT
 * (512²) — and one whole job with the tiny random-weight model on CPU (1 thread), queue to stored
 * findings. Target (issue 7): selection + assembly + preparation under 1 s per 100 slices.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { makeCtSeries } from '../fixtures/generate.js';
import { tinyEngineEnv, writeTinyModels } from '../fixtures/tiny-model.js';
import { openCore, startNode, type Core, type RunningNode } from '../src/app.js';
import { createReport, workflowDeps } from '../src/reports/workflow.js';
import type { ReportPublishResult } from '../src/reports/publish-job.js';
import { forwardAiResultsTo } from '../test/helpers/ai-results.js';
import { startStorescp } from '../test/helpers/dcmtk.js';
import { freePort } from '../test/helpers/node.js';
import { getAnalysis } from '../src/analysis/analyses.js';
import { closeImagePrep, prepareImages } from '../src/analysis/prepare-images.js';
import { seriesInstanceReader } from '../src/analysis/instance-bytes.js';
import { requestAnalysis } from '../src/analysis/requests.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { ensureLlamaServer } from '../src/medgemma/build/build-llama.js';
import { assembleVolume, loadStudySeries, selectSeries } from '../src/volumes/index.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function core(dir: string): Promise<Core> {
  return openCore(loadConfig({ DATA_DIR: dir }, dir), createLogger('silent', { stderr: true }));
}

interface Overhead {
  selectFirstMs: number;
  selectMs: number[];
  prepareMs: number[];
  images: number;
}

async function overhead(c: Core, studyUid: string, slices: number): Promise<Overhead> {
  const r: Overhead = { selectFirstMs: 0, selectMs: [], prepareMs: [], images: 0 };
  for (let i = 0; i <= RUNS; i++) {
    const t0 = performance.now();
    const series = await loadStudySeries(c.db, c.storage, studyUid);
    const sel = selectSeries(series);
    if (!sel.selected) throw new Error('no series selected');
    const vol = assembleVolume(sel.selected);
    if (vol.slices.length !== slices) throw new Error(`assembled ${vol.slices.length} of ${slices} slices`);
    const t1 = performance.now();
    const prepared = await prepareImages({
      kind: 'ct',
      slices: vol.slices.map((s) => ({ sopInstanceUid: s.sopInstanceUid, frameNumber: s.frameNumber })),
      maxImages: c.config.analysis.maxSlices,
      size: c.config.analysis.imageSize,
      readInstance: await seriesInstanceReader(c.db, c.storage, studyUid, vol.seriesInstanceUid),
    });
    const t2 = performance.now();
    r.images = prepared.images.length;
    if (i === 0)
      r.selectFirstMs = t1 - t0; // builds the series metadata cache (and starts the decode workers)
    else {
      r.selectMs.push(t1 - t0);
      r.prepareMs.push(t2 - t1);
    }
  }
  return r;
}

function print(label: string, slices: number, o: Overhead): void {
  const sel = median(o.selectMs);
  const prep = median(o.prepareMs);
  const per100 = ((sel + prep) / slices) * 100;
  console.log(
    `pipeline ${label.padEnd(24)} select+assemble ${sel.toFixed(0)} ms (first, metadata build: ${o.selectFirstMs.toFixed(0)} ms), prepare ${o.images} images ${prep.toFixed(0)} ms → ${per100.toFixed(0)} ms per 100 slices`,
  );
}

export async function pipelineBench(corpus: string): Promise<void> {
  const ctDir = path.join(corpus, 'ct-series-chest-99');
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'radiant-bench-pipeline-'));
  try {
    const c = await core(dir);
    try {
      const files = fs
        .readdirSync(ctDir)
        .filter((f) => f.endsWith('.dcm'))
        .sort();
      let studyUid = '';
      for (const f of files) studyUid = (await c.ingestor.ingestFile(path.join(ctDir, f), false, { source: 'import' })).studyInstanceUid;
      print('corpus CT (99 × 512²)', files.length, await overhead(c, studyUid, files.length));
      let big = '';
      for (const g of makeCtSeries({ seed: 'bench-500', slices: 500, size: 512, noise: 8 })) {
        big = g.studyInstanceUid;
        await c.ingestor.ingestStream(Readable.from([g.bytes]), { source: 'import' });
      }
      print('generated CT (500 × 512²)', 500, await overhead(c, big, 500));
    } finally {
      await c.close();
    }
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
  await jobBench(ctDir);
  await closeImagePrep();
}

/**
 * From a finished analysis to its report stored in the study and at a PACS: the draft's SR and
 * PDF written and ingested, then forwarded (C-STORE) to a DCMTK storescp by an "AI results" rule.
 */
async function publishBench(node: RunningNode, analysisIds: number[]): Promise<void> {
  const destDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'radiant-bench-pacs-'));
  const scp = await startStorescp(await freePort(), destDir, { aeTitle: 'BENCH_PACS' });
  try {
    await forwardAiResultsTo(node, 'BENCH_PACS', scp.port);
    const deps = workflowDeps(node);
    const stored: number[] = [];
    const forwarded: number[] = [];
    let split = { srMs: 0, pdfMs: 0, storeMs: 0 };
    // One report per analysis: each run drafts the report of another analysis of the study.
    for (const analysisId of analysisIds) {
      const analysis = (await getAnalysis(node.db, analysisId))!;
      const t0 = performance.now();
      const made = await createReport(
        deps,
        { studyInstanceUid: analysis.studyInstanceUid, analysisId, includeAiDisclaimer: true },
        { username: 'bench', role: 'radiologist' },
      );
      if (!made.publish) throw new Error(`analysis ${analysisId} already has a report`);
      const job = await node.queue.waitFor<unknown, ReportPublishResult>(made.publish.jobId, 120_000);
      if (job?.status !== 'succeeded') throw new Error(`report.publish ${job?.status}: ${job?.error}`);
      const published = job.result!;
      stored.push(performance.now() - t0);
      split = published.timings ?? split;
      for (;;) {
        const sent = (await node
          .db('forward_items')
          .whereIn('sop_instance_uid', [published.srSopInstanceUid, published.pdfSopInstanceUid])
          .andWhere({ status: 'sent' })) as unknown[];
        if (sent.length === 2) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      forwarded.push(performance.now() - t0);
    }
    console.log(
      `report publish (corpus CT analysis)  ${median(stored).toFixed(0)} ms analysis → SR + PDF stored in the study (SR ${split.srMs.toFixed(0)}, key images + PDF ${split.pdfMs.toFixed(0)}, ingest ${split.storeMs.toFixed(0)} ms), ${median(forwarded).toFixed(0)} ms → both at a DCMTK storescp (forwarding settle ${node.config.forwarding.settleMs} ms)`,
    );
  } finally {
    await scp.stop();
    await fsp.rm(destDir, { recursive: true, force: true });
  }
}

/** One analysis job on the corpus CT with the tiny model: where its time goes. */
async function jobBench(ctDir: string): Promise<void> {
  await ensureLlamaServer({ cuda: false });
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'radiant-bench-job-'));
  const models = path.join(dir, 'models');
  writeTinyModels(models, { seed: 3 });
  const config = loadConfig(
    {
      DATA_DIR: dir,
      DICOM_PORT: '0',
      HTTP_PORT: '0',
      ...tinyEngineEnv(models),
      JOB_POLL_MS: '100',
      FORWARD_POLL_MS: '100',
      FORWARD_SETTLE_MS: '200',
    },
    dir,
  );
  const node = await startNode(config, createLogger('silent', { stderr: true }));
  try {
    for (let i = 0; i < 600 && node.engine.status.state === 'starting'; i++) await new Promise((r) => setTimeout(r, 100));
    if (!node.engine.ready) throw new Error(`engine ${node.engine.status.state}: ${node.engine.status.error ?? ''}`);
    let studyUid = '';
    for (const f of fs.readdirSync(ctDir).filter((x) => x.endsWith('.dcm')))
      studyUid = (await node.ingestor.ingestFile(path.join(ctDir, f), false, { source: 'import' })).studyInstanceUid;
    const totals: number[] = [];
    let last: Record<string, number> = {};
    const analysisIds: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      const a = await requestAnalysis(node.analysis, {
        studyInstanceUid: studyUid,
        analysisType: 'primary',
        trigger: 'manual',
        requestedBy: 'bench',
      });
      for (;;) {
        const now = await getAnalysis(node.db, a.id, false);
        if (now && ['succeeded', 'failed', 'cancelled'].includes(now.status)) {
          if (now.status !== 'succeeded') throw new Error(`analysis ${now.status}: ${now.error}`);
          last = now.timings as Record<string, number>;
          analysisIds.push(now.id);
          break;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      totals.push(performance.now() - t0);
    }
    const f = (k: string) => (last[k] ?? 0).toFixed(0);
    console.log(
      `pipeline job, tiny model (CPU, 1 thread)  ${median(totals).toFixed(0)} ms request → findings stored (85 images); last run: queue ${f('queueWaitMs')}, select ${f('selectMs')}, prepare ${f('prepareMs')}, inference ${f('inferenceMs')} (prompt ${f('promptMs')}, generation ${f('predictedMs')} for ${f('tokens')} tokens) ms`,
    );
    await publishBench(node, analysisIds);
  } finally {
    await node.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  }
}
