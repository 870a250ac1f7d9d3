import { Worker, type Transferable } from 'node:worker_threads';

/**
 * A small pool of worker threads running one kind of task (header parsing, pixel transcoding).
 * Untrusted DICOM is handled off the main thread so the DIMSE and HTTP servers stay responsive,
 * and the workers' resource limits turn a pathological input (deep nesting, absurd lengths, a
 * codec that traps or loops) into a failed task instead of a crashed or hung node: a worker
 * that dies, overruns its time or asks to be recycled is replaced.
 */

export interface WorkerPoolOptions<Res> {
  url: URL;
  workers: number;
  timeoutMs: number;
  /** Heap limit per worker. */
  maxOldGenerationSizeMb?: number;
  /** The answer a task gets when its worker crashed, timed out or the pool was closed. */
  failure(reason: string): Res;
  /** A worker whose answer says so is replaced after answering (e.g. a WebAssembly trap). */
  recycleAfter?(res: Res): boolean;
  /** Start the workers on the first task rather than at once (a pool most processes never use). */
  lazy?: boolean;
}

/** What a worker receives and must echo back: `{ id, ...request }` → `{ id, result }`. */
export interface WorkerEnvelope<T> {
  id: number;
  body: T;
}

interface Job<Req, Res> {
  id: number;
  req: Req;
  transfer: Transferable[];
  timeoutMs: number;
  resolve: (r: Res) => void;
}

interface Slot<Req, Res> {
  worker: Worker;
  job?: Job<Req, Res>;
  timer?: NodeJS.Timeout;
}

export class WorkerPool<Req, Res> {
  private readonly slots: Array<Slot<Req, Res>> = [];
  private readonly queue: Array<Job<Req, Res>> = [];
  private nextId = 1;
  private closed = false;

  private started = false;

  constructor(private readonly opts: WorkerPoolOptions<Res>) {
    if (!opts.lazy) this.startWorkers();
  }

  private startWorkers(): void {
    this.started = true;
    for (let i = 0; i < this.opts.workers; i++) this.slots.push(this.spawn());
  }

  get size(): number {
    return this.opts.workers;
  }

  /**
   * Runs one task; never rejects (failures come back as `opts.failure(reason)`). `timeoutMs`
   * overrides the pool's limit for this task (a pool serving tasks of different sizes).
   */
  run(req: Req, transfer: Transferable[] = [], timeoutMs = this.opts.timeoutMs): Promise<Res> {
    if (this.closed) return Promise.resolve(this.opts.failure('worker pool is shut down'));
    if (!this.started) this.startWorkers();
    return new Promise((resolve) => {
      this.queue.push({ id: this.nextId++, req, transfer, timeoutMs, resolve });
      this.pump();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.resolve(this.opts.failure('worker pool is shut down'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private spawn(): Slot<Req, Res> {
    const worker = new Worker(this.opts.url, {
      resourceLimits: {
        maxOldGenerationSizeMb: this.opts.maxOldGenerationSizeMb ?? 512,
        maxYoungGenerationSizeMb: 64,
        stackSizeMb: 4,
      },
    });
    const slot: Slot<Req, Res> = { worker };
    worker.unref();
    worker.on('message', (reply: WorkerEnvelope<Res>) => {
      if (slot.job?.id !== reply.id) return;
      if (this.opts.recycleAfter?.(reply.body)) {
        const job = slot.job;
        slot.job = undefined;
        this.replace(slot, '');
        job.resolve(reply.body);
        return;
      }
      this.finish(slot, reply.body);
    });
    worker.on('error', (err: Error) => this.replace(slot, `worker crashed: ${err.message}`));
    worker.on('exit', (code) => {
      if (!this.closed && this.slots.includes(slot)) this.replace(slot, `worker exited with code ${code}`);
    });
    return slot;
  }

  private finish(slot: Slot<Req, Res>, res: Res): void {
    clearTimeout(slot.timer);
    const job = slot.job;
    slot.job = undefined;
    slot.timer = undefined;
    slot.worker.unref();
    job?.resolve(res);
    this.pump();
  }

  private replace(slot: Slot<Req, Res>, reason: string): void {
    const idx = this.slots.indexOf(slot);
    if (idx < 0) return;
    clearTimeout(slot.timer);
    const job = slot.job;
    slot.job = undefined;
    this.slots.splice(idx, 1);
    void slot.worker.terminate();
    if (!this.closed) this.slots.push(this.spawn());
    job?.resolve(this.opts.failure(reason));
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
      slot.timer = setTimeout(() => this.replace(slot, `the task took longer than ${job.timeoutMs} ms`), job.timeoutMs);
      slot.worker.postMessage({ id: job.id, body: job.req } satisfies WorkerEnvelope<Req>, job.transfer);
    }
  }
}

/** The worker side: answers each envelope with the handler's result. */
export function serveWorker<Req, Res>(
  port: { on(ev: 'message', fn: (m: WorkerEnvelope<Req>) => void): unknown; postMessage(m: unknown, t?: Transferable[]): void },
  handler: (req: Req) => Promise<{ result: Res; transfer?: Transferable[] }>,
  onError: (err: unknown) => Res,
): void {
  port.on('message', (msg) => {
    handler(msg.body).then(
      ({ result, transfer }) => port.postMessage({ id: msg.id, body: result } satisfies WorkerEnvelope<Res>, transfer ?? []),
      (err: unknown) => port.postMessage({ id: msg.id, body: onError(err) } satisfies WorkerEnvelope<Res>),
    );
  });
}
