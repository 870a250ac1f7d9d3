/**
 * Supervises one llama.cpp `llama-server` child: bound to 127.0.0.1 on a free port, protected by a
 * random API key (given through the LLAMA_API_KEY environment variable, the same setting as
 * --api-key, so it does not show up in `ps`), started with `-m model [--mmproj mmproj]`.
 *
 * - start() checks the model files first (missing / not GGUF -> ModelFileError naming the file),
 *   spawns the server and resolves once GET /health answers 200.
 * - If the child dies after it was ready, it is restarted with exponential back-off
 *   (restartDelayMs doubling up to maxRestartDelayMs; the back-off resets after a stable minute).
 * - stop() sends SIGTERM, then SIGKILL after a grace period; the child is also killed when this
 *   process exits.
 * - Every line the server prints goes to the logger at debug level; the last lines are kept for
 *   error messages.
 *
 * Events: 'ready' (port), 'exit' ({ code, signal, expected }), 'restarting' ({ attempt, delayMs }),
 * 'restart-failed' (error).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import readline from 'node:readline';
import type { Logger } from 'pino';
import { backoffDelay } from '../backoff.js';
import { ensureLlamaServer } from './build/build-llama.js';
import { hostCpu, noRepackWanted, type NoRepackMode } from './no-repack.js';
import { forgetChild, reapOrphans, recordChild } from './orphans.js';
import { RadiantError, type ErrorKind } from '../errors.js';

export class LlamaServerError extends RadiantError {
  constructor(
    message: string,
    readonly logTail: string[] = [],
    kind: ErrorKind = 'internal',
  ) {
    super(kind, message);
    this.name = 'LlamaServerError';
  }
}

/** A model or projector file that is missing, unreadable or not a loadable GGUF. */
export class ModelFileError extends LlamaServerError {
  constructor(
    readonly file: string,
    override readonly reason: 'missing' | 'unreadable' | 'not-gguf' | 'rejected',
    detail: string,
    logTail: string[] = [],
  ) {
    super(`model file ${file}: ${detail}`, logTail, 'config');
    this.name = 'ModelFileError';
  }
}

export interface LlamaServerOptions {
  /** The text model (GGUF). */
  model: string;
  /** The vision projector (GGUF, general.architecture=clip). */
  mmproj?: string;
  /** llama-server binary; default: ensureLlamaServer() (built on demand, cached). */
  serverPath?: string;
  threads?: number;
  ctxSize?: number;
  /** -ngl: a layer count, 'auto' or 'all'; default 'auto' (llama.cpp's default). */
  gpuLayers?: number | 'auto' | 'all';
  /** Parallel decoding slots (-np); default 1. */
  parallel?: number;
  extraArgs?: string[];
  /** LLAMA_NO_REPACK: --no-repack on (auto: on AMX CPUs, llama.cpp #20824; no-repack.ts); default 'auto'. */
  noRepack?: NoRepackMode;
  /** --media-path: a private folder whose files requests may name as file:// images. */
  mediaDir?: string;
  logger?: Logger;
  /** How long to wait for /health after a (re)start; default 120 s. */
  startupTimeoutMs?: number;
  /** First restart delay; default 500 ms. */
  restartDelayMs?: number;
  /** Back-off ceiling; default 30 s. */
  maxRestartDelayMs?: number;
  /** Stop restarting after this many consecutive failures; default Infinity. */
  maxRestarts?: number;
}

const LOG_TAIL = 60;

