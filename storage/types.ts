import type { Readable } from 'node:stream';

/** Inclusive byte range, as in an HTTP Range header (`bytes=start-end`). */
export interface ByteRange {
  start: number;
  /** Inclusive; omitted means "to the end". */
  end?: number;
}

export interface StoredObjectInfo {
  key: string;
  size: number;
}

/**
 * One interface for every blob store (local filesystem, S3, Azure Blob).
 * Keys are '/'-separated relative paths built by `storage/keys.ts`; back ends must refuse keys
 * that could escape their root (absolute, `..`, empty segments, backslashes).
 * A `put` is atomic: a reader never sees a half-written object, and when the promise resolves
 * the object is durable.
 */
export interface BlobStorage {
  readonly kind: 'local' | 's3' | 'azure' | 'memory';
  /** Store a stream under key, replacing any object there. Resolves with the stored size. */
  put(key: string, body: Readable, opts?: { contentType?: string; size?: number }): Promise<number>;
  /**
   * Store a file that already exists on local disk. With `move: true` the back end may take the
   * file over (the local back end renames it in place, the others delete it after upload).
   * `synced`: the caller has already fsynced the file it hands over with `move` (the local back
   * end then only renames it and syncs the directory).
   */
  putFile(key: string, path: string, opts?: { move?: boolean; contentType?: string; synced?: boolean }): Promise<number>;
  /** Read an object, or the inclusive byte range of it. Throws StorageError('not-found'). */
  get(key: string, range?: ByteRange): Promise<Readable>;
  /**
   * The bytes of a range in one buffer, where the back end reads them so more cheaply than
   * through `get` (the local one: one positioned read, no stream); `into`: read into that
   * buffer at that offset (and answer it), so a caller framing the bytes copies nothing. Fails
   * when the object ends before the range does. Callers fall back to `get` without it.
   */
  readRange?(key: string, range: { start: number; end: number }, into?: { buffer: Buffer; offset: number }): Promise<Buffer>;
  /** Size of the object, or undefined when absent. */
  stat(key: string): Promise<StoredObjectInfo | undefined>;
  exists(key: string): Promise<boolean>;
  /** Delete; deleting an absent key is not an error. */
  delete(key: string): Promise<void>;
  /** Every object whose key starts with prefix, in key order. */
  list(prefix: string): AsyncIterable<StoredObjectInfo>;
  /** Reachability check for /readyz and start-up. Throws when the store cannot be used. */
  check(): Promise<void>;
  close?(): Promise<void>;
}
