import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import http from 'node:http';
import { Readable } from 'node:stream';
import { buildPostgresIndex, buildSqliteIndex, scaleQueries } from './qido-scale.js';
import dimse from 'dcmjs-dimse';
import { STUDY_ROOT_FIND } from '../dimse/find.js';
import { clientFind } from '../test/helpers/dimse-client.js';
import { ORTHANC_BIN, startOrthanc } from '../test/helpers/orthanc.js';
import { aiBench } from './ai-bench.js';
import { dimsePathsBench, orthancStoreSeconds } from './dimse-paths-bench.js';
import { engineBench } from './engine-bench.js';
import { httpPathsBench } from './http-paths-bench.js';
import { memorySoakBench, queryUnderLoadBench } from './load-bench.js';
import { loopBench } from './loop-bench.js';
import { pipelineBench } from './pipeline-bench.js';
import { scaleBench } from './scale-bench.js';
import { benchNodeArgs } from './node-flags.js';

/**
 * `npm run bench`: C-STORE throughput with DCMTK storescu (1 and 4 concurrent associations),
 * `radiant import` throughput, STOW-RS throughput (1 and 4 concurrent requests), and the read side
 * (WADO-RS study, transcoded study, metadata, frames, rendered, QIDO-RS and C-FIND latency), C-MOVE
 * to a DCMTK storescp and C-GET with DCMTK getscu, each on a
 * fresh node, median of RUNS runs. Prints figures only; nothing here asserts a speed.
 *
 * Then QIDO-RS at scale (qido-scale.ts): an index of BENCH_QIDO_STUDIES studies (default 10 000,
 * 100 instances each: 1 000 000 instances; 0 skips it) generated straight into SQLite, and into
 * PostgreSQL too when BENCH_QIDO_PG_URL names an empty database; p50/p99 of OHIF's queries over
 * HTTP. `node dist/bench/bench.js qido` runs only that section; `node dist/bench/bench.js engine`
 * runs only the MedGemma engine section (bench/engine-bench.ts), `pipeline` the analysis pipeline
 * (bench/pipeline-bench.ts), `loop` the closed loop's latency, last instance received → SR and PDF
 * at a PACS (bench/loop-bench.ts); all also run at the end. `ai` (npm run bench:ai) runs the AI latency
 * bench with a model of MedGemma 4B's shapes (bench/ai-bench.ts); it is not part of the full run (hours on a CPU).
 */

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const corpus = path.resolve(process.env.RADIANT_CORPUS ?? path.join(process.cwd(), '..', 'shared', 'dicom'));
const ctDir = path.join(corpus, 'ct-series-chest-99');
const cli = path.resolve('dist/src/cli.js');

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    c.on('close', (code) => resolve({ code, out }));
  });
}

/** Extra node flags for the node under test, e.g. BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/p". */
const nodeArgs = benchNodeArgs();

