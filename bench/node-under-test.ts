import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { runTool } from '../test/helpers/dcmtk.js';
import { freePort } from '../test/helpers/node.js';
import { benchNodeArgs } from './node-flags.js';

/**
 * A `radiant serve` child process for the scale, load and memory sections: its own DATA_DIR, a
 * bench admin and a token, both ports known, and its resident set read from /proc (VmRSS, VmHWM).
 */

const cli = path.resolve('dist/src/cli.js');
const PASSWORD = 'bench-password-not-secret';

export interface NodeUnderTest {
  child: ChildProcess;
  base: string;
  dicomPort: number;
  auth: Record<string, string>;
  stop(): Promise<void>;
}

export async function startServe(dataDir: string, env: Record<string, string> = {}): Promise<NodeUnderTest> {
  const full = { ...process.env, LOG_LEVEL: 'warn', ...env, DATA_DIR: dataDir };
  const created = await runTool(process.execPath, [cli, 'user', 'create', 'bench', 'admin'], 120_000, {
    ...full,
    RADIANT_USER_PASSWORD: PASSWORD,
  });
  if (created.code !== 0) throw new Error(`user create failed: ${created.stdout}${created.stderr}`);
  const httpPort = await freePort();
  const dicomPort = await freePort();
  const nodeArgs = benchNodeArgs();
  const child = spawn(process.execPath, [...nodeArgs, cli, 'serve'], {
    env: { ...full, HTTP_PORT: String(httpPort), DICOM_PORT: String(dicomPort) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const base = `http://127.0.0.1:${httpPort}`;
  const stop = async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  };
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`node exited: ${err}`);
    const ok = await fetch(`${base}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) {
      const login = await fetch(`${base}/api/auth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ username: 'bench', password: PASSWORD }),
      });
      if (login.status !== 200) throw new Error(`login failed: ${login.status}`);
      const token = ((await login.json()) as { access_token: string }).access_token;
      return { child, base, dicomPort, auth: { authorization: `Bearer ${token}` }, stop };
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  await stop();
  throw new Error(`node did not start: ${err}`);
}

/** VmRSS and VmHWM (peak) of a process in MB, from /proc. */
export function rssMb(pid: number): { rss: number; peak: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
}

/**
 * `copies` copies of a series, each with its own Study and Series Instance UID and new SOP
 * Instance UIDs (DCMTK dcmodify), so concurrent associations store distinct instances.
 */
export async function seriesCopies(files: string[], copies: number, dir: string, tag: string): Promise<string[][]> {
  const out: string[][] = [];
  for (let k = 0; k < copies; k++) {
    const copyDir = path.join(dir, `${tag}${k}`);
    fs.mkdirSync(copyDir, { recursive: true });
    const list = files.map((f) => path.join(copyDir, path.basename(f)));
    for (const [i, f] of files.entries()) fs.copyFileSync(f, list[i]!);
    const root = `1.2.826.0.1.3680043.10.4243.${process.pid}.${Date.now() % 1e6}.${k}`;
    const r = await runTool('dcmodify', ['-nb', '-m', `(0020,000d)=${root}`, '-m', `(0020,000e)=${root}.${tag.length}`, '-gin', ...list]);
    if (r.code !== 0) throw new Error(`dcmodify failed: ${r.stderr}`);
    out.push(list);
  }
  return out;
}
