import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config.js';
import { createLogger, type Logger } from '../../src/logger.js';
import { openCore, startNode, type Core, type RunningNode } from '../../src/app.js';

export interface TestNode extends RunningNode {
  dir: string;
  cleanup(): Promise<void>;
}

export async function tempDir(prefix: string): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), `radiant-${prefix}-`));
}

/**
 * A real node (index, storage, ingest path, DICOM listener on a free port) in this process,
 * with its data in a fresh temp directory. Extra env selects PostgreSQL, S3, policies.
 */
export async function startTestNode(env: Record<string, string> = {}, opts: { log?: Logger } = {}): Promise<TestNode> {
  // DATA_DIR given: a restart of a node stopped with stop() (not cleanup()), on its own data.
  const dir = env.DATA_DIR ?? (await tempDir('node'));
  const config = loadConfig({ DATA_DIR: dir, DICOM_PORT: '0', HTTP_PORT: '0', ...env }, dir);
  const log = opts.log ?? createLogger(process.env.RADIANT_TEST_LOG ?? 'silent', { stderr: true });
  const node = await startNode(config, log);
  return Object.assign(node, {
    dir,
    async cleanup() {
      await node.stop();
      await fsp.rm(dir, { recursive: true, force: true });
    },
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Every regular file below dir (relative paths), for "no half-written blob is visible". */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return out;
}

export interface TestCore extends Core {
  dir: string;
  cleanup(): Promise<void>;
}

/** The node without its listeners: index, storage and the one ingest path. */
export async function startTestCore(env: Record<string, string> = {}): Promise<TestCore> {
  const dir = await tempDir('core');
  const config = loadConfig({ DATA_DIR: dir, ...env }, dir);
  const core = await openCore(config, createLogger(process.env.RADIANT_TEST_LOG ?? 'silent', { stderr: true }));
  return Object.assign(core, {
    dir,
    async cleanup() {
      await core.close();
      await fsp.rm(dir, { recursive: true, force: true });
    },
  });
}
