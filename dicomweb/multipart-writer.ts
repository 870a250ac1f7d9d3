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
  if (out.destroyed) throw new ResponseClosedError();
  if (out.write(Buffer.from(chunk, 'latin1'))) return;
  const ac = new AbortController();
  try {
    await Promise.race([
      once(out, 'drain', { signal: ac.signal }),
      once(out, 'close', { signal: ac.signal }).then(() => {
        throw new ResponseClosedError();
      }),
    ]);
  } finally {
    ac.abort();
  }
}

/** The response went away (client gone, connection closed) while parts were still being written. */
export class ResponseClosedError extends Error {
  constructor() {
    super('response stream closed');
    this.name = 'ResponseClosedError';
  }
}

/**
 * A part body that waits its turn (opened ahead, or before the status line) may fail before
 * anyone pipes it (a storage socket reset, an integrity check): with no listener that error
 * would be an uncaught exception. Held here, it is the body's `errored` state, read by pipePart.
 */
function holdErrors(body: Readable): Readable {
  body.on('error', () => undefined);
  return body;
}

/**
 * body → out without ending out, with backpressure (pipe); every listener is removed afterwards,
 * so a 1000-part response adds none to `out` (stream/promises pipeline with end:false leaks one
 * per call on the destination). Fails with the body's error, also one it had before its turn, or
 * when the body closes without ending (destroyed): a part is never taken as complete unless it
 * ended.
 */
function pipePart(body: Readable, out: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    if (out.destroyed) return reject(new ResponseClosedError());
    if (body.destroyed) return reject(body.errored ?? new Error('part body closed before it was sent'));
    const cleanup = () => {
      out.off('close', onClose);
      body.off('error', onError);
      body.off('end', onEnd);
      body.off('close', onBodyClose);
    };
    const onClose = () => {
      cleanup();
      body.unpipe(out);
      body.destroy();
      reject(new ResponseClosedError());
    };
    const onError = (err: Error) => {
      cleanup();
      body.unpipe(out);
      reject(err);
    };
    const onBodyClose = () => {
      cleanup();
      body.unpipe(out);
      reject(body.errored ?? new Error('part body closed before it ended'));
    };
    const onEnd = () => {
      cleanup();
      resolve();
    };
    out.once('close', onClose);
    body.once('error', onError);
    body.once('end', onEnd);
    body.once('close', onBodyClose);
    body.pipe(out, { end: false });
  });
}

function headerBlock(headers: Record<string, string>): string {
  return Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
}

/**
 * A small multipart/related body whole, framed exactly as multipartStream frames it: one buffer,
 * so the status line, headers and body leave in one write (a frame request is mostly overhead).
 */
export function multipartBody(boundary: string, parts: Array<{ headers: Record<string, string>; body: Buffer }>): Buffer {
  if (parts.length === 1) {
    const { head, tail } = multipartFraming(boundary, parts[0]!.headers);
    return Buffer.concat([head, parts[0]!.body, tail]);
  }
  const chunks: Buffer[] = [];
  parts.forEach((p, i) => {
    chunks.push(Buffer.from(`${i === 0 ? '' : '\r\n'}--${boundary}\r\n${headerBlock(p.headers)}\r\n`, 'latin1'), p.body);
  });
  chunks.push(Buffer.from(`${parts.length ? '\r\n' : ''}--${boundary}--\r\n`, 'latin1'));
  return Buffer.concat(chunks);
}

/** What goes before and after the body of a one-part multipart/related answer. */
export function multipartFraming(boundary: string, headers: Record<string, string>): { head: Buffer; tail: Buffer } {
  return {
    head: Buffer.from(`--${boundary}\r\n${headerBlock(headers)}\r\n`, 'latin1'),
    tail: Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1'),
  };
}

export interface MultipartStream {
  stream: PassThrough;
  /**
   * Settles when the last byte was handed on, or with the error that cut the response short:
   * ResponseClosedError when the client went away, else the failing part's own error.
   */
  done: Promise<void>;
}

/**
 * Streams the parts; `first` may be an already opened body for parts[0] (so a storage failure on
 * the first blob can still be answered with an error status). A failure of any part's body (its
 * open, a storage read error, an integrity mismatch, a body that closes early) destroys the
 * stream: no closing delimiter is ever written after it, so the client never sees a response that
 * looks complete. The caller learns why from `done` and must cut the connection (the status is
 * out); dicomweb/streamed-response.ts does that for the retrieve routes.
 */
export function multipartStream(boundary: string, parts: OutPart[], first?: Readable): MultipartStream {
  const stream = new PassThrough();
  // The failure is reported through `done`. Koa (3) attaches no listener to a stream body until
  // it pipes it, after the middleware below the handler (the audit write) finished: an error
  // emitted in between was an uncaught exception that could end the process.
  stream.on('error', () => undefined);
  const done = (async () => {
    let pending = first && holdErrors(first);
    // The next part is opened while this one is written: the open (a file open and stat, an S3
    // request) overlaps the transfer instead of leaving a gap between parts. One ahead at most.
    let ahead: Promise<Readable> | undefined;
    const openAhead = (i: number): Promise<Readable> | undefined => {
      if (i >= parts.length) return undefined;
      const p = parts[i]!.open().then(holdErrors);
      p.catch(() => undefined); // awaited (and its failure thrown) when its turn comes
      return p;
    };
    try {
      for (let i = 0; i < parts.length; i++) {
        const part = parts[i]!;
        const opening = ahead;
        ahead = undefined;
        const body = pending ?? holdErrors(await (opening ?? part.open()));
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
