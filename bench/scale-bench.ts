import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pgLib from 'pg';
import { STUDY_ROOT_FIND } from '../dimse/find.js';
import { runTool } from '../test/helpers/dcmtk.js';
import { clientFind } from '../test/helpers/dimse-client.js';
import { startPostgres, type TestPostgres } from '../test/helpers/postgres.js';
import type { GeneratedIndex } from './index-generator.js';
import { percentile, startServe, type NodeUnderTest } from './node-under-test.js';
import { buildPostgresIndex, buildSqliteIndex, scaleQueries } from './qido-scale.js';

/**
 * `npm run bench:scale`: the scale curve. For each index size (0, 100 000, 1 000 000 and
 * 5 000 000 instances, capped by BENCH_SCALE_MAX, default 1 000 000) on SQLite and on PostgreSQL
 * (a throw-away server started here; BENCH_SCALE_PG=0 skips it): the index is generated
 * (index-generator.ts: 100 instances per study), a fresh node is started on it, the corpus CT is
 * pushed by one storescu association (real ingest on top of the generated rows: instances/s),
 * then each of OHIF's QIDO-RS queries (qido-scale.ts) and three C-FIND queries is timed
 * BENCH_SCALE_REQUESTS (30) times one after the other. One table row per size and database:
 * ingest rate, QIDO p50 (median over the queries) and the worst query's p99, C-FIND's worst p99.
 * A flat curve is the same figures from 100 000 to the largest size. Temp data is removed.
 */

const SIZES = [0, 100_000, 1_000_000, 5_000_000];
const PER_STUDY = 100;

interface Row {
  db: string;
  instances: number;
  buildS: number;
  ingestIps: number;
  qidoP50: number;
  qidoP99: number;
  qidoWorst: string;
  findP99: number;
  findWorst: string;
}

