import { createReadStream } from 'node:fs';
import { stat, unlink } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { StorageError } from '../src/errors.js';

type Put = (key: string, body: Readable, opts: { contentType?: string; size?: number }) => Promise<number>;

function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * putFile for back ends that cannot take a file over: stream it up, then drop the local copy
 * when asked to move. The announced size makes a file that shrinks mid-upload fail the put.
 */
export async function uploadLocalFile(
  put: Put,
  key: string,
  source: string,
  opts: { move?: boolean; contentType?: string },
): Promise<number> {
  let size: number;
  try {
    const info = await stat(source);
    if (!info.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'ENOENT' });
    size = info.size;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') {
      throw new StorageError('not-found', `putFile ${key}: source ${source} not found`, { cause: err });
    }
    throw new StorageError('out-of-resources', `putFile ${key}: cannot read ${source}`, { cause: err });
  }
  let stored: number;
  try {
    stored = await put(key, createReadStream(source), { size, contentType: opts.contentType });
  } catch (err) {
    // put rethrows body errors untouched; here the body is our own read of a local file.
    if (err instanceof StorageError) throw err;
    throw new StorageError('out-of-resources', `putFile ${key}: reading ${source} failed`, { cause: err });
  }
  if (opts.move) {
    await unlink(source).catch((err: unknown) => {
      if (errnoCode(err) !== 'ENOENT') {
        throw new StorageError('out-of-resources', `putFile ${key}: stored, but cannot remove ${source}`, { cause: err });
      }
    });
  }
  return stored;
}
