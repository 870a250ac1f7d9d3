import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runTool } from '../test/helpers/dcmtk.js';
import { percentile, rssMb, seriesCopies, startServe, type NodeUnderTest } from './node-under-test.js';

/**
 * Two sections under load (`node dist/bench/bench.js load`, `… bench.js memory`):
 *
 * Query while ingesting: BENCH_LOAD_ASSOCIATIONS (16) DCMTK storescu associations each push a
 * copy of the corpus CT (distinct UIDs) into a fresh node while one client sends OHIF's study-list
 * QIDO-RS query back to back; its p50/p99 under load is printed beside the same query idle, on
 * the same index after the load (and before it, on the empty index).
 *
 * Memory: BENCH_MEM_ASSOCIATIONS (16) associations each push the MR and the CT series, while a
 * client downloads a whole study by WADO-RS in a loop, for BENCH_MEM_ROUNDS rounds (default 2; a
 * soak is e.g. BENCH_MEM_ROUNDS=20, ~10 min here); each round re-sends the same copies (overwrite
 * policy). The node's RSS after each round and its peak (VmHWM) are printed, with the growth of
 * the post-round RSS from the second round on (the first warms caches and worker pools).
 */

const STUDY_LIST = '/dicom-web/studies?limit=101&offset=0&fuzzymatching=false&includefield=00081030%2C00080060&StudyDate=19700102-20991231';

function seriesFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.dcm'))
    .sort()
    .map((f) => path.join(dir, f));
}

async function timedQido(node: NodeUnderTest, url = STUDY_LIST): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(`${node.base}${url}`, { headers: { ...node.auth, accept: 'application/dicom+json' } });
  await res.arrayBuffer();
  if (res.status !== 200 && res.status !== 204) throw new Error(`QIDO-RS answered ${res.status}`);
  return performance.now() - t0;
}

/** QIDO latencies, one request after the other, until `done` says stop (or `n` requests). */
async function qidoLoop(node: NodeUnderTest, until: () => boolean, n = Number.POSITIVE_INFINITY): Promise<number[]> {
  const ms: number[] = [];
  while (!until() && ms.length < n) ms.push(await timedQido(node));
  return ms;
}

function storeAll(node: NodeUnderTest, sets: string[][]): Promise<void> {
  return Promise.all(
    sets.map(async (files, i) => {
      const r = await runTool(
        'storescu',
        ['-aet', `LOAD${i}`, '-aec', 'RADIANT', '127.0.0.1', String(node.dicomPort), ...files],
        1_800_000,
      );
      if (r.code !== 0) throw new Error(`storescu ${i} failed: ${r.output.slice(-500)}`);
    }),
  ).then(() => undefined);
}

const fmt = (xs: number[]) => `p50 ${percentile(xs, 50).toFixed(1).padStart(6)} ms, p99 ${percentile(xs, 99).toFixed(1).padStart(6)} ms`;

export async function queryUnderLoadBench(corpus: string, env: Record<string, string> = {}): Promise<void> {
  const assocs = Number(process.env.BENCH_LOAD_ASSOCIATIONS ?? 16);
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'radiant-bench-load-'));
  try {
    const sets = await seriesCopies(seriesFiles(path.join(corpus, 'ct-series-chest-99')), assocs, path.join(work, 'copies'), 'ct');
    const node = await startServe(path.join(work, 'data'), env);
    try {
      for (let i = 0; i < 10; i++) await timedQido(node);
      const empty = await qidoLoop(node, () => false, 200);
      let done = false;
      const t0 = performance.now();
      const store = storeAll(node, sets).finally(() => (done = true));
      const loaded = await qidoLoop(node, () => done);
      await store;
      const secs = (performance.now() - t0) / 1000;
      const idle = await qidoLoop(node, () => false, 200);
      const n = sets.length * sets[0]!.length;
      console.log(
        `QIDO-RS while ingesting (${env.DATABASE_URL ? 'PostgreSQL' : 'SQLite'}): ${assocs} storescu associations × ${sets[0]!.length} CT instances ` +
          `(${n} in ${secs.toFixed(1)} s, ${(n / secs).toFixed(0)} inst/s), OHIF study list query back to back`,
      );
      console.log(`  under load   ${fmt(loaded)}  (${loaded.length} requests)`);
      console.log(`  idle, after  ${fmt(idle)}  (200 requests, ${assocs} studies / ${n} instances indexed)`);
      console.log(`  idle, empty  ${fmt(empty)}  (200 requests)`);
    } finally {
      await node.stop();
    }
  } finally {
    await fsp.rm(work, { recursive: true, force: true });
  }
}

