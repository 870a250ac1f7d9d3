/**
 * Backend `remote`: any OpenAI-compatible chat endpoint (MEDGEMMA_API_ENDPOINT, MEDGEMMA_API_KEY),
 * over https unless the host is loopback or MEDGEMMA_API_ALLOW_HTTP=true. Its model is never
 * validated: nothing about the weights behind an endpoint can be checked from here.
 */
import { insecureEndpoint } from '../../config.js';
import { controlledCall, Semaphore } from '../call-control.js';
import { type AnalyzeRequest, type AnalyzeResult, type Engine, EngineError } from '../engine.js';
import { finishResult } from '../finish.js';
import { postChatCompletion, type PostChatOptions } from '../http-chat.js';
import { chatRequestBody, replyFinishReason, replyText, replyTimings } from '../openai-chat.js';
import { imageDataUrls } from '../image-budget.js';
import { requestProvenance } from '../request-provenance.js';
import { REMOTE_VALIDATION } from '../known-models.js';

export interface RemoteEngineOptions {
  /** Base URL (…/v1 or the server root) or the full …/chat/completions URL. */
  endpoint: string;
  apiKey?: string;
  /** The model name sent in the request; default "medgemma". */
  model?: string;
  timeoutMs?: number;
  maxConcurrency?: number;
  retries?: number;
  baseDelayMs?: number;
  onRetry?: PostChatOptions['onRetry'];
  /** Largest request body to send, in bytes (images are re-encoded as JPEG to fit); default 90 MB. */
  maxRequestBytes?: number;
  /** Plain http:// to a non-loopback host (MEDGEMMA_API_ALLOW_HTTP); default false. */
  allowHttp?: boolean;
  /** The endpoint's context per call as the admin declares it (MEDGEMMA_CONTEXT); undefined: not checked. */
  contextTokens?: number;
}

export function chatCompletionsUrl(endpoint: string): string {
  const e = endpoint.replace(/\/+$/, '');
  if (/\/chat\/completions$/.test(e)) return e;
  if (/\/v1$/.test(e)) return `${e}/chat/completions`;
  return `${e}/v1/chat/completions`;
}

export class RemoteEngine implements Engine {
  readonly backend = 'remote' as const;
  readonly multimodal = true;
  readonly contextTokens: number | undefined;
  /** The model name sent: all that says which release answers (MEDGEMMA_RECIPE=auto). */
  readonly modelClaim: string;
  private readonly url: string;
  private readonly semaphore: Semaphore;
  constructor(private readonly o: RemoteEngineOptions) {
    this.url = chatCompletionsUrl(o.endpoint);
    const insecure = insecureEndpoint(this.url, o.allowHttp ?? false);
    if (insecure) throw new EngineError('unavailable', `MedGemma endpoint ${o.endpoint}: ${insecure}`);
    this.semaphore = new Semaphore(o.maxConcurrency ?? 1);
    this.contextTokens = o.contextTokens;
    this.modelClaim = o.model ?? 'medgemma';
  }

  analyze<T = unknown>(req: AnalyzeRequest): Promise<AnalyzeResult<T>> {
    const started = performance.now();
    return controlledCall({ timeoutMs: this.o.timeoutMs ?? 120_000, semaphore: this.semaphore }, req.signal, async (signal) => {
      // Room for the prompt, schema and JSON around the images.
      const maxBytes = this.o.maxRequestBytes ?? 90e6;
      const images = req.images.length ? await imageDataUrls(req.images, maxBytes - 1e6) : undefined;
      const body = chatRequestBody(req, this.o.model ?? 'medgemma', images?.urls);
      const sent = performance.now();
      const reply = await postChatCompletion({
        url: this.url,
        apiKey: this.o.apiKey,
        body,
        signal,
        retries: this.o.retries,
        baseDelayMs: this.o.baseDelayMs,
        onRetry: this.o.onRetry,
        maxBodyBytes: maxBytes,
        backend: 'remote',
      });
      const now = performance.now();
      return finishResult<T>(
        replyText(reply),
        req.schema,
        'remote',
        {
          name: reply.model ?? this.o.model ?? 'medgemma',
          sha256: null,
          quantization: null,
          validated: false,
          validation: REMOTE_VALIDATION,
        },
        replyTimings(reply, now - sent, now - started),
        replyFinishReason(reply),
        req.phi,
        // What an endpoint says of its build cannot be checked from here: not recorded.
        requestProvenance(body),
      );
    });
  }

  async close(): Promise<void> {}
}
