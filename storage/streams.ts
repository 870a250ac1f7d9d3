import { Readable } from 'node:stream';
import { StorageError } from '../src/errors.js';
import { unsatisfiableRange } from './range.js';
import type { ByteRange } from './types.js';

export interface Meter {
  /** The body as Buffers, counted on the way through. */
  readonly chunks: AsyncGenerator<Buffer>;
  /** Bytes that went through so far. */
  readonly bytes: () => number;
  /**
   * Set when reading the body failed: either the body's own error, which belongs to the caller
   * (a dropped association, a client that hung up) and is rethrown as is rather than reported as
   * a storage fault, or the StorageError for a body of the wrong length. Back ends throw this in
   * preference to whatever their SDK made of the aborted upload.
   */
  readonly failure: () => { error: unknown } | undefined;
}

function toBuffer(chunk: unknown): Buffer | undefined {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (typeof chunk === 'string') return Buffer.from(chunk);
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  return undefined;
}

/**
 * Counts a body while it is stored. When the caller announced a size, a body of any other length
 * fails inside the stream, before the back end commits, so a truncated upload never becomes an
 * object.
 */
export function meter(body: Readable, expectedSize?: number): Meter {
  let bytes = 0;
  let failure: { error: unknown } | undefined;

  async function* chunks(): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of body as AsyncIterable<unknown>) {
        const buf = toBuffer(chunk);
        if (buf === undefined) throw new StorageError('invalid-input', 'body stream must yield bytes or strings');
        bytes += buf.length;
        if (expectedSize !== undefined && bytes > expectedSize) {
          throw new StorageError('invalid-input', `body is longer than the announced ${expectedSize} bytes`);
        }
        yield buf;
      }
      if (expectedSize !== undefined && bytes !== expectedSize) {
        throw new StorageError('invalid-input', `body ended after ${bytes} of the announced ${expectedSize} bytes`);
      }
    } catch (err) {
      failure = { error: err };
      throw err;
    }
  }

  return { chunks: chunks(), bytes: () => bytes, failure: () => failure };
}

/**
 * Cuts [skip, skip + length) out of a stream. HTTP lets a server ignore or widen a Range request
 * (s3rver, for one, answers `bytes=0-0` with the whole object), so remote back ends re-cut what
 * they get instead of trusting it.
 */
export function sliceStream(src: Readable, skip: number, length: number | undefined): Readable {
  async function* cut(): AsyncGenerator<Buffer> {
    let toSkip = skip;
    let left = length ?? Infinity;
    if (left <= 0) return;
    for await (const chunk of src as AsyncIterable<unknown>) {
      let buf = toBuffer(chunk);
      if (buf === undefined) throw new StorageError('out-of-resources', 'object stream yielded a non-byte chunk');
      if (toSkip > 0) {
        const dropped = Math.min(toSkip, buf.length);
        toSkip -= dropped;
        buf = buf.subarray(dropped);
      }
      if (buf.length === 0) continue;
      if (buf.length >= left) {
        yield buf.subarray(0, left);
        return; // leaving the loop destroys src: the rest is not wanted
      }
      left -= buf.length;
      yield buf;
    }
  }
  return Readable.from(cut(), { objectMode: false });
}

/** `bytes a-b/total` (total may be `*`). */
function parseContentRange(header: string | undefined): { start: number; end: number; size?: number } | undefined {
  const m = header === undefined ? null : /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header.trim());
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), size: m[3] === '*' ? undefined : Number(m[3]) };
}

/**
 * Turns a remote ranged response into exactly the requested bytes: passes it through when the
 * server honoured the range, re-cuts it when the server sent more (a 200 with the whole object
 * is allowed), and refuses a response that lacks requested bytes.
 */
export function fitServedRange(
  body: Readable,
  range: ByteRange,
  served: { contentRange: string | undefined; contentLength: number | undefined },
): Readable {
  const parsed = parseContentRange(served.contentRange);
  const servedStart = parsed?.start ?? 0;
  const size = parsed ? parsed.size : served.contentLength;
  const servedEnd = parsed?.end ?? (size ?? 0) - 1;
  const fail = (err: Error): never => {
    body.destroy();
    throw err;
  };
  if (size === undefined) {
    if (servedStart !== range.start) fail(new StorageError('out-of-resources', 'server answered a range request without its size'));
    return body;
  }
  if (range.start >= size) fail(unsatisfiableRange(range, size));
  const wantEnd = Math.min(range.end ?? size - 1, size - 1);
  if (servedStart === range.start && servedEnd === wantEnd) return body;
  if (servedStart > range.start || servedEnd < wantEnd) {
    fail(new StorageError('out-of-resources', `server sent bytes ${servedStart}-${servedEnd} for requested ${range.start}-${wantEnd}`));
  }
  return sliceStream(body, range.start - servedStart, wantEnd - range.start + 1);
}

/**
 * The shape every remote `put` shares: meter the body, hand the SDK a plain byte stream, and on
 * failure prefer the body's own error (or its wrong length) to whatever the SDK made of the
 * aborted upload. Both streams are closed whatever happens.
 */
export async function uploadMetered(
  body: Readable,
  expectedSize: number | undefined,
  upload: (source: Readable) => Promise<void>,
  sdkFailure: (err: unknown) => Error,
): Promise<number> {
  const metered = meter(body, expectedSize);
  const source = Readable.from(metered.chunks, { objectMode: false });
  try {
    await upload(source);
    return metered.bytes();
  } catch (err) {
    const failure = metered.failure();
    if (failure) throw failure.error;
    throw sdkFailure(err);
  } finally {
    if (!source.destroyed) source.destroy();
    if (!body.destroyed && !body.readableEnded) body.destroy();
  }
}
