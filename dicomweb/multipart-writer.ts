import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough, type Readable, type Writable } from 'node:stream';

/**
 * A multipart/related response written part by part (RFC 2046 §5.1, RFC 2387): each part's body
 * is a stream opened while the part before it is written out (one ahead), and piped with
 * backpressure, so a 1 GB study costs a couple of stream buffers, never the study.
 */

export interface OutPart {
  /**
   * Part headers, e.g. Content-Type and Content-Location (values must be header-safe). A
   * function is read after `open`, for headers that depend on what opening found (the transfer
   * syntax a transcoded part ended up in).
   */
  headers: Record<string, string> | (() => Record<string, string>);
  /** Opens the part's body; called while the part before it is being written (or first). */
  open(): Promise<Readable>;
}

export function newBoundary(): string {
  return `radiant-${randomBytes(16).toString('hex')}`;
}

async function write(out: Writable, chunk: string): Promise<void> {
  if (out.destroyed) throw new Error('response stream closed');
  if (out.write(Buffer.from(chunk, 'latin1'))) return;
  const ac = new AbortController();
  try {
    await Promise.race([
      once(out, 'drain', { signal: ac.signal }),
      once(out, 'close', { signal: ac.signal }).then(() => {
        throw new Error('response stream closed');
      }),
    ]);
  } finally {
    ac.abort();
  }
}

/**
 * body → out without ending out, with backpressure (pipe); every listener is removed afterwards,
 * so a 1000-part response adds none to `out` (stream/promises pipeline with end:false leaks one
 * per call on the destination).
 */
function pipePart(body: Readable, out: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      out.off('close', onClose);
      body.off('error', onError);
      body.off('end', onEnd);
    };
    const onClose = () => {
      cleanup();
      body.unpipe(out);
      body.destroy();
      reject(new Error('response stream closed'));
    };
    const onError = (err: Error) => {
      cleanup();
      body.unpipe(out);
      reject(err);
    };
    const onEnd = () => {
      cleanup();
      resolve();
    };
    out.once('close', onClose);
    body.once('error', onError);
    body.once('end', onEnd);
    body.pipe(out, { end: false });
  });
}

function headerBlock(headers: Record<string, string>): string {
  return Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
}

export interface MultipartStream {
  stream: PassThrough;
  /** Settles when the last byte was handed on, or with the error that cut the response short. */
  done: Promise<void>;
}

/**
 * Streams the parts; `first` may be an already opened body for parts[0] (so a storage failure on
 * the first blob can still be answered with an error status). A failure after the first byte
 * destroys the stream: the client sees a response without its closing delimiter, never a
 * response that looks complete.
 */
export function multipartStream(boundary: string, parts: OutPart[], first?: Readable): MultipartStream {
  const stream = new PassThrough();
  const done = (async () => {
    let pending = first;
    // The next part is opened while this one is written: the open (a file open and stat, an S3
    // request) overlaps the transfer instead of leaving a gap between parts. One ahead at most.
    let ahead: Promise<Readable> | undefined;
    const openAhead = (i: number): Promise<Readable> | undefined => {
      if (i >= parts.length) return undefined;
      const p = parts[i]!.open();
      p.catch(() => undefined); // awaited (and its failure thrown) when its turn comes
      return p;
    };
    try {
      for (let i = 0; i < parts.length; i++) {
        const part = parts[i]!;
        const opening = ahead;
        ahead = undefined;
        const body = pending ?? (await (opening ?? part.open()));
        pending = body;
        ahead = openAhead(i + 1);
        const headers = typeof part.headers === 'function' ? part.headers() : part.headers;
        await write(stream, `${i === 0 ? '' : '\r\n'}--${boundary}\r\n${headerBlock(headers)}\r\n`);
        pending = undefined;
        await pipePart(body, stream);
      }
      await write(stream, `${parts.length ? '\r\n' : ''}--${boundary}--\r\n`);
      stream.end();
    } catch (err) {
      pending?.destroy();
      ahead?.then(
        (b) => b.destroy(),
        () => undefined,
      );
      stream.destroy(err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
  })();
  // The caller decides what to log; an unobserved rejection must not crash the process.
  done.catch(() => undefined);
  return { stream, done };
}
