import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const cli = path.resolve('dist/src/cli.js');

/** `radiant serve` as a child process (a real process to SIGKILL, with its own umask), ready when it says so. */
export function startNodeProcess(dataDir: string, port: number, env: Record<string, string> = {}): Promise<ChildProcess> {
  const child = spawn(process.execPath, [cli, 'serve'], {
    env: { ...process.env, DATA_DIR: dataDir, DICOM_PORT: String(port), HTTP_PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`node did not start: ${out}`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('RadiantAI node ready')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => reject(new Error(`node exited (${code}): ${out}`)));
  });
}

export interface RadiantProcess {
  child: ChildProcess;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** The first JSON log line whose msg is `msg`, once it appears. */
  logLine(msg: string, ms?: number): Promise<Record<string, unknown>>;
  /** Its exit code once it has exited by itself. */
  exited(): Promise<number | null>;
  /** SIGKILL (no cleanup of any kind), resolved once it has exited. */
  kill(): Promise<void>;
  /** SIGTERM, resolved with its exit code. */
  stop(): Promise<number | null>;
}

/** Any `radiant` command (serve, worker, …) as a child process, with its log lines searchable. */
export function spawnRadiant(args: string[], env: Record<string, string>): RadiantProcess {
  const child = spawn(process.execPath, [cli, ...args], {
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const find = (msg: string) => {
    for (const line of out.split('\n')) {
      if (!line.includes(msg)) continue;
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        // The message, or the message followed by its details ("RadiantAI node ready: web UI at …").
        if (parsed.msg === msg || String(parsed.msg).startsWith(`${msg}: `)) return parsed;
      } catch {
        // not a log line
      }
    }
    return undefined;
  };
  return {
    child,
    output: () => out,
    async logLine(msg, ms = 60_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const hit = find(msg);
        if (hit) return hit;
        if (child.exitCode !== null || Date.now() > deadline)
          throw new Error(`no "${msg}" from radiant ${args.join(' ')}: ${out.slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    exited: () => exited,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}
