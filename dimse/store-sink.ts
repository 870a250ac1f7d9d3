import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { Writable } from 'node:stream';
import { fileMetaPrefix, type FileMetaFields } from '../src/dicom/part10.js';

/**
 * Where an incoming C-STORE data set goes while it arrives: a temp file that starts with a
 * Part 10 preamble and meta, followed by the P-DATA fragments as they come off the socket.
 *
 * The sink never emits 'error' (dcmjs-dimse does not listen for one, so it would crash the
 * node); a disk failure or an instance over the size limit is remembered, the rest of the data
 * set is drained, and the C-STORE is answered with a failure status instead.
 */
export class StoreSink extends Writable {
  readonly path: string;
  private readonly file: fs.WriteStream;
  private bytes = 0;
  private failure: { kind: 'too-large' | 'out-of-resources'; message: string } | undefined;
  private readonly fileClosed: Promise<void>;
  private waitingForDrain: (() => void) | undefined;
  /** SHA-256 of the bytes written, so the ingest path need not read the file again for it. */
  private readonly hash = createHash('sha256');

  constructor(
    path: string,
    meta: FileMetaFields,
    private readonly maxBytes: number,
  ) {
    super({ highWaterMark: 1 << 20 });
    this.path = path;
    this.file = fs.createWriteStream(path, { flags: 'wx', highWaterMark: 1 << 20 });
    this.fileClosed = new Promise((resolve) => this.file.once('close', () => resolve()));
    this.file.on('error', (err) => {
      this.fail('out-of-resources', `cannot write incoming instance: ${err.message}`);
    });
    const prefix = fileMetaPrefix(meta);
    this.hash.update(prefix);
    this.file.write(prefix);
  }

  /** The digest (hex) of the whole file, once the data set is complete. */
  sha256(): string {
    return this.hash.digest('hex');
  }

  get error(): { kind: 'too-large' | 'out-of-resources'; message: string } | undefined {
    return this.failure;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.failure) return cb();
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      this.fail('too-large', `instance larger than ${this.maxBytes} bytes`);
      return cb();
    }
    this.hash.update(chunk);
    if (this.file.write(chunk)) return cb();
    this.waitingForDrain = () => cb();
    this.file.once('drain', () => this.release());
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.failure) return cb();
    this.file.end();
    this.fileClosed.then(() => cb());
  }

  /** Resolves when the data set is complete on disk (or has failed). */
  done(): Promise<void> {
    return new Promise((resolve) => {
      if (this.writableFinished) resolve();
      else this.once('finish', () => resolve());
    });
  }

  private release(): void {
    const waiting = this.waitingForDrain;
    this.waitingForDrain = undefined;
    waiting?.();
  }

  private fail(kind: 'too-large' | 'out-of-resources', message: string): void {
    if (this.failure) return;
    this.failure = { kind, message };
    this.file.destroy();
    // A write parked on 'drain' would wait forever on a destroyed file.
    this.release();
  }
}
