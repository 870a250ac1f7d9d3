import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ORTHANC_BIN, ORTHANC_DICOMWEB_PLUGIN, startOrthanc, type TestOrthanc } from '../test/helpers/orthanc.js';
import { benchNodeArgs } from './node-flags.js';

/**
 * The HTTP paths a viewer or a PACS waits on, the node against Orthanc 1.10 with its DICOMweb
 * plugin, side by side in one run (`npm run bench`, or `node dist/bench/bench.js http` alone):
 * the corpus chest CT (99 × 512², 52 MB) is imported into a fresh `radiant serve` and uploaded to
 * Orthanc, then, alternating between the two, BENCH_RUNS (≥ 3) rounds of
 *   - WADO-RS whole study, multipart/related; type="application/dicom" (what OHIF and PACS
 *     prefetch ask for; the CT is stored in Explicit VR LE, the default syntax),
 *   - frame 1 of each of the 99 instances, one request after the other,
 *   - WADO-RS study metadata,
 * each printed as a median with the ratio node / Orthanc. Last, the peak RSS of the node while a
 * client downloads a generated study of BENCH_LARGE_MB (default 1024; 0 skips it) MB: the node's
 * resident set before and at its peak (VmHWM, reset just before the download). Both servers are
 * read by the same plain node:http client, which only counts bytes. Temp data is removed.
 */

const RUNS = Math.max(3, Number(process.env.BENCH_RUNS ?? 3));
const LARGE_MB = Number(process.env.BENCH_LARGE_MB ?? 1024);
const cli = path.resolve('dist/src/cli.js');
const fixturesCli = path.resolve('dist/fixtures/cli.js');
const PASSWORD = 'bench-password-not-secret';
const STUDY_ACCEPT = 'multipart/related; type="application/dicom"';
const FRAME_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-4000)));
    c.stderr.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-4000)));
    c.on('close', (code) => resolve({ code, out }));
  });
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

