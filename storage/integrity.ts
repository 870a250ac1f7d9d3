import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { RadiantError } from '../src/errors.js';
import { readAll } from './read-all.js';
import type { BlobStorage } from './types.js';

/**
 * Per-object integrity: each instance's SHA-256 is kept in the index (computed by the ingest path)
 * and checked on whole-instance reads, so a blob changed or damaged at rest is never served as
 * the instance. Streams are hashed as they flow (no second read): the mismatch is known at the
 * last byte, and the stream then fails instead of ending, so whoever sends it aborts (HTTP: the
 * connection is destroyed before the body or multipart closing boundary completes; DIMSE: the
 * sub-operation fails). Buffered reads (transcoding, rendering whole instances) check before use.
 */

/** The node's own failure, 500 with code `blob_integrity` over HTTP, a processing failure over DIMSE. */
export class IntegrityError extends RadiantError {
  constructor(key: string) {
    super('internal', `stored object ${key} does not match its SHA-256 (damaged or changed at rest)`, { code: 'blob_integrity' });
    this.name = 'IntegrityError';
  }
}

export function sha256Hex(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** SHA-256 (hex) of a local file, read as a stream. */
export function sha256File(filePath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    fs.createReadStream(filePath)
      .on('data', (c) => hash.update(c))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/**
 * The object's stream, hashed as it flows, failing at the end when the digest is not `expected`.
 * With no `expected` (an instance stored before digests were kept) the digest of a complete read
 * goes to `onDigest`, for the index to keep.
 */
export async function verifiedGet(
  storage: BlobStorage,
  key: string,
  expected: string | null | undefined,
  onDigest?: (sha256: string) => void,
): Promise<Readable> {
  const body = await storage.get(key);
  if (!expected && !onDigest) return body;
  async function* checked(): AsyncGenerator<Buffer> {
    const hash = createHash('sha256');
    // The last chunk is held back until the digest is checked: a client counting bytes
    // (Content-Length) never receives a complete damaged object.
    let held: Buffer | undefined;
    for await (const chunk of body) {
      hash.update(chunk as Buffer);
      if (held) yield held;
      held = chunk as Buffer;
    }
    const digest = hash.digest('hex');
    if (expected && digest !== expected) throw new IntegrityError(key);
    if (!expected) onDigest?.(digest);
    if (held) yield held;
  }
  const out = Readable.from(checked(), { objectMode: false });
  // The mismatch surfaces at the last byte, possibly after a consumer stopped listening (a
  // response already closed): it must never become an uncaught exception that ends the process.
  // Consumers still reading get it (their own listeners, or the async iterator).
  out.on('error', () => undefined);
  // The source may fail, or be dropped, before the generator first reads it (a part opened ahead
  // of its turn): its error is then the generator's to throw, and the source (a file handle, a
  // socket) is closed with `out`, not left to the garbage collector.
  body.on('error', () => undefined);
  out.once('close', () => body.destroy());
  return out;
}

/**
 * A whole object in memory, checked before anyone uses it. With `size` (what the index says) a
 * store that reads ranges reads it in one positioned read into a buffer of that size; an object
 * shorter than that is not the indexed one either.
 */
export async function verifiedReadAll(
  storage: BlobStorage,
  key: string,
  expected: string | null | undefined,
  onDigest?: (sha256: string) => void,
  size?: number,
): Promise<Buffer> {
  const bytes = await readWhole(storage, key, expected, size);
  const digest = sha256Hex(bytes);
  if (expected && digest !== expected) throw new IntegrityError(key);
  if (!expected) onDigest?.(digest);
  return bytes;
}

async function readWhole(
  storage: BlobStorage,
  key: string,
  expected: string | null | undefined,
  size: number | undefined,
): Promise<Buffer> {
  if (!storage.readRange || !expected || size === undefined || size < 1) return readAll(await storage.get(key));
  try {
    return await storage.readRange(key, { start: 0, end: size - 1 });
  } catch (err) {
    // Ends before the indexed size: damaged (truncated) at rest, as a digest mismatch would say.
    if (err instanceof RadiantError && err.kind === 'invalid-input') throw new IntegrityError(key);
    throw err;
  }
}
