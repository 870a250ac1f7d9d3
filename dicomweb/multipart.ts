import { Readable } from 'node:stream';
import { RadiantError } from '../src/errors.js';

/**
 * A small streaming reader for multipart/related bodies (RFC 2387 over RFC 2046 §5.1), as STOW-RS
 * sends them. The request is never held in memory: the reader keeps at most one source chunk plus
 * a delimiter's length of look-behind, and hands out each part's body as a Readable that pulls
 * from the request only as fast as its consumer reads. Parts are read one after another: a part
 * the consumer abandons is skipped when the next one is asked for.
 *
 * A part body ends cleanly only at its closing delimiter. If the request ends (or breaks) inside
 * a part, the part's stream fails, so a truncated instance can never be taken for a whole one.
 */

export type MultipartFailure = 'malformed' | 'truncated' | 'too-large';

export class MultipartError extends RadiantError {
  constructor(
    override readonly reason: MultipartFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(reason === 'too-large' ? 'too-large' : 'unparseable', message, options);
    this.name = 'MultipartError';
  }
}

export interface MediaType {
  /** Lower-cased type/subtype. */
  type: string;
  /** Parameter names lower-cased; values unquoted, case kept. */
  params: Record<string, string>;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** RFC 9110 §8.3.1 media type with parameters; quoted-string values may hold `;` and escapes. */
export function parseMediaType(value: string | undefined): MediaType | undefined {
  if (!value) return undefined;
  const semi = value.indexOf(';');
  const type = (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
  const slash = type.indexOf('/');
  if (slash <= 0 || !TOKEN.test(type.slice(0, slash)) || !TOKEN.test(type.slice(slash + 1))) return undefined;
  const params: Record<string, string> = {};
  let i = semi < 0 ? value.length : semi + 1;
  while (i < value.length) {
    while (i < value.length && (value[i] === ' ' || value[i] === '\t' || value[i] === ';')) i++;
    if (i >= value.length) break;
    const eq = value.indexOf('=', i);
    if (eq < 0) return undefined;
    const name = value.slice(i, eq).trim().toLowerCase();
    if (!TOKEN.test(name)) return undefined;
    i = eq + 1;
    let v = '';
    if (value[i] === '"') {
      i++;
      for (; i < value.length && value[i] !== '"'; i++) v += value[i] === '\\' && i + 1 < value.length ? value[++i] : value[i];
      if (value[i] !== '"') return undefined;
      i++;
    } else {
      const end = value.indexOf(';', i);
      v = value.slice(i, end < 0 ? value.length : end).trim();
      i = end < 0 ? value.length : end;
    }
    // First occurrence wins (a duplicated parameter is not allowed anyway).
    if (!(name in params)) params[name] = v;
  }
  return { type, params };
}

/**
 * RFC 2046 §5.1.1: characters from bchars, not ending in a space. Its limit of 70 characters is
 * not enforced on reading (up to 200 are taken): real clients go over it, Orthanc's DICOMweb
 * plugin STOWs with two UUIDs joined (73).
 */
export function isValidBoundary(b: string): boolean {
  return /^[0-9A-Za-z'()+_,\-./:=? ]{0,199}[0-9A-Za-z'()+_,\-./:=?]$/.test(b);
}

export interface MultipartPart {
  /** Header names lower-cased. */
  headers: Record<string, string>;
  /** The part's Content-Type, if it had one that parses. */
  contentType?: MediaType;
  body: PartBody;
}

export interface MultipartReaderOptions {
  boundary: string;
  /** Headers of one part, at most (default 16 KiB). */
  maxHeaderBytes?: number;
  /** Whole request body, framing included, at most (default unlimited). */
  maxBytes?: number;
  /** How many leading bytes of each part to keep for the caller (default 0). */
  keepHeadBytes?: number;
}

const CRLF = Buffer.from('\r\n', 'latin1');
const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');
const DASHDASH = Buffer.from('--', 'latin1');

export class MultipartRelatedReader {
  /** Bytes taken from the source so far. */
  bytesRead = 0;
  /** Set once the body turned out broken; every later call throws it. */
  failure?: MultipartError;

  private readonly it: AsyncIterator<unknown>;
  private readonly delimiter: Buffer;
  private readonly maxHeaderBytes: number;
  private readonly maxBytes: number;
  readonly keepHeadBytes: number;
  /** Unconsumed bytes. Starts with a CRLF of our own so that a body opening with "--boundary" matches. */
  private buf: Buffer = CRLF;
  private eof = false;
  private filling?: Promise<boolean>;
  private state: 'start' | 'body' | 'delimiter' | 'done' = 'start';
  private current?: PartBody;

  constructor(source: AsyncIterable<unknown>, opts: MultipartReaderOptions) {
    if (!isValidBoundary(opts.boundary)) throw new MultipartError('malformed', 'invalid multipart boundary');
    this.it = source[Symbol.asyncIterator]();
    this.delimiter = Buffer.from(`\r\n--${opts.boundary}`, 'latin1');
    this.maxHeaderBytes = opts.maxHeaderBytes ?? 16 * 1024;
    this.maxBytes = opts.maxBytes ?? Number.POSITIVE_INFINITY;
    this.keepHeadBytes = opts.keepHeadBytes ?? 0;
  }

  /** True once the closing delimiter was read. */
  get finished(): boolean {
    return this.state === 'done';
  }

  /** True once the source has been read to its end. */
  get sourceEnded(): boolean {
    return this.eof;
  }

  /**
   * The next part, or undefined after the closing delimiter. The previous part's body is
   * skipped (and destroyed) if its consumer did not read it to the end.
   */
  async next(): Promise<MultipartPart | undefined> {
    if (this.failure) throw this.failure;
    if (this.state === 'done') return undefined;
    if (this.state === 'body') await this.skipBody();

    // The delimiter: anywhere in the preamble at the start, right at the front after a part.
    const d = this.delimiter;
    for (;;) {
      const at = this.buf.indexOf(d);
      if (at >= 0) {
        this.buf = this.buf.subarray(at + d.length);
        break;
      }
      // Preamble: keep only what could be the start of the delimiter.
      if (this.buf.length >= d.length) this.buf = this.buf.subarray(this.buf.length - d.length + 1);
      if (!(await this.fill())) {
        throw this.fail(
          this.state === 'start'
            ? new MultipartError('malformed', 'no multipart boundary in the body')
            : new MultipartError('truncated', 'body ended before the closing boundary'),
        );
      }
    }

    if (!(await this.ensure(2))) throw this.fail(new MultipartError('truncated', 'body ended after a boundary'));
    if (this.buf[0] === DASHDASH[0] && this.buf[1] === DASHDASH[1]) {
      this.state = 'done';
      this.current = undefined;
      return undefined;
    }
    // Transport padding (linear white space), then the CRLF that ends the boundary line.
    for (;;) {
      const nl = this.buf.indexOf(CRLF);
      if (nl >= 0) {
        for (let k = 0; k < nl; k++) {
          if (this.buf[k] !== 0x20 && this.buf[k] !== 0x09) {
            throw this.fail(new MultipartError('malformed', 'unexpected characters after a multipart boundary'));
          }
        }
        this.buf = this.buf.subarray(nl + 2);
        break;
      }
      if (this.buf.length > 1024) throw this.fail(new MultipartError('malformed', 'boundary line too long'));
      if (!(await this.fill())) throw this.fail(new MultipartError('truncated', 'body ended in a boundary line'));
    }

    // Part headers, up to the empty line (which may come first: a part without headers).
    let headerText = '';
    if (!(await this.ensure(2))) throw this.fail(new MultipartError('truncated', 'body ended in part headers'));
    if (this.buf[0] === 0x0d && this.buf[1] === 0x0a) {
      this.buf = this.buf.subarray(2);
    } else {
      for (;;) {
        const end = this.buf.indexOf(CRLFCRLF);
        if (end >= 0) {
          if (end > this.maxHeaderBytes) break;
          headerText = this.buf.toString('latin1', 0, end);
          this.buf = this.buf.subarray(end + 4);
          break;
        }
        if (this.buf.length > this.maxHeaderBytes) break;
        if (!(await this.fill())) throw this.fail(new MultipartError('truncated', 'body ended in part headers'));
      }
      if (!headerText) throw this.fail(new MultipartError('malformed', `part headers larger than ${this.maxHeaderBytes} bytes`));
    }
    const headers = parseHeaders(headerText);
    if (!headers) throw this.fail(new MultipartError('malformed', 'malformed part headers'));

    this.state = 'body';
    const body = new PartBody(this);
    this.current = body;
    return { headers, contentType: parseMediaType(headers['content-type']), body };
  }

  /** Read (and discard) whatever follows the closing delimiter, up to `limit` bytes. */
  async drainEpilogue(limit: number): Promise<void> {
    let seen = 0;
    while (!this.eof && seen <= limit) {
      seen += this.buf.length;
      this.buf = Buffer.alloc(0);
      if (!(await this.fill())) return;
    }
  }

  /** @internal Body bytes that are certainly not part of the next delimiter. */
  takeBody(): { data?: Buffer; end: boolean } {
    const d = this.delimiter;
    const at = this.buf.indexOf(d);
    if (at >= 0) {
      const data = this.buf.subarray(0, at);
      this.buf = this.buf.subarray(at);
      this.state = 'delimiter';
      return { data, end: true };
    }
    const safe = this.buf.length - (d.length - 1);
    if (safe <= 0) return { end: false };
    const data = this.buf.subarray(0, safe);
    this.buf = this.buf.subarray(safe);
    return { data, end: false };
  }

  /**
   * @internal One more chunk from the source into the buffer; false at its end. Concurrent
   * callers (a part body's pump and a skip) share one pending read.
   */
  fill(): Promise<boolean> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.filling) return this.filling;
    const p = this.readChunk();
    this.filling = p;
    const clear = () => {
      if (this.filling === p) this.filling = undefined;
    };
    p.then(clear, clear);
    return p;
  }

