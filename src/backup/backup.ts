import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { indexCounts, indexHasRows, instanceHashes, sqliteVacuumInto, type IndexCounts } from '../catalog/backup.js';
import type { Config, DatabaseOptions, PgConnection } from '../config.js';
import { createDb } from '../db/connection.js';
import { ConfigError, errorMessage } from '../errors.js';
import { createStorage } from '../../storage/index.js';
import type { BlobStorage } from '../../storage/types.js';

/**
 * `radiant backup <dir>` and `radiant restore <dir>`. A backup folder holds:
 * - the database: `database.sqlite` (SQLite's VACUUM INTO: consistent while the node runs) or
 *   `database.pgdump` (pg_dump custom format, one snapshot; restored with pg_restore);
 * - `manifest.json`: every storage object (key, size, SHA-256: instances.sha256 where the index
 *   has it, else read), the index's row counts, the node's storage type;
 * - `blobs/<key>`: the objects themselves (always for local storage; for S3/Azure with
 *   --with-blobs, else the bucket is the copy and the manifest checks it).
 * The database is dumped first: an instance stored during the backup may have a blob and no row
 * (an orphan the next start-up sweeps up), never a row without its blob, unless it was deleted
 * during the backup window (the restore reports such keys as missing).
 */

export class BackupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackupError';
  }
}

interface ManifestEntry {
  key: string;
  size: number;
  sha256: string;
  /** The blob is in blobs/<key> of the backup folder. */
  copied: boolean;
}

export interface BackupManifest {
  format: 'radiant-backup/1';
  createdAt: string;
  database: { client: 'sqlite' | 'pg'; file: string };
  storage: { type: string };
  counts: IndexCounts;
  objects: ManifestEntry[];
}

const MANIFEST = 'manifest.json';

/** pg_dump / pg_restore: on PATH, else the newest /usr/lib/postgresql/<major>/bin (Debian's layout). */
async function pgTool(name: 'pg_dump' | 'pg_restore'): Promise<string> {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    if (fs.existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  const root = '/usr/lib/postgresql';
  const majors = fs.existsSync(root) ? (await fsp.readdir(root)).filter((d) => /^\d+$/.test(d)).sort((a, b) => Number(b) - Number(a)) : [];
  for (const m of majors) if (fs.existsSync(path.join(root, m, 'bin', name))) return path.join(root, m, 'bin', name);
  throw new BackupError(
    `${name} not found (PATH or /usr/lib/postgresql/*/bin): install the PostgreSQL client tools of the server's major version ` +
      '(postgresql-client); nothing was written',
  );
}

/** libpq's environment for the node's PostgreSQL settings: no password on a command line. */
function pgEnv(db: Extract<DatabaseOptions, { client: 'pg' }>): { args: string[]; env: NodeJS.ProcessEnv } {
  if (typeof db.connection === 'string') return { args: [`--dbname=${db.connection}`], env: process.env };
  const c: PgConnection = db.connection;
  return {
    args: [],
    env: { ...process.env, PGHOST: c.host, PGPORT: String(c.port), PGDATABASE: c.database, PGUSER: c.user, PGPASSWORD: c.password },
  };
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new BackupError(`${path.basename(cmd)} failed (${code}): ${stderr.trim()}`)),
    );
  });
}

/** Streams an object through SHA-256, into `file` when given. */
async function hashObject(storage: BlobStorage, key: string, file?: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  if (file) {
    await fsp.mkdir(path.dirname(file), { recursive: true });
    await pipeline(await storage.get(key), tap, fs.createWriteStream(file, { flags: 'wx' }));
  } else {
    await pipeline(await storage.get(key), tap, async (source: AsyncIterable<Buffer>) => {
      for await (const _ of source);
    });
  }
  return { sha256: hash.digest('hex'), size };
}

async function isEmptyDir(dir: string): Promise<boolean> {
  try {
    return (await fsp.readdir(dir)).length === 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw err;
  }
}

export interface BackupSummary {
  manifest: BackupManifest;
  bytes: number;
}