/** GET url, the body counted and dropped; rejects unless 200. */
function get(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, headers }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => (res.statusCode === 200 ? resolve(bytes) : reject(new Error(`${url}: HTTP ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

async function seconds(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

interface Server {
  /** …/dicom-web */
  base: string;
  headers: Record<string, string>;
}

interface Node {
  child: ChildProcess;
  server: Server;
  dataDir: string;
  env: NodeJS.ProcessEnv;
}

async function startNode(ctDir: string): Promise<Node> {
  const dataDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'radiant-bench-http-'));
  const env = { ...process.env, DATA_DIR: dataDir, LOG_LEVEL: 'warn' };
  const created = await run(process.execPath, [cli, 'user', 'create', 'bench', 'admin'], { ...env, RADIANT_USER_PASSWORD: PASSWORD });
  if (created.code !== 0) throw new Error(`user create failed: ${created.out}`);
  const imported = await run(process.execPath, [cli, 'import', ctDir], env);
  if (imported.code !== 0) throw new Error(`import failed: ${imported.out}`);
  const port = await freePort();
  const nodeArgs = benchNodeArgs();
  const child = spawn(process.execPath, [...nodeArgs, cli, 'serve'], {
    env: { ...env, HTTP_PORT: String(port), DICOM_PORT: String(await freePort()) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const origin = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (
      await fetch(`${origin}/healthz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    if (i > 300 || child.exitCode !== null) throw new Error('node did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  const login = await fetch(`${origin}/api/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username: 'bench', password: PASSWORD }),
  });
  const token = ((await login.json()) as { access_token: string }).access_token;
  return { child, dataDir, env, server: { base: `${origin}/dicom-web`, headers: { authorization: `Bearer ${token}` } } };
}

async function stopNode(node: Node): Promise<void> {
  if (node.child.exitCode === null) {
    const exited = new Promise((r) => node.child.once('exit', r));
    node.child.kill('SIGTERM');
    await exited;
  }
  await fsp.rm(node.dataDir, { recursive: true, force: true });
}

async function loadOrthanc(files: string[]): Promise<{ orthanc: TestOrthanc; server: Server }> {
  const orthanc = await startOrthanc({}, { dicomWeb: true });
  for (const f of files) {
    const res = await fetch(`${orthanc.url}/instances`, { method: 'POST', body: await fsp.readFile(f) });
    if (!res.ok) throw new Error(`Orthanc refused ${f}: HTTP ${res.status}`);
    await res.arrayBuffer();
  }
  return { orthanc, server: { base: `${orthanc.url}/dicom-web`, headers: {} } };
}

interface Uids {
  study: string;
  instances: Array<{ series: string; sop: string }>;
}

async function uidsOf(server: Server): Promise<Uids> {
  const studies = (await (await fetch(`${server.base}/studies`, { headers: server.headers })).json()) as Array<
    Record<string, { Value: string[] }>
  >;
  const study = studies[0]!['0020000D']!.Value[0]!;
  const rows = (await (await fetch(`${server.base}/studies/${study}/instances`, { headers: server.headers })).json()) as Array<
    Record<string, { Value: string[] }>
  >;
  return { study, instances: rows.map((r) => ({ series: r['0020000E']!.Value[0]!, sop: r['00080018']!.Value[0]! })) };
}

interface Path {
  label: string;
  go(server: Server, uids: Uids): Promise<unknown>;
}

const PATHS: Path[] = [
  {
    label: 'WADO-RS study, multipart (52 MB)',
    go: (s, u) => get(`${s.base}/studies/${u.study}`, { ...s.headers, accept: STUDY_ACCEPT }),
  },
  {
    label: 'frames/1 × 99, sequential',
    go: async (s, u) => {
      for (const i of u.instances) {
        await get(`${s.base}/studies/${u.study}/series/${i.series}/instances/${i.sop}/frames/1`, { ...s.headers, accept: FRAME_ACCEPT });
      }
    },
  },
  {
    label: 'WADO-RS study metadata',
    go: (s, u) => get(`${s.base}/studies/${u.study}/metadata`, { ...s.headers, accept: 'application/dicom+json' }),
  },
];

function kb(status: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

/** The node's RSS (MB) before and at its peak while `work` runs (VmHWM reset first: no spike between samples is missed). */
async function peakRss(pid: number, work: () => Promise<unknown>): Promise<{ before: number; peak: number }> {
  const status = () => fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
  const before = kb(status(), 'VmRSS');
  await work();
  return { before, peak: kb(status(), 'VmHWM') };
}

/** A generated CT study of about `mb` MB (512² slices) imported into the node; the run's data dir owns it. */
async function largeStudy(node: Node, mb: number): Promise<{ study: string; bytes: number }> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'radiant-bench-large-'));
  try {
    const slices = Math.max(1, Math.round((mb * 1e6) / (512 * 512 * 2)));
    const made = await run(process.execPath, [fixturesCli, dir, '--kind', 'ct', '--slices', String(slices), '--size', '512'], process.env);
    if (made.code !== 0) throw new Error(`fixtures failed: ${made.out}`);
    const study = /study (\S+)/.exec(made.out)![1]!;
    const imported = await run(process.execPath, [cli, 'import', dir], node.env);
    if (imported.code !== 0) throw new Error(`import of the large study failed: ${imported.out}`);
    let bytes = 0;
    for (const f of await fsp.readdir(path.join(dir, 'ct'))) bytes += (await fsp.stat(path.join(dir, 'ct', f))).size;
    return { study, bytes };
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

export async function httpPathsBench(corpus: string): Promise<void> {
  const ctDir = path.join(corpus, 'ct-series-chest-99');
  const files = (await fsp.readdir(ctDir))
    .filter((f) => f.endsWith('.dcm'))
    .sort()
    .map((f) => path.join(ctDir, f));
  const haveOrthanc = fs.existsSync(ORTHANC_BIN) && fs.existsSync(ORTHANC_DICOMWEB_PLUGIN);
  const node = await startNode(ctDir);
  const peer = haveOrthanc ? await loadOrthanc(files) : undefined;
  try {
    const ours = await uidsOf(node.server);
    const theirs = peer ? await uidsOf(peer.server) : undefined;
    const times = PATHS.map(() => ({ node: [] as number[], orthanc: [] as number[] }));
    // One warm-up round (page cache, first metadata build, JIT), then RUNS timed rounds.
    for (let round = 0; round <= RUNS; round++) {
      for (const [k, p] of PATHS.entries()) {
        const a = await seconds(() => p.go(node.server, ours));
        const b = peer && theirs ? await seconds(() => p.go(peer.server, theirs)) : Number.NaN;
        if (round > 0) {
          times[k]!.node.push(a);
          times[k]!.orthanc.push(b);
        }
      }
    }
    console.log(`HTTP paths, chest CT ${files.length} instances; median of ${RUNS} rounds, same run (ratio < 1: the node is faster)`);
    console.log(`  ${'path'.padEnd(34)} ${'RadiantAI'.padStart(10)} ${'Orthanc'.padStart(10)} ${'ratio'.padStart(7)}`);
    for (const [k, p] of PATHS.entries()) {
      const a = median(times[k]!.node);
      const b = median(times[k]!.orthanc);
      const ms = (x: number) => (Number.isNaN(x) ? '—' : `${(x * 1000).toFixed(1)} ms`);
      const ratio = Number.isNaN(b) ? '—' : `${(a / b).toFixed(2)}×`;
      console.log(`  ${p.label.padEnd(34)} ${ms(a).padStart(10)} ${ms(b).padStart(10)} ${ratio.padStart(7)}`);
    }
    if (!peer) console.log('  (Orthanc or its DICOMweb plugin not installed: no comparison)');
  } finally {
    await peer?.orthanc.stop();
  }
  try {
    if (LARGE_MB > 0) {
      const large = await largeStudy(node, LARGE_MB);
      let got = 0;
      const t = await seconds(async () => {
        const rss = await peakRss(node.child.pid!, async () => {
          got = await get(`${node.server.base}/studies/${large.study}`, { ...node.server.headers, accept: STUDY_ACCEPT });
        });
        console.log(
          `  large study download, ${(large.bytes / 1e6).toFixed(0)} MB stored, ${(got / 1e6).toFixed(0)} MB sent: ` +
            `node RSS ${rss.before.toFixed(0)} MB before, peak ${rss.peak.toFixed(0)} MB (+${(rss.peak - rss.before).toFixed(0)} MB)`,
        );
      });
      console.log(`  large study download took ${t.toFixed(2)} s (${(got / 1e6 / t).toFixed(0)} MB/s)`);
    }
  } finally {
    await stopNode(node);
  }
}