function ctFiles(corpus: string): string[] {
  const dir = path.join(corpus, 'ct-series-chest-99');
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.dcm'))
    .sort()
    .map((f) => path.join(dir, f));
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** The CT's own values, as the sample of an index holding only it. */
async function sampleOf(node: NodeUnderTest): Promise<GeneratedIndex['sample']> {
  const get = async (url: string) =>
    (await (await fetch(`${node.base}/dicom-web${url}`, { headers: node.auth })).json()) as Array<Record<string, { Value?: string[] }>>;
  const [study] = await get('/studies?includefield=00100020');
  const studyInstanceUid = study!['0020000D']!.Value![0]!;
  const [series] = await get(`/studies/${studyInstanceUid}/series`);
  return {
    patientId: study!['00100020']?.Value?.[0] ?? '',
    studyInstanceUid,
    seriesInstanceUid: series!['0020000E']!.Value![0]!,
    requestedProcedureId: 'RP00001',
  };
}

async function measure(db: string, instances: number, buildS: number, node: NodeUnderTest, files: string[], g?: GeneratedIndex) {
  const requests = Number(process.env.BENCH_SCALE_REQUESTS ?? 30);
  const t0 = performance.now();
  const stored = await runTool('storescu', ['-aet', 'SCALE', '-aec', 'RADIANT', '127.0.0.1', String(node.dicomPort), ...files], 600_000);
  const ingestS = (performance.now() - t0) / 1000;
  if (stored.code !== 0) throw new Error(`storescu failed: ${stored.output.slice(-500)}`);
  const sample = g?.sample ?? (await sampleOf(node));
  const queries = scaleQueries({ ...(g ?? { patients: 0, studies: 0, series: 0, instances: 0, ms: 0 }), sample });
  const p50s: number[] = [];
  let qidoP99 = 0;
  let qidoWorst = '';
  for (const q of queries) {
    const url = `${node.base}/dicom-web${q.path}`;
    const get = async () => {
      const res = await fetch(url, { headers: { ...node.auth, accept: 'application/dicom+json' } });
      await res.arrayBuffer();
      if (res.status !== 200 && res.status !== 204) throw new Error(`${q.label}: QIDO-RS answered ${res.status}`);
    };
    for (let i = 0; i < 3; i++) await get();
    const ms: number[] = [];
    for (let i = 0; i < requests; i++) ms.push(await timed(get));
    p50s.push(percentile(ms, 50));
    if (process.env.BENCH_SCALE_VERBOSE)
      console.log(`    ${q.label.padEnd(42)} p50 ${percentile(ms, 50).toFixed(1)} p99 ${percentile(ms, 99).toFixed(1)}`);
    if (percentile(ms, 99) > qidoP99) [qidoP99, qidoWorst] = [percentile(ms, 99), q.label];
  }
  let findP99 = 0;
  let findWorst = '';
  for (const [label, keys] of [
    ['PatientName=SMI*', { PatientName: 'SMI*' }],
    ['PatientID', { PatientID: sample.patientId }],
    ['StudyDate (1 month)', { StudyDate: '20200101-20200131' }],
  ] as const) {
    let matches = 0;
    const find = async () => {
      const answers = await clientFind(node.dicomPort, STUDY_ROOT_FIND, {
        QueryRetrieveLevel: 'STUDY',
        StudyInstanceUID: '',
        PatientName: '',
        PatientID: '',
        StudyDate: '',
        ...keys,
      });
      if (answers.at(-1)?.status !== 0) throw new Error(`C-FIND ${label} ended with ${answers.at(-1)?.status.toString(16)}`);
      matches = answers.length - 1;
    };
    await find();
    const ms: number[] = [];
    for (let i = 0; i < requests; i++) ms.push(await timed(find));
    // A C-FIND answers every match (no paging): its time follows the answer count, which a
    // wildcard's grows with the index; the count is printed beside it.
    if (process.env.BENCH_SCALE_VERBOSE)
      console.log(
        `    C-FIND ${label.padEnd(36)} p50 ${percentile(ms, 50).toFixed(1)} p99 ${percentile(ms, 99).toFixed(1)} (${matches} answers)`,
      );
    if (percentile(ms, 99) > findP99) [findP99, findWorst] = [percentile(ms, 99), `${label}, ${matches} answers`];
  }
  const row: Row = {
    db,
    instances,
    buildS,
    ingestIps: files.length / ingestS,
    qidoP50: percentile(p50s, 50),
    qidoP99,
    qidoWorst,
    findP99,
    findWorst,
  };
  console.log(
    `  ${row.db.padEnd(10)} ${String(row.instances).padStart(9)}  ${row.buildS.toFixed(0).padStart(7)} s  ${row.ingestIps.toFixed(0).padStart(7)} inst/s` +
      `  ${row.qidoP50.toFixed(1).padStart(6)} ms  ${row.qidoP99.toFixed(1).padStart(6)} ms (${row.qidoWorst})  ${row.findP99.toFixed(1).padStart(6)} ms (${row.findWorst})`,
  );
  return row;
}

/** Frees the database's disk before the next, larger size. */
async function dropDatabase(pg: TestPostgres, name: string): Promise<void> {
  const client = new pgLib.Client({ connectionString: pg.url() });
  await client.connect();
  try {
    await client.query(`DROP DATABASE "${name}"`);
  } finally {
    await client.end();
  }
}

export async function scaleBench(corpus: string): Promise<void> {
  const max = Number(process.env.BENCH_SCALE_MAX ?? 1_000_000);
  const sizes = SIZES.filter((s) => s <= max);
  const files = ctFiles(corpus);
  const withPg = process.env.BENCH_SCALE_PG !== '0';
  console.log(
    `Scale curve: sizes ${sizes.join(', ')} instances (BENCH_SCALE_MAX=${max}); ${os.cpus().length} cores; ` +
      `ingest = the ${files.length}-slice CT by one storescu association into the index of that size; ${process.env.BENCH_SCALE_REQUESTS ?? 30} requests per query`,
  );
  console.log(
    `  ${'database'.padEnd(10)} ${'instances'.padStart(9)}  ${'built'.padStart(9)}  ${'ingest'.padStart(14)}  ${'QIDO p50'.padStart(9)}  QIDO p99 (worst query)  C-FIND p99 (worst)`,
  );
  let pg: TestPostgres | undefined;
  const t0 = performance.now();
  try {
    if (withPg) pg = await startPostgres();
    for (const db of withPg ? ['SQLite', 'PostgreSQL'] : ['SQLite']) {
      for (const size of sizes) {
        const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'radiant-bench-scale-'));
        try {
          const dataDir = path.join(work, 'data');
          await fsp.mkdir(dataDir);
          const url = db === 'PostgreSQL' ? await pg!.createDatabase(`scale_${size}`) : undefined;
          let g: GeneratedIndex | undefined;
          if (size > 0) g = url ? await buildPostgresIndex(url, size / PER_STUDY) : await buildSqliteIndex(dataDir, size / PER_STUDY);
          const node = await startServe(dataDir, url ? { DATABASE_URL: url } : {});
          try {
            await measure(db, size, (g?.ms ?? 0) / 1000, node, files, g);
          } finally {
            await node.stop();
          }
          if (url) await dropDatabase(pg!, `scale_${size}`);
        } finally {
          await fsp.rm(work, { recursive: true, force: true });
        }
      }
    }
  } finally {
    await pg?.stop();
  }
  console.log(`  (whole run ${((performance.now() - t0) / 60000).toFixed(1)} min)`);
}