export async function memorySoakBench(corpus: string): Promise<void> {
  const assocs = Number(process.env.BENCH_MEM_ASSOCIATIONS ?? 16);
  const rounds = Number(process.env.BENCH_MEM_ROUNDS ?? 2);
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'radiant-bench-mem-'));
  try {
    const ct = await seriesCopies(seriesFiles(path.join(corpus, 'ct-series-chest-99')), assocs, path.join(work, 'copies'), 'ct');
    const mr = await seriesCopies(seriesFiles(path.join(corpus, 'mr-series-brain-sag-192')), assocs, path.join(work, 'copies'), 'mr');
    const sets = ct.map((c, i) => [...mr[i]!, ...c]);
    const node = await startServe(path.join(work, 'data'), { DUPLICATE_POLICY: 'overwrite' });
    const pid = node.child.pid!;
    try {
      // One study first, for the download loop to read while the rest arrives.
      await storeAll(node, [ct[0]!]);
      const studies = (await (await fetch(`${node.base}/dicom-web/studies`, { headers: node.auth })).json()) as Array<
        Record<string, { Value?: string[] }>
      >;
      const studyUid = studies[0]!['0020000D']!.Value![0]!;
      const start = rssMb(pid);
      console.log(
        `Memory: ${assocs} associations × (MR ${mr[0]!.length} + CT ${ct[0]!.length} instances) per round, ${rounds} rounds, ` +
          `WADO-RS study download loop beside it; RSS at start ${start.rss.toFixed(0)} MB`,
      );
      const after: number[] = [];
      let peak = 0;
      let downloads = 0;
      let downloadedMb = 0;
      for (let r = 0; r < rounds; r++) {
        let done = false;
        const t0 = performance.now();
        const store = storeAll(node, sets).finally(() => (done = true));
        const sampler = setInterval(() => (peak = Math.max(peak, rssMb(pid).rss)), 100);
        while (!done) {
          const res = await fetch(`${node.base}/dicom-web/studies/${studyUid}`, {
            headers: { ...node.auth, accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' },
          });
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) downloadedMb += chunk.length / 1e6;
          downloads++;
        }
        await store;
        clearInterval(sampler);
        const m = rssMb(pid);
        after.push(m.rss);
        console.log(
          `  round ${r + 1}: ${((performance.now() - t0) / 1000).toFixed(1)} s, RSS ${m.rss.toFixed(0)} MB, peak so far ${m.peak.toFixed(0)} MB (VmHWM)`,
        );
      }
      const growth = after.length > 2 ? after.at(-1)! - after[1]! : Number.NaN;
      console.log(
        `  peak RSS ${rssMb(pid).peak.toFixed(0)} MB (VmHWM; sampled ${peak.toFixed(0)} MB); ${downloads} study downloads (${downloadedMb.toFixed(0)} MB); ` +
          `RSS growth round 2 → ${rounds}: ${Number.isNaN(growth) ? 'n/a (needs ≥ 3 rounds)' : `${growth.toFixed(0)} MB`}`,
      );
    } finally {
      await node.stop();
    }
  } finally {
    await fsp.rm(work, { recursive: true, force: true });
  }
}