async function startNode(dataDir: string, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...nodeArgs, cli, 'serve'], {
    env: { ...process.env, DATA_DIR: dataDir, DICOM_PORT: String(port), HTTP_PORT: '0', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (let i = 0; i < 200; i++) {
    const r = await run('echoscu', ['-aec', 'RADIANT', '127.0.0.1', String(port)]);
    if (r.code === 0) return child;
    await new Promise((res) => setTimeout(res, 100));
  }
  child.kill('SIGKILL');
  throw new Error('node did not start');
}

async function stopNode(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/**
 * Copies of the CT with other Study/Series/SOP UIDs (same length, so the encoding is unchanged),
 * so that concurrent associations store distinct instances rather than overwrite each other.
 */
async function makeCopies(files: string[], copies: number, dir: string): Promise<string[][]> {
  const out: string[][] = [files];
  const uidOf = (buf: Buffer, tag: Buffer): string => {
    const at = buf.indexOf(tag, 132 + 200);
    const len = buf.readUInt16LE(at + 6);
    return buf.toString('latin1', at + 8, at + 8 + len).replace(/\0+$/, '');
  };
  const studyTag = Buffer.from([0x20, 0x00, 0x0d, 0x00, 0x55, 0x49]);
  const seriesTag = Buffer.from([0x20, 0x00, 0x0e, 0x00, 0x55, 0x49]);
  const sopTag = Buffer.from([0x08, 0x00, 0x18, 0x00, 0x55, 0x49]);
  for (let k = 1; k < copies; k++) {
    const copyDir = path.join(dir, `copy${k}`);
    await fsp.mkdir(copyDir, { recursive: true });
    const list: string[] = [];
    for (const f of files) {
      const buf = await fsp.readFile(f);
      for (const tag of [studyTag, seriesTag, sopTag]) {
        const uid = uidOf(buf, tag);
        // Change the last digit: same length, and a last digit never makes a leading zero
        // (a one-digit component may be "0").
        const next = Buffer.from(uid.slice(0, -1) + String((Number(uid.at(-1)) + k) % 10), 'latin1');
        const from = Buffer.from(uid, 'latin1');
        for (let at = buf.indexOf(from); at >= 0; at = buf.indexOf(from, at + from.length)) next.copy(buf, at);
      }
      const p = path.join(copyDir, path.basename(f));
      await fsp.writeFile(p, buf);
      list.push(p);
    }
    out.push(list);
  }
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

interface Figure {
  instances: number;
  bytes: number;
  seconds: number[];
}

function report(label: string, f: Figure, extra = ''): void {
  const s = median(f.seconds);
  const ips = f.instances / s;
  console.log(
    `${label.padEnd(30)} ${String(f.instances).padStart(4)} instances  ${s.toFixed(2).padStart(6)} s  ` +
      `${ips.toFixed(1).padStart(7)} inst/s  ${(f.bytes / 1e6 / s).toFixed(1).padStart(6)} MB/s` +
      `   runs: ${f.seconds.map((x) => x.toFixed(2)).join(' ')}${extra}`,
  );
}

async function storeRun(sets: string[][]): Promise<number> {
  const dataDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'radiant-bench-'));
  const port = await freePort();
  const node = await startNode(dataDir, port);
  try {
    const t0 = process.hrtime.bigint();
    const results = await Promise.all(
      sets.map((files, i) => run('storescu', ['-aet', `BENCH${i}`, '-aec', 'RADIANT', '127.0.0.1', String(port), ...files])),
    );
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    for (const r of results) if (r.code !== 0) throw new Error(`storescu failed: ${r.out.slice(-500)}`);
    return secs;
  } finally {
    await stopNode(node);
    await fsp.rm(dataDir, { recursive: true, force: true });
  }
}

/** Seconds the import itself reported (its summary line), without process start-up. */
const importInner: number[] = [];

async function importRun(dir: string): Promise<number> {
  const dataDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'radiant-bench-'));
  try {
    // Migrate first so the timing is the import alone.
    await run(process.execPath, [cli, 'migrate'], { ...process.env, DATA_DIR: dataDir });
    const t0 = process.hrtime.bigint();
    const r = await run(process.execPath, [cli, 'import', dir], { ...process.env, DATA_DIR: dataDir });
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.code !== 0) throw new Error(`import failed: ${r.out.slice(-500)}`);
    const inner = / in ([0-9.]+) s /.exec(r.out);
    if (inner) importInner.push(Number(inner[1]));
    return secs;
  } finally {
    await fsp.rm(dataDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// STOW-RS: the same CT in one multipart/related request, and 4 distinct copies in 4 concurrent
// requests, against a fresh `radiant serve` with a bench user; the client streams the files.

const STOW_BOUNDARY = 'radiant-bench-boundary';
const BENCH_PASSWORD = 'bench-password-not-secret';

async function startHttpNode(
  dataDir: string,
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<{ child: ChildProcess; base: string; dicomPort: number }> {
  const env = { ...process.env, ...extraEnv, DATA_DIR: dataDir, LOG_LEVEL: 'warn' };
  const created = await run(process.execPath, [cli, 'user', 'create', 'bench', 'admin'], { ...env, RADIANT_USER_PASSWORD: BENCH_PASSWORD });
  if (created.code !== 0) throw new Error(`user create failed: ${created.out.slice(-500)}`);
  const httpPort = await freePort();
  const dicomPort = await freePort();
  const child = spawn(process.execPath, [...nodeArgs, cli, 'serve'], {
    env: { ...env, HTTP_PORT: String(httpPort), DICOM_PORT: String(dicomPort) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const base = `http://127.0.0.1:${httpPort}`;
  for (let i = 0; i < 200; i++) {
    const ok = await fetch(`${base}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return { child, base, dicomPort };
    await new Promise((res) => setTimeout(res, 100));
  }
  child.kill('SIGKILL');
  throw new Error('node did not start (HTTP)');
}

async function benchToken(base: string): Promise<string> {
  const login = await fetch(`${base}/api/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username: 'bench', password: BENCH_PASSWORD }),
  });
  if (login.status !== 200) throw new Error(`login failed: ${login.status} ${await login.text()}`);
  return ((await login.json()) as { access_token: string }).access_token;
}

function stowPost(base: string, token: string, files: string[], sizes: number[]): Promise<{ status: number; body: string }> {
  const head = (i: number) => Buffer.from(`${i ? '\r\n' : ''}--${STOW_BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n`, 'latin1');
  const tail = Buffer.from(`\r\n--${STOW_BOUNDARY}--\r\n`, 'latin1');
  const length = files.reduce((a, _, i) => a + head(i).length + sizes[i]!, 0) + tail.length;
  async function* body() {
    for (const [i, f] of files.entries()) {
      yield head(i);
      yield* fs.createReadStream(f);
    }
    yield tail;
  }
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}/dicom-web/studies`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': `multipart/related; type="application/dicom"; boundary=${STOW_BOUNDARY}`,
        'content-length': String(length),
        accept: 'application/dicom+json',
      },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    Readable.from(body()).pipe(req);
  });
}

/**
 * Seconds a fresh Orthanc 1.10 takes to receive `sets` through its REST upload (POST /instances,
 * one instance a request: its own way in over HTTP), one client per set, all at once; undefined
 * without Orthanc. The STOW-RS 4-client row is compared with it.
 */
async function orthancRestUploadSeconds(sets: string[][]): Promise<number | undefined> {
  if (!fs.existsSync(ORTHANC_BIN)) return undefined;
  const bodies = await Promise.all(sets.map((files) => Promise.all(files.map((f) => fsp.readFile(f)))));
  const orthanc = await startOrthanc({});
  try {
    const t0 = process.hrtime.bigint();
    await Promise.all(
      bodies.map(async (list) => {
        for (const body of list) {
          const res = await fetch(`${orthanc.url}/instances`, { method: 'POST', body });
          await res.arrayBuffer();
          if (!res.ok) throw new Error(`Orthanc POST /instances answered ${res.status}`);
        }
      }),
    );
    return Number(process.hrtime.bigint() - t0) / 1e9;
  } finally {
    await orthanc.stop();
  }
}

/** The STOW-RS rows alone (`bench.js stow`), with Orthanc's REST upload in the same run. */
async function stowRows(files: string[], sets: string[][], bytes: number): Promise<void> {
  const stowOne: Figure = { instances: files.length, bytes, seconds: [] };
  const stowFour: Figure = { instances: files.length * 4, bytes: bytes * 4, seconds: [] };
  const orthancRest: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    stowOne.seconds.push(await stowRun([files]));
    stowFour.seconds.push(await stowRun(sets));
    const o = await orthancRestUploadSeconds(sets);
    if (o !== undefined) orthancRest.push(o);
  }
  report('STOW-RS, 1 request', stowOne);
  const orthancIps = orthancRest.length ? stowFour.instances / median(orthancRest) : undefined;
  const ratio = orthancIps && stowFour.instances / median(stowFour.seconds) / orthancIps;
  report(
    'STOW-RS, 4 concurrent requests',
    stowFour,
    ratio
      ? `   (${ratio.toFixed(2)}× the instances/s of Orthanc 1.10's REST upload, ${orthancIps!.toFixed(1)} inst/s, 4 clients, same run; goal ≥ 2×)`
      : '',
  );
}

async function stowRun(sets: string[][]): Promise<number> {
  const dataDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'radiant-bench-'));
  const { child, base } = await startHttpNode(dataDir);
  try {
    const token = await benchToken(base);
    const sizes = await Promise.all(sets.map((files) => Promise.all(files.map(async (f) => (await fsp.stat(f)).size))));
    const t0 = process.hrtime.bigint();
    const results = await Promise.all(sets.map((files, i) => stowPost(base, token, files, sizes[i]!)));
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    for (const [i, r] of results.entries()) {
      if (r.status !== 200) throw new Error(`STOW-RS answered ${r.status}: ${r.body.slice(0, 500)}`);
      const refs = (JSON.parse(r.body) as Record<string, { Value?: unknown[] }>)['00081199']?.Value?.length ?? 0;
      if (refs !== sets[i]!.length) throw new Error(`STOW-RS stored ${refs} of ${sets[i]!.length}`);
    }
    return secs;
  } finally {
    await stopNode(child);
    await fsp.rm(dataDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// The read side on the CT stored by STOW-RS: WADO-RS whole-study retrieve, series metadata (first
// build and cached), QIDO-RS latency on this small index, and frames/s (sequential and 8 at once).

interface ReadFigures {
  studyMBps: number;
  transcodedPerSec: number;
  transcodedRatio: number;
  metadataFirstMs: number;
  metadataCachedMs: number;
  qidoP50Ms: number;
  qidoP99Ms: number;
  framesSeq: number;
  frames8: number;
  renderedPerSec: number;
  cfindNameP50Ms: number;
  cfindNameP99Ms: number;
  cfindUidP50Ms: number;
  cfindUidP99Ms: number;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function readRun(files: string[]): Promise<ReadFigures> {
  const dataDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'radiant-bench-'));
  const { child, base, dicomPort } = await startHttpNode(dataDir);
  try {
    const token = await benchToken(base);
    const auth = { authorization: `Bearer ${token}` };
    const sizes = await Promise.all(files.map(async (f) => (await fsp.stat(f)).size));
    const stored = await stowPost(base, token, files, sizes);
    if (stored.status !== 200) throw new Error(`STOW-RS answered ${stored.status}`);
    const refs = (JSON.parse(stored.body) as Record<string, { Value?: Array<Record<string, { Value?: string[] }>> }>)['00081199']!.Value!;
    const instanceUrls = refs.map((r) => r['00081190']!.Value![0]!);
    const studyUrl = instanceUrls[0]!.replace(/\/series\/.*$/, '');
    const seriesUrl = instanceUrls[0]!.replace(/\/instances\/.*$/, '');

    let bytes = 0;
    const studyMs = await timed(async () => {
      const res = await fetch(studyUrl, { headers: { ...auth, accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' } });
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) bytes += chunk.length;
    });
    // Transcoded on the way out: the CT (explicit VR LE) as lossless JPEG-LS, then back from it.
    let jlsBytes = 0;
    const jlsMs = await timed(async () => {
      const res = await fetch(studyUrl, {
        headers: { ...auth, accept: 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.80' },
      });
      if (res.status !== 200) throw new Error(`transcoded retrieve answered ${res.status}`);
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) jlsBytes += chunk.length;
    });
    const metadata = async () => {
      const res = await fetch(`${seriesUrl}/metadata`, { headers: { ...auth, accept: 'application/dicom+json' } });
      await res.arrayBuffer();
    };
    const metadataFirstMs = await timed(metadata);
    const cached: number[] = [];
    for (let i = 0; i < 5; i++) cached.push(await timed(metadata));

    const qido: number[] = [];
    for (let i = 0; i < 200; i++) {
      qido.push(
        await timed(async () => {
          const res = await fetch(`${base}/dicom-web/studies?limit=101&fuzzymatching=false&StudyDate=19700101-20991231`, { headers: auth });
          await res.arrayBuffer();
        }),
      );
    }

    // C-FIND, as findscu does it: one association per query (associate, C-FIND, release), study
    // level, Study Root, by PatientName wildcard and by StudyInstanceUID, on the same index.
    const studyUid = studyUrl.replace(/^.*\/studies\//, '');
    const studyRow = (await (await fetch(`${base}/dicom-web/studies?StudyInstanceUID=${studyUid}`, { headers: auth })).json()) as Array<
      Record<string, { Value?: Array<{ Alphabetic?: string }> }>
    >;
    const initial = (studyRow[0]?.['00100010']?.Value?.[0]?.Alphabetic ?? 'A').slice(0, 1);
    const cfind = async (keys: Record<string, string>) => {
      const answers = await clientFind(dicomPort, STUDY_ROOT_FIND, {
        QueryRetrieveLevel: 'STUDY',
        StudyInstanceUID: '',
        PatientName: '',
        StudyDate: '',
        ...keys,
      });
      if (answers.length !== 2 || answers[1]!.status !== 0)
        throw new Error(`C-FIND answered ${answers.map((a) => a.status.toString(16)).join(',')}`);
    };
    const byName: number[] = [];
    const byUid: number[] = [];
    for (let i = 0; i < 200; i++) {
      byName.push(await timed(() => cfind({ PatientName: `${initial}*` })));
      byUid.push(await timed(() => cfind({ StudyInstanceUID: studyUid })));
    }

    const frame = async (url: string) => {
      const res = await fetch(`${url}/frames/1`, {
        headers: { ...auth, accept: 'multipart/related; type=application/octet-stream; transfer-syntax=*' },
      });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`frames answered ${res.status}`);
    };
    const seqMs = await timed(async () => {
      for (const u of instanceUrls) await frame(u);
    });
    const parMs = await timed(async () => {
      const queue = [...instanceUrls];
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          for (let u = queue.shift(); u; u = queue.shift()) await frame(u);
        }),
      );
    });
    const rendered = instanceUrls.slice(0, 30);
    const renderMs = await timed(async () => {
      for (const u of rendered) {
        const res = await fetch(`${u}/rendered`, { headers: { ...auth, accept: 'image/jpeg' } });
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`rendered answered ${res.status}`);
      }
    });
    return {
      renderedPerSec: rendered.length / (renderMs / 1000),
      studyMBps: bytes / 1e6 / (studyMs / 1000),
      transcodedPerSec: instanceUrls.length / (jlsMs / 1000),
      transcodedRatio: bytes / Math.max(1, jlsBytes),
      metadataFirstMs,
      metadataCachedMs: median(cached),
      qidoP50Ms: percentile(qido, 50),
      qidoP99Ms: percentile(qido, 99),
      framesSeq: instanceUrls.length / (seqMs / 1000),
      frames8: instanceUrls.length / (parMs / 1000),
      cfindNameP50Ms: percentile(byName, 50),
      cfindNameP99Ms: percentile(byName, 99),
      cfindUidP50Ms: percentile(byUid, 50),
      cfindUidP99Ms: percentile(byUid, 99),
    };
  } finally {
    await stopNode(child);
    await fsp.rm(dataDir, { recursive: true, force: true });
  }
}

const QIDO_STUDIES = Number(process.env.BENCH_QIDO_STUDIES ?? 10000);
const QIDO_REQUESTS = Number(process.env.BENCH_QIDO_REQUESTS ?? 100);

/** p50/p99 of each scale query against a node on `dataDir` (and `env`, for PostgreSQL). */
async function qidoScaleRun(
  label: string,
  dataDir: string,
  build: () => Promise<Awaited<ReturnType<typeof buildSqliteIndex>>>,
  env: NodeJS.ProcessEnv = {},
): Promise<void> {
  const g = await build();
  console.log(
    `QIDO-RS at scale (${label}): index of ${g.patients} patients, ${g.studies} studies, ${g.series} series, ${g.instances} instances generated in ${(g.ms / 1000).toFixed(1)} s`,
  );
  const node = await startHttpNode(dataDir, env);
  try {
    const auth = { authorization: `Bearer ${await benchToken(node.base)}`, accept: 'application/dicom+json' };
    for (const q of scaleQueries(g)) {
      const url = `${node.base}/dicom-web${q.path}`;
      let count = 0;
      const get = async () => {
        const res = await fetch(url, { headers: auth });
        if (res.status !== 200) throw new Error(`${q.label}: QIDO-RS answered ${res.status}`);
        count = ((await res.json()) as unknown[]).length;
      };
      for (let i = 0; i < 5; i++) await get();
      const ms: number[] = [];
      for (let i = 0; i < QIDO_REQUESTS; i++) ms.push(await timed(get));
      console.log(
        `  ${q.label.padEnd(42)} p50 ${percentile(ms, 50).toFixed(1).padStart(6)} ms, p99 ${percentile(ms, 99).toFixed(1).padStart(6)} ms  (${count} results)`,
      );
    }
    // C-FIND on the same index, one association per query as findscu does it.
    for (const [label, keys] of [
      ['C-FIND STUDY, PatientName=SMI*', { PatientName: 'SMI*' }],
      ['C-FIND STUDY, PatientID', { PatientID: g.sample.patientId }],
      ['C-FIND STUDY, StudyDate range (1 month)', { StudyDate: '20200101-20200131' }],
      ['C-FIND STUDY, StudyInstanceUID', { StudyInstanceUID: g.sample.studyInstanceUid }],
    ] as const) {
      let count = 0;
      const find = async () => {
        const answers = await clientFind(node.dicomPort, STUDY_ROOT_FIND, {
          QueryRetrieveLevel: 'STUDY',
          StudyInstanceUID: '',
          PatientName: '',
          PatientID: '',
          StudyDate: '',
          ...keys,
        });
        if (answers.at(-1)?.status !== 0) throw new Error(`${label}: C-FIND ended with ${answers.at(-1)?.status.toString(16)}`);
        count = answers.length - 1;
      };
      for (let i = 0; i < 3; i++) await find();
      const ms: number[] = [];
      for (let i = 0; i < QIDO_REQUESTS; i++) ms.push(await timed(find));
      console.log(
        `  ${label.padEnd(42)} p50 ${percentile(ms, 50).toFixed(1).padStart(6)} ms, p99 ${percentile(ms, 99).toFixed(1).padStart(6)} ms  (${count} results)`,
      );
    }
  } finally {
    await stopNode(node.child);
  }
}

async function qidoScale(): Promise<void> {
  if (!(QIDO_STUDIES > 0)) return;
  const dataDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'radiant-bench-qido-'));
  try {
    await qidoScaleRun('SQLite', dataDir, () => buildSqliteIndex(dataDir, QIDO_STUDIES));
    const pg = process.env.BENCH_QIDO_PG_URL;
    if (pg) await qidoScaleRun('PostgreSQL', dataDir, () => buildPostgresIndex(pg, QIDO_STUDIES), { DATABASE_URL: pg });
  } finally {
    await fsp.rm(dataDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// C-MOVE: the CT stored on a fresh `radiant serve`, then moved (study level, DCMTK movescu) to a
// DCMTK storescp writing to disk, and retrieved with DCMTK getscu (C-GET on the same association).

async function moveRun(files: string[]): Promise<{ move: number; get: number }> {
  const dataDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'radiant-bench-'));
  const destDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'radiant-bench-dest-'));
  const getDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'radiant-bench-get-'));
  const { child, base, dicomPort } = await startHttpNode(dataDir);
  const destPort = await freePort();
  const dest = spawn('storescp', ['-od', destDir, '-aet', 'BENCHDEST', String(destPort)], { stdio: 'ignore' });
  try {
    const stored = await run('storescu', ['-aec', 'RADIANT', '127.0.0.1', String(dicomPort), ...files]);
    if (stored.code !== 0) throw new Error(`storescu failed: ${stored.out.slice(-500)}`);
    const token = await benchToken(base);
    const reg = await fetch(`${base}/api/nodes`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ae_title: 'BENCHDEST', host: '127.0.0.1', port: destPort }),
    });
    if (reg.status !== 201) throw new Error(`node registration failed: ${reg.status} ${await reg.text()}`);
    const studies = (await (await fetch(`${base}/api/studies`, { headers: { authorization: `Bearer ${token}` } })).json()) as {
      items: Array<{ study_instance_uid: string }>;
    };
    const study = studies.items[0]!.study_instance_uid;
    const keys = ['-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${study}`];
    let t0 = process.hrtime.bigint();
    const moved = await run('movescu', [
      '-S',
      '-aet',
      'BENCHMOVE',
      '-aec',
      'RADIANT',
      '-aem',
      'BENCHDEST',
      ...keys,
      '127.0.0.1',
      String(dicomPort),
    ]);
    const move = Number(process.hrtime.bigint() - t0) / 1e9;
    const received = (await fsp.readdir(destDir)).length;
    if (moved.code !== 0 || received !== files.length)
      throw new Error(`movescu: ${received} of ${files.length} arrived: ${moved.out.slice(-500)}`);
    t0 = process.hrtime.bigint();
    const got = await run('getscu', ['-S', '-aet', 'BENCHGET', '-aec', 'RADIANT', '-od', getDir, ...keys, '127.0.0.1', String(dicomPort)]);
    const get = Number(process.hrtime.bigint() - t0) / 1e9;
    const gotten = (await fsp.readdir(getDir)).length;
    if (got.code !== 0 || gotten !== files.length) throw new Error(`getscu: ${gotten} of ${files.length} arrived: ${got.out.slice(-500)}`);
    return { move, get };
  } finally {
    dest.kill('SIGTERM');
    await stopNode(child);
    for (const d of [dataDir, destDir, getDir]) await fsp.rm(d, { recursive: true, force: true });
  }
}