  /** @internal */
  fail(err: MultipartError): MultipartError {
    this.failure ??= err;
    return this.failure;
  }

  private async readChunk(): Promise<boolean> {
    if (this.eof) return false;
    let r: IteratorResult<unknown>;
    try {
      r = await this.it.next();
    } catch (err) {
      throw this.fail(
        new MultipartError('truncated', `request body broke off: ${err instanceof Error ? err.message : String(err)}`, { cause: err }),
      );
    }
    if (r.done) {
      this.eof = true;
      return false;
    }
    const v = r.value;
    const chunk = Buffer.isBuffer(v) ? v : typeof v === 'string' ? Buffer.from(v, 'latin1') : Buffer.from(v as Uint8Array);
    this.bytesRead += chunk.length;
    if (this.bytesRead > this.maxBytes) {
      throw this.fail(new MultipartError('too-large', `request body larger than ${this.maxBytes} bytes`));
    }
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    return true;
  }

  private async ensure(n: number): Promise<boolean> {
    while (this.buf.length < n) if (!(await this.fill())) return false;
    return true;
  }

  private async skipBody(): Promise<void> {
    const body = this.current;
    if (body && !body.destroyed) body.destroy();
    for (;;) {
      const r = this.takeBody();
      if (r.end) return;
      if (r.data) continue;
      if (!(await this.fill())) throw this.fail(new MultipartError('truncated', 'body ended inside a part'));
    }
  }
}