/** Writes a backup of the node `config` describes into `dir` (absent or empty). */
export async function backupNode(config: Config, dir: string, opts: { withBlobs?: boolean } = {}): Promise<BackupSummary> {
  if (!(await isEmptyDir(dir))) throw new BackupError(`${dir} is not empty: a backup goes into a new folder`);
  await fsp.mkdir(dir, { recursive: true });
  const copy = config.storage.type === 'local' || opts.withBlobs === true;
  const db = createDb(config.database);
  const storage = await createStorage(config.storage);
  try {
    let file: string;
    if (config.database.client === 'sqlite') {
      file = 'database.sqlite';
      await sqliteVacuumInto(db, path.join(dir, file));
    } else {
      file = 'database.pgdump';
      const { args, env } = pgEnv(config.database);
      await run(await pgTool('pg_dump'), ['--format=custom', '--no-owner', `--file=${path.join(dir, file)}`, ...args], env);
    }
    const counts = await indexCounts(db);
    const known = await instanceHashes(db);
    const objects: ManifestEntry[] = [];
    let bytes = 0;
    for await (const o of storage.list('')) {
      const stored = known.get(o.key);
      let entry: ManifestEntry;
      if (copy) {
        const h = await hashObject(storage, o.key, path.join(dir, 'blobs', o.key));
        if (stored && stored !== h.sha256) throw new BackupError(`${o.key}: SHA-256 differs from the index's (a corrupted blob)`);
        entry = { key: o.key, size: h.size, sha256: h.sha256, copied: true };
      } else {
        entry = { key: o.key, size: o.size, sha256: stored ?? (await hashObject(storage, o.key)).sha256, copied: false };
      }
      bytes += entry.size;
      objects.push(entry);
    }
    const manifest: BackupManifest = {
      format: 'radiant-backup/1',
      createdAt: new Date().toISOString(),
      database: { client: config.database.client, file },
      storage: { type: config.storage.type },
      counts,
      objects,
    };
    await fsp.writeFile(path.join(dir, MANIFEST), `${JSON.stringify(manifest, null, 1)}\n`, { flag: 'wx' });
    return { manifest, bytes };
  } finally {
    await storage.close?.();
    await db.destroy();
  }
}

export interface RestoreSummary {
  counts: IndexCounts;
  restored: number;
  /** Objects the manifest names that were not copied and are not in the target storage either. */
  missing: string[];
}

/**
 * Restores `dir` into the node `config` describes: its database and storage must be empty unless
 * `force` (then the database is replaced and objects overwritten). Every copied object is checked
 * against its manifest SHA-256 before anything is written; the row counts against the manifest's.
 */
export async function restoreNode(config: Config, dir: string, opts: { force?: boolean } = {}): Promise<RestoreSummary> {
  let manifest: BackupManifest;
  try {
    manifest = JSON.parse(await fsp.readFile(path.join(dir, MANIFEST), 'utf8')) as BackupManifest;
  } catch (err) {
    throw new BackupError(`${dir} is not a backup (${MANIFEST}: ${errorMessage(err)})`);
  }
  if (manifest.format !== 'radiant-backup/1') throw new BackupError(`${dir}: unknown backup format ${JSON.stringify(manifest.format)}`);
  if (manifest.database.client !== config.database.client) {
    throw new ConfigError(`the backup holds a ${manifest.database.client} database; this node is configured for ${config.database.client}`);
  }
  const storage = await createStorage(config.storage);
  try {
    await storage.check();
    if (!opts.force) {
      for await (const o of storage.list('')) throw new BackupError(`the target storage is not empty (${o.key}); use --force to overwrite`);
      const probe = config.database.client === 'sqlite' && !fs.existsSync(config.database.filename) ? undefined : createDb(config.database);
      try {
        if (probe && (await indexHasRows(probe))) throw new BackupError('the target database is not empty; use --force to replace it');
      } finally {
        await probe?.destroy();
      }
    }
    // Every copy checked before anything is written: a damaged backup leaves the target as it was.
    for (const o of manifest.objects) {
      if (!o.copied) continue;
      const hash = createHash('sha256');
      for await (const chunk of fs.createReadStream(path.join(dir, 'blobs', o.key))) hash.update(chunk as Buffer);
      if (hash.digest('hex') !== o.sha256) throw new BackupError(`${o.key}: the backup's copy does not match its manifest SHA-256`);
    }
    const source = path.join(dir, manifest.database.file);
    if (config.database.client === 'sqlite') {
      const target = config.database.filename;
      await fsp.mkdir(path.dirname(target), { recursive: true });
      for (const f of [target, `${target}-wal`, `${target}-shm`]) await fsp.rm(f, { force: true });
      await fsp.copyFile(source, target);
    } else {
      const { args, env } = pgEnv(config.database);
      await run(await pgTool('pg_restore'), ['--clean', '--if-exists', '--no-owner', '--exit-on-error', ...args, source], env);
    }
    const missing: string[] = [];
    let restored = 0;
    for (const o of manifest.objects) {
      if (!o.copied) {
        if (!(await storage.exists(o.key))) missing.push(o.key);
        continue;
      }
      await storage.putFile(o.key, path.join(dir, 'blobs', o.key));
      restored++;
    }
    const db = createDb(config.database);
    try {
      const counts = await indexCounts(db);
      for (const [t, n] of Object.entries(manifest.counts)) {
        if (counts[t as keyof IndexCounts] !== n)
          throw new BackupError(`restored ${t}: ${counts[t as keyof IndexCounts]} rows, the backup had ${n}`);
      }
      return { counts, restored, missing };
    } finally {
      await db.destroy();
    }
  } finally {
    await storage.close?.();
  }
}