/**
 * The same C-FIND and C-MOVE against Orthanc 1.10 (Debian package), when it is installed: the CT
 * stored into Orthanc, C-FIND latency by PatientName and StudyInstanceUID (dcmjs-dimse Client,
 * one association per query), and C-MOVE of the study to a DCMTK storescp.
 */
async function orthancRun(files: string[]): Promise<{ findNameMs: number[]; findUidMs: number[]; move: number } | undefined> {
  if (!fs.existsSync(ORTHANC_BIN)) return undefined;
  const destDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'radiant-bench-odest-'));
  const destPort = await freePort();
  const orthanc = await startOrthanc({ benchdest: { aeTitle: 'BENCHDEST', port: destPort } });
  const dest = spawn('storescp', ['-od', destDir, '-aet', 'BENCHDEST', String(destPort)], { stdio: 'ignore' });
  try {
    const stored = await run('storescu', ['-aec', orthanc.aeTitle, '127.0.0.1', String(orthanc.dicomPort), ...files]);
    if (stored.code !== 0) throw new Error(`storescu to Orthanc failed: ${stored.out.slice(-500)}`);
    const [studyId] = await orthanc.rest<string[]>('GET', '/studies');
    const tags = await orthanc.rest<{ MainDicomTags: Record<string, string>; PatientMainDicomTags: Record<string, string> }>(
      'GET',
      `/studies/${studyId}`,
    );
    const study = tags.MainDicomTags.StudyInstanceUID!;
    const initial = (tags.PatientMainDicomTags.PatientName ?? 'A').slice(0, 1);
    const find = async (keys: Record<string, string>) => {
      const answers = await clientFind(
        orthanc.dicomPort,
        STUDY_ROOT_FIND,
        { QueryRetrieveLevel: 'STUDY', StudyInstanceUID: '', PatientName: '', StudyDate: '', ...keys },
        orthanc.aeTitle,
      );
      if (answers.at(-1)?.status !== 0) throw new Error('Orthanc C-FIND failed');
    };
    const findNameMs: number[] = [];
    const findUidMs: number[] = [];
    for (let i = 0; i < 200; i++) {
      findNameMs.push(await timed(() => find({ PatientName: `${initial}*` })));
      findUidMs.push(await timed(() => find({ StudyInstanceUID: study })));
    }
    const t0 = process.hrtime.bigint();
    const moved = await run('movescu', [
      '-S',
      '-aet',
      'BENCHMOVE',
      '-aec',
      orthanc.aeTitle,
      '-aem',
      'BENCHDEST',
      '-k',
      'QueryRetrieveLevel=STUDY',
      '-k',
      `StudyInstanceUID=${study}`,
      '127.0.0.1',
      String(orthanc.dicomPort),
    ]);
    const move = Number(process.hrtime.bigint() - t0) / 1e9;
    const received = (await fsp.readdir(destDir)).length;
    if (moved.code !== 0 || received !== files.length) throw new Error(`movescu from Orthanc: ${received} of ${files.length} arrived`);
    return { findNameMs, findUidMs, move };
  } finally {
    dest.kill('SIGTERM');
    await orthanc.stop();
    await fsp.rm(destDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  dimse.log.setLevel('silent');
  if (process.argv[2] === 'qido') return qidoScale();
  if (process.argv[2] === 'engine') return engineBench();
  if (process.argv[2] === 'pipeline') return pipelineBench(corpus);
  if (process.argv[2] === 'loop') return loopBench(corpus);
  if (process.argv[2] === 'ai') return aiBench(corpus);
  if (process.argv[2] === 'http') return httpPathsBench(corpus);
  if (process.argv[2] === 'scale') return scaleBench(corpus);
  if (process.argv[2] === 'load') return queryUnderLoadBench(corpus);
  if (process.argv[2] === 'memory') return memorySoakBench(corpus);
  if (!fs.existsSync(ctDir)) throw new Error(`corpus CT not found at ${ctDir}: set RADIANT_CORPUS`);
  const files = (await fsp.readdir(ctDir))
    .filter((f) => f.endsWith('.dcm'))
    .sort()
    .map((f) => path.join(ctDir, f));
  const bytes = (await Promise.all(files.map((f) => fsp.stat(f)))).reduce((a, s) => a + s.size, 0);
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'radiant-bench-copies-'));
  try {
    const sets = await makeCopies(files, 4, work);
    if (process.argv[2] === 'dimse') return await dimsePathsBench(files, sets, RUNS).then(() => undefined);
    if (process.argv[2] === 'stow') return await stowRows(files, sets, bytes);
    console.log(
      `RadiantAI bench: chest CT ${files.length} × 512², ${(bytes / 1e6).toFixed(1)} MB; ${os.cpus().length} cores; median of ${RUNS}`,
    );
    const one: Figure = { instances: files.length, bytes, seconds: [] };
    const four: Figure = { instances: files.length * 4, bytes: bytes * 4, seconds: [] };
    const imp: Figure = { instances: files.length, bytes, seconds: [] };
    // Orthanc 1.10 receiving the same 4 associations, in the same run (fresh each time).
    const orthancFour: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      one.seconds.push(await storeRun([files]));
      four.seconds.push(await storeRun(sets));
      const o = await orthancStoreSeconds(sets);
      if (o !== undefined) orthancFour.push(o);
      imp.seconds.push(await importRun(ctDir));
    }
    report('C-STORE, 1 association', one);
    const orthancIps = orthancFour.length ? four.instances / median(orthancFour) : undefined;
    const ratio = orthancIps && four.instances / median(four.seconds) / orthancIps;
    report(
      'C-STORE, 4 associations',
      four,
      ratio ? `   (${ratio.toFixed(2)}× Orthanc 1.10's ${orthancIps!.toFixed(1)} inst/s, same run)` : '',
    );
    report('radiant import (whole process)', imp);
    if (importInner.length) report('radiant import (ingest only)', { ...imp, seconds: importInner });

    await stowRows(files, sets, bytes);

    const reads: ReadFigures[] = [];
    for (let i = 0; i < RUNS; i++) reads.push(await readRun(files));
    const m = (k: keyof ReadFigures) => median(reads.map((r) => r[k]));
    console.log(`WADO-RS study retrieve           ${m('studyMBps').toFixed(1)} MB/s (99 instances, as stored)`);
    console.log(
      `WADO-RS study, transcoded        ${m('transcodedPerSec').toFixed(1)} instances/s to JPEG-LS lossless (${m('transcodedRatio').toFixed(2)}:1 smaller)`,
    );
    console.log(
      `WADO-RS series metadata          ${m('metadataFirstMs').toFixed(0)} ms first build, ${m('metadataCachedMs').toFixed(1)} ms cached (99 instances)`,
    );
    console.log(
      `QIDO-RS /studies (1-study index)  p50 ${m('qidoP50Ms').toFixed(1)} ms, p99 ${m('qidoP99Ms').toFixed(1)} ms (200 requests)`,
    );
    console.log(
      `WADO-RS frames (512² CT)         ${m('framesSeq').toFixed(0)} frames/s sequential, ${m('frames8').toFixed(0)} frames/s 8 at once`,
    );
    console.log(`WADO-RS rendered (512² CT, JPEG)  ${m('renderedPerSec').toFixed(1)} images/s sequential`);
    console.log(
      `C-FIND STUDY, PatientName=X*      p50 ${m('cfindNameP50Ms').toFixed(1)} ms, p99 ${m('cfindNameP99Ms').toFixed(1)} ms (200 associations, dcmjs-dimse Client)`,
    );
    console.log(
      `C-FIND STUDY, StudyInstanceUID    p50 ${m('cfindUidP50Ms').toFixed(1)} ms, p99 ${m('cfindUidP99Ms').toFixed(1)} ms (200 associations, dcmjs-dimse Client)`,
    );

    const moveFig: Figure = { instances: files.length, bytes, seconds: [] };
    const getFig: Figure = { instances: files.length, bytes, seconds: [] };
    for (let i = 0; i < RUNS; i++) {
      const r = await moveRun(files);
      moveFig.seconds.push(r.move);
      getFig.seconds.push(r.get);
    }
    report('C-MOVE to DCMTK storescp', moveFig);
    report('C-GET, DCMTK getscu', getFig);

    const o = await orthancRun(files);
    if (o) {
      console.log(
        `Orthanc 1.10, same machine: C-FIND STUDY PatientName=X* p50 ${percentile(o.findNameMs, 50).toFixed(1)} ms, p99 ${percentile(o.findNameMs, 99).toFixed(1)} ms; StudyInstanceUID p50 ${percentile(o.findUidMs, 50).toFixed(1)} ms, p99 ${percentile(o.findUidMs, 99).toFixed(1)} ms`,
      );
      report('Orthanc 1.10 C-MOVE to storescp', { instances: files.length, bytes, seconds: [o.move] });
    } else console.log('Orthanc not installed: no comparison figures');
    await dimsePathsBench(files, sets, RUNS);
    await httpPathsBench(corpus);
  } finally {
    await fsp.rm(work, { recursive: true, force: true });
  }
  await qidoScale();
  await engineBench();
  await pipelineBench(corpus);
  await loopBench(corpus);
}

main().catch((err: unknown) => {
  console.error(`bench: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