/** A part's body: pulls from the request as it is read; fails if the request ends inside it. */
export class PartBody extends Readable {
  private pumping = false;
  private headChunks: Buffer[] = [];
  private headLength = 0;

  constructor(private readonly reader: MultipartRelatedReader) {
    super({ highWaterMark: 64 * 1024 });
  }

  /** The first keepHeadBytes bytes of the part (fewer if it was shorter or not read that far). */
  head(): Buffer {
    return Buffer.concat(this.headChunks);
  }

  override _read(): void {
    if (!this.pumping) void this.pump();
  }

  private keepHead(data: Buffer): void {
    const want = this.reader.keepHeadBytes - this.headLength;
    if (want <= 0) return;
    const piece = Buffer.from(data.subarray(0, want));
    this.headChunks.push(piece);
    this.headLength += piece.length;
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      for (;;) {
        if (this.destroyed) return;
        const r = this.reader.takeBody();
        if (r.data?.length) {
          this.keepHead(r.data);
          const more = this.push(r.data);
          if (r.end) {
            this.push(null);
            return;
          }
          if (!more) return;
          continue;
        }
        if (r.end) {
          this.push(null);
          return;
        }
        if (!(await this.reader.fill())) {
          this.destroy(this.reader.fail(new MultipartError('truncated', 'body ended inside a part')));
          return;
        }
      }
    } catch (err) {
      this.destroy(err as Error);
    } finally {
      this.pumping = false;
    }
  }
}

function parseHeaders(text: string): Record<string, string> | undefined {
  const headers: Record<string, string> = {};
  if (!text) return headers;
  let last: string | undefined;
  for (const line of text.split('\r\n')) {
    if ((line.startsWith(' ') || line.startsWith('\t')) && last) {
      headers[last] += ` ${line.trim()}`; // obsolete line folding
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) return undefined;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!TOKEN.test(name)) return undefined;
    headers[name] = line.slice(colon + 1).trim();
    last = name;
  }
  return headers;
}
