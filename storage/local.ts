import { randomUUID } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { type FileHandle, copyFile, mkdir, open, readdir, rename, rmdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { StorageError } from '../src/errors.js';
import { assertSafeKey, assertSafePrefix } from './keys.js';
import { assertValidRange, clampRange } from './range.js';
import { meter } from './streams.js';
import type { BlobStorage, ByteRange, StoredObjectInfo } from './types.js';

/** Reserved first segment: temp files live under it, so no key may. */
const TEMP_DIR = '.tmp';
/** Only files with this suffix are ours to clean; `.tmp/` also holds the ingest spool (config.ts). */
const TEMP_SUFFIX = '.part';

function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** File system failures as the node reports them: a missing key, a bad key, or a sick disk. */
function fsError(err: unknown, what: string): StorageError {
  if (err instanceof StorageError) return err;
  const code = errnoCode(err);
  switch (code) {
    case 'ENOENT':
      return new StorageError('not-found', `${what}: not found`, { cause: err });
    case 'ENOTDIR':
    case 'EISDIR':
    case 'ENOTEMPTY':
    case 'EEXIST':
    case 'ENAMETOOLONG':
      // The key collides with the directory structure of other keys (`a` vs `a/b`).
      return new StorageError('invalid-input', `${what}: key conflicts with existing objects (${code})`, { cause: err });
    default:
      // ENOSPC, EIO, EDQUOT, EROFS, EMFILE, EACCES...: the store cannot take work now.
      return new StorageError('out-of-resources', `${what}: ${code ?? (err instanceof Error ? err.message : String(err))}`, {
        cause: err,
      });
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function fsyncFile(file: string): Promise<number> {
  const fh = await open(file, 'r');
  try {
    await fh.sync();
    return (await fh.stat()).size;
  } finally {
    await fh.close();
  }
}

/** Byte order, as S3 and Azure list, so every back end lists the same keys the same way. */
function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Largest single read of a get: a few per CT/MR slice, small enough to keep a streamed study flat. */
const READ_CHUNK = 256 * 1024;

function chunkFor(bytes: number): number {
  return Math.max(16 * 1024, Math.min(bytes, READ_CHUNK));
}

export interface LocalStorageOptions {
  root: string;
}

export class LocalStorage implements BlobStorage {
  readonly kind = 'local' as const;
  readonly root: string;
  private readonly tempDir: string;
  /** Temp files of puts in flight, which cleanTempFiles must leave alone. */
  private readonly inFlight = new Set<string>();

  constructor(opts: LocalStorageOptions | string) {
    this.root = path.resolve(typeof opts === 'string' ? opts : opts.root);
    this.tempDir = path.join(this.root, TEMP_DIR);
  }

  private pathFor(key: string): string {
    assertSafeKey(key);
    if (key === TEMP_DIR || key.startsWith(`${TEMP_DIR}/`)) {
      throw new StorageError('invalid-input', `storage key ${JSON.stringify(key)} is in the reserved ${TEMP_DIR}/ area`);
    }
    const full = path.join(this.root, ...key.split('/'));
    // Belt and braces: assertSafeKey already rules this out.
    if (!full.startsWith(this.root + path.sep)) {
      throw new StorageError('invalid-input', `storage key ${JSON.stringify(key)} escapes the root`);
    }
    return full;
  }

  private async newTempPath(): Promise<string> {
    await mkdir(this.tempDir, { recursive: true });
    const tmp = path.join(this.tempDir, `${randomUUID()}${TEMP_SUFFIX}`);
    this.inFlight.add(tmp);
    return tmp;
  }

  private async discardTemp(tmp: string): Promise<void> {
    this.inFlight.delete(tmp);
    await unlink(tmp).catch(() => undefined);
  }

  /** mkdir -p, then fsync the parents of what it created: a new directory is durable only then. */
  private async ensureDir(dir: string): Promise<void> {
    const first = await mkdir(dir, { recursive: true });
    if (first === undefined) return;
    const created: string[] = [];
    for (let d = dir; d.length >= first.length && d !== path.dirname(d); d = path.dirname(d)) created.push(d);
    // The deepest directory is synced after the rename anyway; sync the chain above it.
    for (const d of created.slice(1)) await fsyncDir(d);
    await fsyncDir(path.dirname(first));
  }

  /** Rename a durable file into place and make the new directory entry durable. */
  private async publish(from: string, target: string): Promise<void> {
    const dir = path.dirname(target);
    // A concurrent delete may prune the freshly made directory between mkdir and rename.
    for (let attempt = 1; ; attempt++) {
      await this.ensureDir(dir);
      try {
        await rename(from, target);
        break;
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT' || attempt >= 3) throw err;
        await stat(from); // a vanished source is the caller's problem, not a race: let it throw
      }
    }
    await fsyncDir(dir);
  }

  async put(key: string, body: Readable, opts: { contentType?: string; size?: number } = {}): Promise<number> {
    const metered = meter(body, opts.size);
    let tmp: string | undefined;
    try {
      const target = this.pathFor(key);
      tmp = await this.newTempPath();
      const fh = await open(tmp, 'wx');
      try {
        // writeFile drains the iterable with full writes; a write stream on the handle would pin
        // it open (a FileHandle cannot close while a stream made from it is alive).
        await fh.writeFile(metered.chunks);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await this.publish(tmp, target);
      this.inFlight.delete(tmp);
      return metered.bytes();
    } catch (err) {
      if (tmp !== undefined) await this.discardTemp(tmp);
      const failure = metered.failure();
      if (failure) throw failure.error;
      throw fsError(err, `put ${key}`);
    } finally {
      // A put that failed before reading (bad key, full disk) must not leave the caller's stream open.
      if (!body.destroyed && !body.readableEnded) body.destroy();
    }
  }

  async putFile(key: string, source: string, opts: { move?: boolean; contentType?: string; synced?: boolean } = {}): Promise<number> {
    const target = this.pathFor(key);
    if (opts.move) {
      try {
        // Durable before it becomes visible, exactly as put's temp file (unless the caller synced it).
        const size = opts.synced ? (await stat(source)).size : await fsyncFile(source);
        await this.publish(source, target);
        return size;
      } catch (err) {
        if (errnoCode(err) !== 'EXDEV') throw fsError(err, `putFile ${key} from ${source}`);
      }
      const size = await this.copyIn(key, source, target);
      await unlink(source).catch((err: unknown) => {
        if (errnoCode(err) !== 'ENOENT') throw fsError(err, `putFile ${key}: removing ${source}`);
      });
      return size;
    }
    return this.copyIn(key, source, target);
  }

  private async copyIn(key: string, source: string, target: string): Promise<number> {
    let tmp: string | undefined;
    try {
      tmp = await this.newTempPath();
      // copyFile can use copy_file_range/reflinks; far cheaper than streaming through JS.
      await copyFile(source, tmp, fsConstants.COPYFILE_EXCL);
      const size = await fsyncFile(tmp);
      await this.publish(tmp, target);
      this.inFlight.delete(tmp);
      return size;
    } catch (err) {
      if (tmp !== undefined) await this.discardTemp(tmp);
      throw fsError(err, `putFile ${key} from ${source}`);
    }
  }

  /** The object opened for reading; an absent one (or a path through one) is `not-found`. */
  private async openObject(key: string): Promise<FileHandle> {
    const file = this.pathFor(key);
    try {
      return await open(file, 'r');
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new StorageError('not-found', `get ${key}: not found`, { cause: err });
      throw fsError(err, `get ${key}`);
    }
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    if (range) assertValidRange(range);
    const fh = await this.openObject(key);
    try {
      // Reading through the opened handle pins this version: an overwrite renames a new inode
      // into place and the reader keeps the old one, whole.
      const info = await fh.stat();
      if (!info.isFile()) throw new StorageError('not-found', `get ${key}: not found`);
      // Reads of up to READ_CHUNK bytes (a small object in one): a 512² CT slice in two reads and
      // socket writes, where 64 KiB chunks took nine of each.
      // The end is given so the stream stops at the last byte: without it a final read of a
      // whole chunk's fresh buffer finds end-of-file (an allocation the size of the object, for nothing).
      if (!range) return fh.createReadStream({ start: 0, end: Math.max(0, info.size - 1), highWaterMark: chunkFor(info.size) });
      const { start, end } = clampRange(range, info.size);
      return fh.createReadStream({ start, end, highWaterMark: chunkFor(end - start + 1) });
    } catch (err) {
      await fh.close();
      throw fsError(err, `get ${key}`);
    }
  }

  async readRange(key: string, range: { start: number; end: number }, into?: { buffer: Buffer; offset: number }): Promise<Buffer> {
    assertValidRange(range);
    const fh = await this.openObject(key);
    try {
      const length = range.end - range.start + 1;
      const out = into?.buffer ?? Buffer.allocUnsafe(length);
      const base = into?.offset ?? 0;
      if (base + length > out.length) throw new StorageError('invalid-input', `get ${key}: the range does not fit the buffer given`);
      for (let at = 0; at < length; ) {
        const { bytesRead } = await fh.read(out, base + at, length - at, range.start + at);
        if (bytesRead === 0) throw new StorageError('invalid-input', `get ${key}: object ends before byte ${range.end}`);
        at += bytesRead;
      }
      return out;
    } catch (err) {
      if (err instanceof StorageError) throw err;
      throw fsError(err, `get ${key}`);
    } finally {
      await fh.close();
    }
  }

  async stat(key: string): Promise<StoredObjectInfo | undefined> {
    const file = this.pathFor(key);
    try {
      const info = await stat(file);
      return info.isFile() ? { key, size: info.size } : undefined;
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw fsError(err, `stat ${key}`);
    }
  }

  async exists(key: string): Promise<boolean> {
    return (await this.stat(key)) !== undefined;
  }

  async delete(key: string): Promise<void> {
    const file = this.pathFor(key);
    try {
      await unlink(file);
    } catch (err) {
      const code = errnoCode(err);
      // Absent, or a directory of other keys: either way there is no object to delete.
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR' || code === 'EPERM') return;
      throw fsError(err, `delete ${key}`);
    }
    await this.pruneEmptyDirs(path.dirname(file));
  }

  /** Empty study/series directories would otherwise pile up forever as instances are deleted. */
  private async pruneEmptyDirs(dir: string): Promise<void> {
    for (let d = dir; d !== this.root && d.startsWith(this.root + path.sep); d = path.dirname(d)) {
      try {
        await rmdir(d);
      } catch {
        return; // not empty (or already gone): every ancestor is then not ours to remove
      }
    }
  }

  async *list(prefix: string): AsyncIterable<StoredObjectInfo> {
    assertSafePrefix(prefix);
    yield* this.walk('', prefix);
  }

  private async *walk(relDir: string, prefix: string): AsyncGenerator<StoredObjectInfo> {
    const dir = relDir === '' ? this.root : path.join(this.root, ...relDir.split('/'));
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return; // pruned by a concurrent delete
      throw fsError(err, `list ${prefix}`);
    }
    // Sorting a directory as "name/" keeps its whole subtree in the right place among its siblings.
    const sorted = entries
      .filter((e) => e.isFile() || e.isDirectory())
      .filter((e) => !(relDir === '' && e.name === TEMP_DIR))
      .map((e) => ({ rel: relDir === '' ? e.name : `${relDir}/${e.name}`, isDir: e.isDirectory() }))
      .sort((a, b) => byteOrder(a.isDir ? `${a.rel}/` : a.rel, b.isDir ? `${b.rel}/` : b.rel));
    for (const { rel, isDir } of sorted) {
      if (isDir) {
        const asDir = `${rel}/`;
        if (asDir.startsWith(prefix) || prefix.startsWith(asDir)) yield* this.walk(rel, prefix);
      } else if (rel.startsWith(prefix)) {
        const info = await this.stat(rel).catch(() => undefined);
        if (info) yield info;
      }
    }
  }

  async check(): Promise<void> {
    try {
      await mkdir(this.tempDir, { recursive: true });
      const probe = await this.newTempPath();
      try {
        const fh = await open(probe, 'wx');
        try {
          await fh.writeFile('probe');
          await fh.sync();
        } finally {
          await fh.close();
        }
      } finally {
        await this.discardTemp(probe);
      }
    } catch (err) {
      throw new StorageError('out-of-resources', `local storage at ${this.root} is not writable: ${errnoCode(err) ?? String(err)}`, {
        cause: err,
      });
    }
  }

  /**
   * Removes temp files left by a crash mid-put. Called at start-up; puts running in this process
   * are spared, and `minAgeMs` spares those of another process sharing the root.
   * Resolves with the number of files removed.
   */
  async cleanTempFiles(opts: { minAgeMs?: number } = {}): Promise<number> {
    const minAgeMs = opts.minAgeMs ?? 0;
    let names: string[];
    try {
      names = await readdir(this.tempDir);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return 0;
      throw fsError(err, 'cleanTempFiles');
    }
    let removed = 0;
    const now = Date.now();
    for (const name of names) {
      if (!name.endsWith(TEMP_SUFFIX)) continue;
      const file = path.join(this.tempDir, name);
      if (this.inFlight.has(file)) continue;
      try {
        if (minAgeMs > 0 && now - (await stat(file)).mtimeMs < minAgeMs) continue;
        await unlink(file);
        removed++;
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw fsError(err, `cleanTempFiles ${name}`);
      }
    }
    return removed;
  }
}
