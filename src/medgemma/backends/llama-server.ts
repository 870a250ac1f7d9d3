/** Backend `llama-server`: a supervised local llama.cpp server (multimodal through the mmproj). */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { controlledCall, Semaphore } from '../call-control.js';
import { EngineError, type AnalyzeRequest, type AnalyzeResult, type Engine, type ModelIdentity } from '../engine.js';
import { finishResult } from '../finish.js';
import { postChatCompletion } from '../http-chat.js';
import { LlamaServer, LlamaServerError, type LlamaServerOptions } from '../llama-server.js';
import { modelIdentity } from '../model-identity.js';
import { requestProvenance } from '../request-provenance.js';
import { chatRequestBody, replyFinishReason, replyText, replyTimings } from '../openai-chat.js';

export interface LlamaServerEngineOptions {
  model: string;
  mmproj?: string;
  serverPath?: string;
  threads?: number;
  ctxSize?: number;
  gpuLayers?: LlamaServerOptions['gpuLayers'];
  timeoutMs?: number;
  maxConcurrency?: number;
  logger?: Logger;
  startupTimeoutMs?: number;
  /** MEDGEMMA_TRUSTED_SHA256: decides the identity's `validated` (known-models.ts). */
  trustedSha256?: readonly string[];
  /** LLAMA_NO_REPACK (no-repack.ts); default 'auto'. */
  noRepack?: LlamaServerOptions['noRepack'];
}

export class LlamaServerEngine implements Engine {
  readonly backend = 'llama-server' as const;
  readonly server: LlamaServer;
  private readonly semaphore: Semaphore;
  private identity: ModelIdentity | undefined;
  /**
   * Images go to llama-server as files in this private folder (--media-path), not as base64 in
   * the body: 85 CT slices at 896² are ~100 MB of PNG, over llama-server's request limit, and
   * base64 + JSON cost ~20 ms per image. One sub-folder per call, removed when it ends.
   */
  private readonly mediaDir: string;

  constructor(private readonly o: LlamaServerEngineOptions) {
    const parallel = o.maxConcurrency ?? 1;
    this.semaphore = new Semaphore(parallel);
    this.mediaDir = fs.mkdtempSync(path.join(os.tmpdir(), 'radiant-media-'));
    fs.chmodSync(this.mediaDir, 0o700);
    this.server = new LlamaServer({
      mediaDir: this.mediaDir,
      model: o.model,
      mmproj: o.mmproj,
      serverPath: o.serverPath,
      threads: o.threads,
      // llama-server splits the context between its slots
      ctxSize: o.ctxSize !== undefined ? o.ctxSize * parallel : undefined,
      gpuLayers: o.gpuLayers,
      parallel,
      logger: o.logger,
      startupTimeoutMs: o.startupTimeoutMs,
      noRepack: o.noRepack,
    });
  }

  get multimodal(): boolean {
    return Boolean(this.o.mmproj);
  }

  /** Per call: llama-server's context divided among its slots is MEDGEMMA_CONTEXT each. */
  get contextTokens(): number | undefined {
    return this.o.ctxSize;
  }

  /** From the projector (model-identity.ts), once started. */
  get imageTokens(): number | undefined {
    return this.identity?.mmproj?.imageTokens ?? undefined;
  }

  /** The known release the GGUF claims to be (known-models.ts), once started. */
  get modelClaim(): string | undefined {
    return this.identity?.validation.release;
  }

  /** llama-server's own /health: 200 once the model is loaded (503 while loading). */
  async probe(signal: AbortSignal): Promise<void> {
    if (!this.server.ready) throw new EngineError('unavailable', 'llama-server is not running');
    const res = await fetch(`${this.server.baseUrl}/health`, { signal });
    await res.arrayBuffer();
    if (res.status !== 200) throw new EngineError('unavailable', `llama-server /health answered ${res.status}`);
  }

  /** Starts llama-server and hashes the model files (both once). */
  async start(): Promise<this> {
    try {
      const [identity] = await Promise.all([modelIdentity(this.o.model, this.o.mmproj, this.o.trustedSha256), this.server.start()]);
      this.identity = identity;
    } catch (err) {
      await this.server.stop().catch(() => undefined);
      await fsp.rm(this.mediaDir, { recursive: true, force: true });
      if (err instanceof EngineError) throw err;
      throw new EngineError('unavailable', `llama-server backend cannot start: ${(err as Error).message}`, { cause: err });
    }
    return this;
  }

  analyze<T = unknown>(req: AnalyzeRequest): Promise<AnalyzeResult<T>> {
    if (!this.identity) return Promise.reject(new EngineError('unavailable', 'llama-server backend not started'));
    if (req.images.length && !this.multimodal)
      return Promise.reject(new EngineError('unavailable', 'llama-server was started without an mmproj: no image input'));
    const started = performance.now();
    return controlledCall({ timeoutMs: this.o.timeoutMs ?? 120_000, semaphore: this.semaphore }, req.signal, async (signal) => {
      try {
        await Promise.race([
          this.server.whenReady(),
          new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true })),
        ]);
      } catch (err) {
        if (err instanceof LlamaServerError)
          throw new EngineError('unavailable', `llama-server is not available: ${err.message}`, { cause: err });
        throw err;
      }
      const call = req.images.length ? randomBytes(12).toString('hex') : undefined;
      try {
        let urls: string[] | undefined;
        if (call) {
          await fsp.mkdir(path.join(this.mediaDir, call), { mode: 0o700 });
          urls = await Promise.all(
            req.images.map(async (png, i) => {
              await fsp.writeFile(path.join(this.mediaDir, call, `${i}.png`), png, { mode: 0o600 });
              return `file://${call}/${i}.png`;
            }),
          );
        }
        const body = chatRequestBody(req, undefined, urls);
        const sent = performance.now();
        const reply = await postChatCompletion({
          url: `${this.server.baseUrl}/v1/chat/completions`,
          apiKey: this.server.apiKey,
          body,
          signal,
          retries: 0,
          backend: 'llama-server',
        });
        const now = performance.now();
        return finishResult<T>(
          replyText(reply),
          req.schema,
          'llama-server',
          this.identity!,
          replyTimings(reply, now - sent, now - started),
          replyFinishReason(reply),
          req.phi,
          // The media files hold exactly req.images' bytes.
          requestProvenance(body, { images: req.images, llamaBuild: reply.system_fingerprint ?? null }),
        );
      } finally {
        if (call) await fsp.rm(path.join(this.mediaDir, call), { recursive: true, force: true });
      }
    });
  }

  async close(): Promise<void> {
    await this.server.stop();
    await fsp.rm(this.mediaDir, { recursive: true, force: true });
  }
}
