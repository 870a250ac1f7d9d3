/** Backend `llama-server`: a supervised local llama.cpp server (multimodal through the mmproj). */
import type { Logger } from 'pino';
import { controlledCall, Semaphore } from '../call-control.js';
import { EngineError, type AnalyzeRequest, type AnalyzeResult, type Engine, type ModelIdentity } from '../engine.js';
import { finishResult } from '../finish.js';
import { postChatCompletion } from '../http-chat.js';
import { LlamaServer, LlamaServerError, type LlamaServerOptions } from '../llama-server.js';
import { modelIdentity } from '../model-identity.js';
import { chatRequestBody, replyText, replyTimings } from '../openai-chat.js';

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
}

export class LlamaServerEngine implements Engine {
  readonly backend = 'llama-server' as const;
  readonly server: LlamaServer;
  private readonly semaphore: Semaphore;
  private identity: ModelIdentity | undefined;

  constructor(private readonly o: LlamaServerEngineOptions) {
    const parallel = o.maxConcurrency ?? 1;
    this.semaphore = new Semaphore(parallel);
    this.server = new LlamaServer({
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
    });
  }

  get multimodal(): boolean {
    return Boolean(this.o.mmproj);
  }

  /** Starts llama-server and hashes the model files (both once). */
  async start(): Promise<this> {
    try {
      const [identity] = await Promise.all([modelIdentity(this.o.model, this.o.mmproj), this.server.start()]);
      this.identity = identity;
    } catch (err) {
      await this.server.stop().catch(() => undefined);
      if (err instanceof EngineError) throw err;
      throw new EngineError('unavailable', `llama-server backend cannot start: ${(err as Error).message}`, { cause: err });
    }
    return this;
  }

  analyze<T = unknown>(req: AnalyzeRequest): Promise<AnalyzeResult<T>> {
    if (!this.identity) return Promise.reject(new EngineError('unavailable', 'llama-server backend not started'));
    if (req.images.length && !this.multimodal) return Promise.reject(new EngineError('unavailable', 'llama-server was started without an mmproj: no image input'));
    const started = performance.now();
    return controlledCall({ timeoutMs: this.o.timeoutMs ?? 120_000, semaphore: this.semaphore }, req.signal, async (signal) => {
      try {
        await Promise.race([
          this.server.whenReady(),
          new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true })),
        ]);
      } catch (err) {
        if (err instanceof LlamaServerError) throw new EngineError('unavailable', `llama-server is not available: ${err.message}`, { cause: err });
        throw err;
      }
      const sent = performance.now();
      const reply = await postChatCompletion({
        url: `${this.server.baseUrl}/v1/chat/completions`,
        apiKey: this.server.apiKey,
        body: chatRequestBody(req),
        signal,
        retries: 0,
      });
      const now = performance.now();
      return finishResult<T>(replyText(reply), req.schema, 'llama-server', this.identity!, replyTimings(reply, now - sent, now - started));
    });
  }

  async close(): Promise<void> {
    await this.server.stop();
  }
}
