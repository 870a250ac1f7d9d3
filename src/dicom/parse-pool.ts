import { Worker } from 'node:worker_threads';
import type { ParseOutcome } from './header-types.js';
import type { ParseReply, ParseRequest } from './header-worker.js';

/**
 * A small pool of worker threads that parse DICOM headers. Parsing untrusted files off the main
 * thread keeps the DIMSE and HTTP servers responsive, and the workers' resource limits turn a
 * pathological file (deep nesting, absurd lengths, endless loops) into a refused instance
 * instead of a crashed or hung node: a worker that dies or overruns its time is replaced.
 */

export interface ParsePoolOptions {
  workers: number;
  timeoutMs: number;
  maxHeaderBytes?: number;
  /** Heap limit per worker. */
  maxOldGenerationSizeMb?: number;
}

interface Job {
  id: number;
  path: string;
  resolve: (o: ParseOutcome) => void;
}

interface Slot {
  worker: Worker;
  job?: Job;
  timer?: NodeJS.Timeout;
}

const workerUrl = new URL('./header-worker.js', import.meta.url);

export class ParsePool {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;

  constructor(private readonly opts: ParsePoolOptions) {
    for (let i = 0; i < opts.workers; i++) this.slots.push(this.spawn());
  }

  parse(path: string): Promise<ParseOutcome> {
    if (this.closed) return Promise.resolve({ ok: false, kind: 'unparseable', error: 'parser is shut down' });
    return new Promise((resolve) => {
      this.queue.push({ id: this.nextId++, path, resolve });
      this.pump();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.resolve({ ok: false, kind: 'unparseable', error: 'parser is shut down' });
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private spawn(): Slot {
    const worker = new Worker(workerUrl, {
      resourceLimits: {
        maxOldGenerationSizeMb: this.opts.maxOldGenerationSizeMb ?? 512,
        maxYoungGenerationSizeMb: 64,
        stackSizeMb: 4,
      },
    });
    const slot: Slot = { worker };
    worker.unref();
    worker.on('message', (reply: ParseReply) => {
      if (slot.job?.id !== reply.id) return;
      this.finish(slot, reply.outcome);
    });
    worker.on('error', (err: Error) => this.replace(slot, `parser crashed: ${err.message}`));
    worker.on('exit', (code) => {
      if (!this.closed && this.slots.includes(slot)) this.replace(slot, `parser exited with code ${code}`);
    });
    return slot;
  }

  private finish(slot: Slot, outcome: ParseOutcome): void {
    clearTimeout(slot.timer);
    const job = slot.job;
    slot.job = undefined;
    slot.timer = undefined;
    slot.worker.unref();
    job?.resolve(outcome);
    this.pump();
  }

  private replace(slot: Slot, reason: string): void {
    const idx = this.slots.indexOf(slot);
    if (idx < 0) return;
    clearTimeout(slot.timer);
    const job = slot.job;
    slot.job = undefined;
    this.slots.splice(idx, 1);
    void slot.worker.terminate();
    if (!this.closed) this.slots.push(this.spawn());
    job?.resolve({ ok: false, kind: 'unparseable', error: reason });
    this.pump();
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (slot.job) continue;
      const job = this.queue.shift()!;
      slot.job = job;
      // Only a busy worker keeps the process alive (an idle pool must not block exit).
      slot.worker.ref();
      slot.timer = setTimeout(
        () => this.replace(slot, `parsing took longer than ${this.opts.timeoutMs} ms`),
        this.opts.timeoutMs,
      );
      slot.worker.postMessage({
        id: job.id,
        path: job.path,
        maxHeaderBytes: this.opts.maxHeaderBytes ?? 256 * 1024 * 1024,
      } satisfies ParseRequest);
    }
  }
}
