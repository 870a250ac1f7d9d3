import { Readable } from 'node:stream';
import { StorageError } from '../src/errors.js';
import type { BlobStorage, ByteRange, StoredObjectInfo } from './types.js';
import { clampRange } from './range.js';

/**
 * Read-only blobs held in memory, behind the storage interface: a transcoded instance is served
 * by the same byte-range code (frames, layouts) as a stored one. Not a storage back end.
 */
export class MemoryBlobs implements BlobStorage {
  readonly kind = 'memory' as const;
  private readonly blobs = new Map<string, Buffer>();

  constructor(entries: Record<string, Buffer> = {}) {
    for (const [k, v] of Object.entries(entries)) this.blobs.set(k, v);
  }

  async put(): Promise<number> {
    throw new StorageError('invalid-input', 'memory blobs are read-only');
  }

  async putFile(): Promise<number> {
    throw new StorageError('invalid-input', 'memory blobs are read-only');
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    const b = this.blobs.get(key);
    if (!b) throw new StorageError('not-found', `no object ${key}`);
    if (!range) return Readable.from([b]);
    const r = clampRange(range, b.length);
    return Readable.from([b.subarray(r.start, r.end + 1)]);
  }

  async stat(key: string): Promise<StoredObjectInfo | undefined> {
    const b = this.blobs.get(key);
    return b ? { key, size: b.length } : undefined;
  }

  async exists(key: string): Promise<boolean> {
    return this.blobs.has(key);
  }

  async delete(key: string): Promise<void> {
    this.blobs.delete(key);
  }

  async *list(prefix: string): AsyncIterable<StoredObjectInfo> {
    for (const key of [...this.blobs.keys()].sort()) if (key.startsWith(prefix)) yield { key, size: this.blobs.get(key)!.length };
  }

  async check(): Promise<void> {}
}
