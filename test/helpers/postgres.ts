import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { freePort, tempDir } from './node.js';

/**
 * A real, throw-away PostgreSQL server for the tests: initdb into a temp directory, listen on
 * 127.0.0.1 on a free port. PostgreSQL refuses to run as root, so under root (CI) it runs as the
 * `postgres` user the Debian package creates.
 */
export interface TestPostgres {
  url(database?: string): string;
  createDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
  /** Stop the server but keep its data (an outage); `restart` brings it back on the same port. */
  halt(): Promise<void>;
  restart(): Promise<void>;
}

function binDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root) ? fs.readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) {
    const dir = path.join(root, v, 'bin');
    if (fs.existsSync(path.join(dir, 'postgres'))) return dir;
  }
  throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql (.ci/run installs postgresql)');
}

export async function startPostgres(): Promise<TestPostgres> {
  const bin = binDir();
  const dir = await tempDir('pg');
  const data = path.join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  const wrap = (cmd: string, args: string[]): [string, string[]] =>
    asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    await fsp.chown(dir, uid, gid);
  }
  const [initCmd, initArgs] = wrap(path.join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'radiant', '-E', 'UTF8', '--no-sync']);
  execFileSync(initCmd, initArgs, { stdio: 'pipe' });
  const port = await freePort();
  const [cmd, args] = wrap(path.join(bin, 'postgres'), [
    '-D',
    data,
    '-p',
    String(port),
    '-k',
    dir,
    '-c',
    'listen_addresses=127.0.0.1',
    // Durability of the index is proven on SQLite by the crash test; here speed matters.
    '-c',
    'fsync=off',
    '-c',
    'synchronous_commit=off',
    '-c',
    'full_page_writes=off',
  ]);
  const url = (db = 'postgres') => `postgres://radiant@127.0.0.1:${port}/${db}`;
  let child: ChildProcess;
  const running = () => child.exitCode === null && child.signalCode === null;
  const launch = async () => {
    child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    const deadline = Date.now() + 30_000;
    for (;;) {
      const client = new pg.Client({ connectionString: url() });
      try {
        await client.connect();
        await client.end();
        break;
      } catch {
        await client.end().catch(() => undefined);
        if (!running() || Date.now() > deadline) {
          child.kill('SIGKILL');
          throw new Error(`PostgreSQL did not start: ${log.slice(-2000)}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  };
  const halt = async () => {
    const exited = new Promise((r) => child.once('exit', r));
    // runuser does not pass signals on; signal the postmaster itself (fast shutdown).
    const pidFile = path.join(data, 'postmaster.pid');
    const pid = fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]) : undefined;
    if (pid) process.kill(pid, 'SIGINT');
    else child.kill('SIGINT');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (running()) {
      if (pid) process.kill(pid, 'SIGKILL');
      child.kill('SIGKILL');
    }
  };
  await launch();

  return {
    url,
    async createDatabase(name: string) {
      const client = new pg.Client({ connectionString: url() });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE "${name.replace(/"/g, '')}"`);
      } finally {
        await client.end();
      }
      return url(name);
    },
    async stop() {
      if (running()) await halt();
      await fsp.rm(dir, { recursive: true, force: true });
    },
    halt,
    restart: launch,
  };
}

/**
 * One PostgreSQL server for the whole test run (initdb costs seconds), a fresh database for
 * every caller. Stopped by a root-level hook after the last test.
 */
let shared: Promise<TestPostgres> | undefined;
let databases = 0;

export async function freshPostgresUrl(prefix = 'radiant'): Promise<string> {
  shared ??= startPostgres();
  return (await shared).createDatabase(`${prefix}_${process.pid}_${++databases}`);
}

if (typeof after === 'function') {
  after(async () => {
    if (shared) await (await shared).stop();
  });
}

/** Define a suite twice: on the embedded SQLite index and on a real PostgreSQL. */
export function onBothDatabases(define: (name: string, env: () => Promise<Record<string, string>>) => void, prefix?: string): void {
  define('SQLite', async () => ({}));
  define('PostgreSQL', async () => ({ DATABASE_URL: await freshPostgresUrl(prefix) }));
}
