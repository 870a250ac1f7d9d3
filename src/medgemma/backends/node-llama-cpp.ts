/**
 * Backend `node-llama-cpp`: the model in process, text only (node-llama-cpp 3.22 has no image
 * input), output constrained by a grammar built from the JSON schema
 * (llama.createGrammarForJsonSchema).
 */
import { getLlama, LlamaChatSession, type Llama, type LlamaContext, type LlamaModel } from 'node-llama-cpp';
import { controlledCall, Semaphore } from '../call-control.js';
import { EngineError, type AnalyzeRequest, type AnalyzeResult, type Engine, type ModelIdentity } from '../engine.js';
import { finishResult } from '../finish.js';
import { modelIdentity } from '../model-identity.js';
import { systemMessage, userParts } from '../openai-chat.js';
import { requestProvenance } from '../request-provenance.js';

export interface NodeLlamaCppEngineOptions {
  model: string;
  device?: 'auto' | 'cuda' | 'cpu';
  contextSize?: number;
  gpuLayers?: number | 'auto' | 'max';
  threads?: number;
  timeoutMs?: number;
  maxConcurrency?: number;
  /** MEDGEMMA_TRUSTED_SHA256: decides the identity's `validated` (known-models.ts). */
  trustedSha256?: readonly string[];
}

export class NodeLlamaCppEngine implements Engine {
  readonly backend = 'node-llama-cpp' as const;
  readonly multimodal = false;
  get contextTokens(): number {
    return this.o.contextSize ?? 4096;
  }
  private readonly semaphore: Semaphore;
  private llama: Llama | undefined;
  private model: LlamaModel | undefined;
  private context: LlamaContext | undefined;
  private identity: ModelIdentity | undefined;
  private readonly grammars = new Map<string, Promise<Awaited<ReturnType<Llama['createGrammarForJsonSchema']>>>>();

  constructor(private readonly o: NodeLlamaCppEngineOptions) {
    this.semaphore = new Semaphore(o.maxConcurrency ?? 1);
  }

  async start(): Promise<this> {
    try {
      const gpu = this.o.device === 'cpu' ? false : this.o.device === 'cuda' ? 'cuda' : 'auto';
      this.llama = await getLlama({ gpu, build: 'never', logLevel: 'error' as never });
      this.model = await this.llama.loadModel({
        modelPath: this.o.model,
        gpuLayers: this.o.device === 'cpu' ? 0 : (this.o.gpuLayers ?? 'auto'),
      });
      this.context = await this.model.createContext({
        contextSize: this.o.contextSize ?? 4096,
        sequences: this.o.maxConcurrency ?? 1,
        threads: this.o.threads,
      });
      this.identity = await modelIdentity(this.o.model, undefined, this.o.trustedSha256);
    } catch (err) {
      await this.close();
      throw new EngineError('unavailable', `node-llama-cpp backend cannot load ${this.o.model}: ${(err as Error).message}`, { cause: err });
    }
    return this;
  }

  private grammar(schema: object) {
    const key = JSON.stringify(schema);
    let g = this.grammars.get(key);
    if (!g) {
      g = this.llama!.createGrammarForJsonSchema(schema as never);
      this.grammars.set(key, g);
      g.catch(() => this.grammars.delete(key));
    }
    return g;
  }

  analyze<T = unknown>(req: AnalyzeRequest): Promise<AnalyzeResult<T>> {
    if (!this.context) return Promise.reject(new EngineError('unavailable', 'node-llama-cpp backend not started'));
    if (req.images.length)
      return Promise.reject(
        new EngineError('unavailable', 'the node-llama-cpp backend is text-only: use llama-server or remote for images'),
      );
    const started = performance.now();
    return controlledCall({ timeoutMs: this.o.timeoutMs ?? 120_000, semaphore: this.semaphore }, req.signal, async (signal) => {
      let grammar;
      try {
        grammar = await this.grammar(req.schema);
      } catch (err) {
        throw new EngineError('upstream', `cannot build a grammar from the schema: ${(err as Error).message}`, { cause: err });
      }
      const sequence = this.context!.getSequence();
      const system = systemMessage(req);
      const session = new LlamaChatSession({ contextSequence: sequence, systemPrompt: system ?? undefined });
      let firstAt: number | undefined;
      const sent = performance.now();
      const userText = userParts(
        req,
        (t) => t,
        () => '',
      ).join('\n');
      try {
        const text = await session.prompt(userText, {
          grammar,
          maxTokens: req.maxTokens ?? 1024,
          temperature: req.temperature ?? 0,
          ...(req.topK !== undefined ? { topK: req.topK } : {}),
          seed: req.seed,
          signal,
          onTextChunk: () => {
            firstAt ??= performance.now();
          },
        });
        const now = performance.now();
        const tokens = this.model!.tokenize(text).length;
        const promptMs = (firstAt ?? now) - sent;
        const predictedMs = now - (firstAt ?? now);
        return finishResult<T>(
          text,
          req.schema,
          'node-llama-cpp',
          this.identity!,
          {
            promptMs,
            predictedMs,
            tokens,
            tokensPerSecond: predictedMs > 0 ? (tokens * 1000) / predictedMs : 0,
            totalMs: now - started,
          },
          null,
          req.phi,
          requestProvenance(
            {
              messages: [...(system === null ? [] : [{ role: 'system', content: system }]), { role: 'user', content: userText }],
              max_tokens: req.maxTokens ?? 1024,
              temperature: req.temperature ?? 0,
              ...(req.seed !== undefined ? { seed: req.seed } : {}),
            },
            { schema: req.schema, llamaBuild: this.llama?.llamaCppRelease.release ?? null },
          ),
        );
      } catch (err) {
        if (err instanceof EngineError || signal.aborted) throw err;
        throw new EngineError('upstream', `node-llama-cpp failed: ${(err as Error).message}`, { cause: err });
      } finally {
        session.dispose({ disposeSequence: true });
      }
    });
  }

  async close(): Promise<void> {
    await this.context?.dispose();
    await this.model?.dispose();
    this.context = undefined;
    this.model = undefined;
  }
}