/** Checks that file exists, is readable and starts with a GGUF header (magic + version 2/3). */
export function checkGgufFile(file: string): void {
  let fd: number;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw new ModelFileError(file, 'missing', 'not a regular file');
    fd = fs.openSync(file, 'r');
  } catch (err) {
    if (err instanceof ModelFileError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ModelFileError(file, 'missing', 'file not found');
    throw new ModelFileError(file, 'unreadable', (err as Error).message);
  }
  try {
    const head = Buffer.alloc(24);
    const n = fs.readSync(fd, head, 0, 24, 0);
    if (n < 24 || head.toString('latin1', 0, 4) !== 'GGUF') {
      throw new ModelFileError(file, 'not-gguf', 'not a GGUF file (bad magic or truncated)');
    }
    const version = head.readUInt32LE(4);
    if (version !== 2 && version !== 3) throw new ModelFileError(file, 'not-gguf', `unsupported GGUF version ${version}`);
  } finally {
    fs.closeSync(fd);
  }
}

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class LlamaServer extends EventEmitter {
  readonly host = '127.0.0.1';
  readonly apiKey = randomBytes(24).toString('base64url');
  private child: ChildProcess | undefined;
  private port_ = 0;
  private ready_ = false;
  private stopping = false;
  private started = false;
  private restartAttempt = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private stableTimer: NodeJS.Timeout | undefined;
  private readyWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  private logTail: string[] = [];
  private serverPath: string | undefined;
  /** Whether the server gets --no-repack, decided once from the host's CPU. */
  readonly noRepack: boolean;
  private readonly onProcessExit = () => {
    this.child?.kill('SIGKILL');
  };

  constructor(readonly opts: LlamaServerOptions) {
    super();
    this.noRepack = noRepackWanted(opts.noRepack ?? 'auto', hostCpu());
  }

  get port(): number {
    return this.port_;
  }
  get baseUrl(): string {
    return `http://${this.host}:${this.port_}`;
  }
  get pid(): number | undefined {
    return this.child?.pid;
  }
  get ready(): boolean {
    return this.ready_;
  }
  /** The last lines the server printed. */
  get recentLog(): string[] {
    return [...this.logTail];
  }

  /** Starts the server and resolves once it is healthy. */
  async start(): Promise<void> {
    if (this.started) throw new LlamaServerError('llama-server supervisor already started');
    this.started = true;
    this.stopping = false;
    try {
      checkGgufFile(this.opts.model);
      if (this.opts.mmproj) checkGgufFile(this.opts.mmproj);
      this.serverPath = this.opts.serverPath ?? (await ensureLlamaServer()).serverPath;
      if (!fs.existsSync(this.serverPath)) throw new LlamaServerError(`llama-server binary not found: ${this.serverPath}`);
      process.once('exit', this.onProcessExit);
      const reaped = reapOrphans();
      if (reaped.length) this.opts.logger?.warn({ pids: reaped }, 'stopped llama-server processes left by a node that was killed');
      if (this.noRepack)
        this.opts.logger?.info(
          { mode: this.opts.noRepack ?? 'auto' },
          'llama-server runs with --no-repack (AMX CPU: its Q4_K repack crashes, llama.cpp #20824; LLAMA_NO_REPACK)',
        );
      await this.spawnAndWait();
    } catch (err) {
      this.started = false;
      process.removeListener('exit', this.onProcessExit);
      throw err;
    }
  }

  /** Resolves when the server is (again) healthy; rejects if it is stopped or gives up. */
  whenReady(): Promise<void> {
    if (this.ready_) return Promise.resolve();
    if (!this.started) return Promise.reject(new LlamaServerError('llama-server is not running'));
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  /** fetch() against the server with the API key; waits for readiness first. */
  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    await this.whenReady();
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${this.apiKey}`);
    if (init.body && !headers.has('content-type')) headers.set('content-type', 'application/json');
    return fetch(`${this.baseUrl}${path}`, { ...init, headers });
  }

  /** POST /v1/chat/completions; throws LlamaServerError on a non-2xx answer. */
  async chatCompletion(body: unknown, signal?: AbortSignal): Promise<ChatCompletion> {
    const res = await this.fetch('/v1/chat/completions', { method: 'POST', body: JSON.stringify(body), signal });
    const text = await res.text();
    if (!res.ok) throw new LlamaServerError(`llama-server answered ${res.status}: ${text.slice(0, 500)}`);
    return JSON.parse(text) as ChatCompletion;
  }

  async stop(graceMs = 5000): Promise<void> {
    this.stopping = true;
    this.started = false;
    clearTimeout(this.restartTimer);
    clearTimeout(this.stableTimer);
    this.ready_ = false;
    this.rejectWaiters(new LlamaServerError('llama-server stopped'));
    process.removeListener('exit', this.onProcessExit);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(t);
  }

  private args(port: number): string[] {
    const o = this.opts;
    const a = ['--host', this.host, '--port', String(port), '-m', o.model, '--no-webui', '-np', String(o.parallel ?? 1)];
    if (o.mmproj) a.push('--mmproj', o.mmproj);
    if (o.threads !== undefined) a.push('-t', String(o.threads), '-tb', String(o.threads));
    if (o.ctxSize !== undefined) a.push('-c', String(o.ctxSize));
    if (o.gpuLayers !== undefined) a.push('-ngl', String(o.gpuLayers));
    if (o.mediaDir) a.push('--media-path', o.mediaDir);
    if (this.noRepack) a.push('--no-repack');
    a.push(...(o.extraArgs ?? []));
    return a;
  }

  private env(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    // Our settings only: drop LLAMA_ARG_* and LLAMA_API_KEY inherited from the environment.
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('LLAMA_ARG_') && k !== 'LLAMA_API_KEY') env[k] = v;
    env.LLAMA_API_KEY = this.apiKey;
    env.LLAMA_ARG_OFFLINE = '1';
    return env;
  }

  private async spawnAndWait(): Promise<void> {
    const port = await freePort(this.host);
    if (this.stopping) throw new LlamaServerError('llama-server stopped while starting');
    this.port_ = port;
    this.logTail = [];
    const log = this.opts.logger;
    const child = spawn(this.serverPath!, this.args(port), { stdio: ['ignore', 'pipe', 'pipe'], env: this.env() });
    this.child = child;
    if (child.pid) {
      const pid = child.pid;
      recordChild(pid, this.serverPath!);
      child.once('exit', () => forgetChild(pid));
    }
    const onLine = (line: string) => {
      this.logTail.push(line);
      if (this.logTail.length > LOG_TAIL) this.logTail.shift();
      log?.debug({ llamaServer: child.pid }, line);
    };
    readline.createInterface({ input: child.stdout! }).on('line', onLine);
    readline.createInterface({ input: child.stderr! }).on('line', onLine);

    let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let spawnError: Error | undefined;
    child.once('error', (err) => {
      spawnError = err;
    });
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      this.onChildExit(child, code, signal);
    });

    const deadline = Date.now() + (this.opts.startupTimeoutMs ?? 120_000);
    for (;;) {
      if (spawnError) throw new LlamaServerError(`cannot start ${this.serverPath}: ${spawnError.message}`);
      if (exitInfo) {
        await sleep(50); // let the last log lines arrive
        throw this.startupFailure(exitInfo.code, exitInfo.signal);
      }
      if (this.stopping) throw new LlamaServerError('llama-server stopped while starting');
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new LlamaServerError(
          `llama-server did not become healthy within ${this.opts.startupTimeoutMs ?? 120_000} ms`,
          this.recentLog,
        );
      }
      try {
        const res = await fetch(`${this.baseUrl}/health`, { signal: AbortSignal.timeout(2000) });
        await res.arrayBuffer();
        if (res.status === 200 && !exitInfo) break;
      } catch {
        /* not listening yet */
      }
      await sleep(100);
    }
    this.ready_ = true;
    log?.info({ port, pid: child.pid, model: this.opts.model, mmproj: this.opts.mmproj }, 'llama-server ready');
    this.emit('ready', port);
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) w.resolve();
    clearTimeout(this.stableTimer);
    this.stableTimer = setTimeout(() => {
      this.restartAttempt = 0;
    }, 60_000);
    this.stableTimer.unref();
  }

  /** Maps a server that died during startup to a typed error, naming the file it could not load. */
  private startupFailure(code: number | null, signal: NodeJS.Signals | null): LlamaServerError {
    const tail = this.recentLog;
    const text = tail.join('\n');
    const how = signal ? `signal ${signal}` : `exit code ${code}`;
    const mmproj = this.opts.mmproj;
    if (mmproj && /mmproj|multimodal|clip_(?:init|model_loader)|mtmd/i.test(text) && /fail|error|unable/i.test(text)) {
      return new ModelFileError(mmproj, 'rejected', `llama-server could not load the projector (${how})`, tail);
    }
    if (/failed to load model|error loading model|llama_model_load|gguf_init/i.test(text)) {
      return new ModelFileError(this.opts.model, 'rejected', `llama-server could not load the model (${how})`, tail);
    }
    return new LlamaServerError(`llama-server exited during startup (${how}); last output:\n${tail.slice(-15).join('\n')}`, tail);
  }

  private onChildExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (child !== this.child) return;
    const wasReady = this.ready_;
    this.ready_ = false;
    const expected = this.stopping;
    this.emit('exit', { code, signal, expected });
    if (expected || !wasReady) return; // startup failures are handled by spawnAndWait's caller
    this.opts.logger?.warn({ code, signal, pid: child.pid }, 'llama-server died; restarting');
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    if (this.stopping) return;
    const max = this.opts.maxRestarts ?? Infinity;
    if (this.restartAttempt >= max) {
      const err = new LlamaServerError(`llama-server gave up after ${this.restartAttempt} restart attempts`, this.recentLog);
      this.rejectWaiters(err);
      this.emit('restart-failed', err);
      return;
    }
    const base = this.opts.restartDelayMs ?? 500;
    const delayMs = backoffDelay({ baseMs: base, maxMs: this.opts.maxRestartDelayMs ?? 30_000 }, this.restartAttempt + 1);
    this.restartAttempt++;
    this.emit('restarting', { attempt: this.restartAttempt, delayMs });
    this.restartTimer = setTimeout(() => {
      if (this.stopping) return;
      this.spawnAndWait().catch((err: Error) => {
        if (this.stopping) return;
        this.opts.logger?.error({ err: err.message }, 'llama-server restart failed');
        this.emit('restart-failed', err);
        this.child?.kill('SIGKILL');
        this.scheduleRestart();
      });
    }, delayMs);
  }

  private rejectWaiters(err: Error): void {
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) w.reject(err);
  }
}

export interface ChatCompletion {
  id: string;
  object: string;
  model: string;
  choices: Array<{ index: number; finish_reason: string | null; message: { role: string; content: string | null } }>;
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
  timings?: { prompt_n?: number; prompt_ms?: number; predicted_n?: number; predicted_ms?: number; predicted_per_second?: number };
}
