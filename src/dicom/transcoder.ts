import { WorkerPool } from '../workers/worker-pool.js';
import { RadiantError } from '../errors.js';
import type { TranscodeReply, TranscodeRequest } from './transcode-worker.js';
import { whyNotTranscodable } from './transcode-syntaxes.js';

/**
 * Transcodes whole Part 10 instances between transfer syntaxes in worker threads (dcmjs-codecs
 * is WebAssembly and CPU-bound: tens of milliseconds per CT slice, seconds for a large
 * multi-frame), for WADO-RS retrieve/frames and, later, C-MOVE/C-GET to peers that do not accept
 * the stored syntax. A small LRU cache by bytes keeps recent results, so requesting the frames
 * of a compressed multi-frame one by one decodes it once.
 */

/** The instance cannot be had in the syntax asked for (the protocols answer 406 or skip it). */
export class TranscodeError extends RadiantError {
  override readonly name = 'TranscodeError';
  constructor(message: string) {
    super('unsupported', message);
  }
}

export interface TranscoderOptions {
  workers: number;
  timeoutMs: number;
  /** Bytes of transcoded instances kept for reuse; 0 disables the cache. */
  cacheBytes: number;
}

/** Identifies one stored version of an instance; a new version (replaced instance) misses. */
export interface InstanceVersion {
  sopInstanceUid: string;
  sizeBytes: number;
}

export class Transcoder {
  private readonly pool: WorkerPool<TranscodeRequest, TranscodeReply>;
  /** Insertion-ordered: the first entry is the least recently used. */
  private readonly cache = new Map<string, Promise<Buffer>>();
  private readonly sizes = new Map<string, number>();
  private cachedBytes = 0;

  constructor(private readonly opts: TranscoderOptions) {
    this.pool = new WorkerPool<TranscodeRequest, TranscodeReply>({
      url: new URL('./transcode-worker.js', import.meta.url),
      workers: opts.workers,
      timeoutMs: opts.timeoutMs,
      maxOldGenerationSizeMb: 1024,
      failure: (reason) => ({ ok: false, error: reason, recycle: false }),
      recycleAfter: (r) => !r.ok && r.recycle,
      // Most processes (CLI commands, nodes nobody asks for another syntax) never transcode.
      lazy: true,
    });
  }

  get workers(): number {
    return this.pool.size;
  }

  /** The instance's bytes in `to`. Throws TranscodeError when that cannot be done. */
  async transcode(bytes: Buffer, from: string, to: string): Promise<Buffer> {
    if (from === to) return bytes;
    const why = whyNotTranscodable(from, to);
    if (why) throw new TranscodeError(why);
    // A copy goes to the worker (transferred, not cloned): the caller's buffer stays usable.
    const copy = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer;
    const reply = await this.pool.run({ bytes: copy, from, to }, [copy]);
    if (!reply.ok) throw new TranscodeError(`cannot transcode from ${from} to ${to}: ${reply.error}`);
    return Buffer.from(reply.bytes);
  }

  /** As transcode, through the cache; `load` reads the stored bytes on a miss. */
  cached(version: InstanceVersion, from: string, to: string, load: () => Promise<Buffer>): Promise<Buffer> {
    const key = `${version.sopInstanceUid}|${version.sizeBytes}|${to}`;
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit;
    }
    const p = load().then((b) => this.transcode(b, from, to));
    if (this.opts.cacheBytes <= 0) return p;
    this.cache.set(key, p);
    p.then(
      (b) => {
        if (this.cache.get(key) !== p) return;
        this.sizes.set(key, b.length);
        this.cachedBytes += b.length;
        this.evict();
      },
      () => this.forget(key),
    );
    return p;
  }

  /** Drops every cached version of an instance (it was stored again or deleted). */
  invalidate(sopInstanceUid: string): void {
    for (const key of [...this.cache.keys()]) if (key.startsWith(`${sopInstanceUid}|`)) this.forget(key);
  }

  close(): Promise<void> {
    this.cache.clear();
    return this.pool.close();
  }

  private forget(key: string): void {
    this.cache.delete(key);
    this.cachedBytes -= this.sizes.get(key) ?? 0;
    this.sizes.delete(key);
  }

  private evict(): void {
    for (const key of this.cache.keys()) {
      if (this.cachedBytes <= this.opts.cacheBytes) return;
      if (this.sizes.has(key)) this.forget(key);
    }
  }
}
