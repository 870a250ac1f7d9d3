/**
 * POST /v1/chat/completions to an OpenAI-compatible server, with retries and typed errors:
 * 401/403 -> auth, 429 -> rate_limited, 5xx and other 4xx -> upstream, network failure ->
 * upstream. Retried with exponential back-off (Retry-After honoured, capped): 408, 429, 5xx and
 * network failures; never another 4xx (EngineError.retryable). A non-JSON reply -> bad_output.
 *
 * Sent with node:http(s), not fetch: fetch's dispatcher (undici) drops a request that has had no
 * response headers for 300 s (headersTimeout) or a silent body for 300 s (bodyTimeout), and
 * llama-server sends nothing until it has finished, so a CPU analysis of a few slices died at 300 s
 * whatever MEDGEMMA_TIMEOUT_MS said. node's client has no such limit: the call's own signal
 * (MEDGEMMA_TIMEOUT_MS, the caller's cancel) is the only one.
 */
import http from 'node:http';
import https from 'node:https';
import { backoffDelay } from '../backoff.js';
import { EngineError } from './engine.js';
import type { ChatReply } from './openai-chat.js';
import { nodeMetrics } from '../observability/node-metrics.js';
import { SpanKind, traced } from '../observability/tracing.js';

export interface PostChatOptions {
  url: string;
  apiKey?: string;
  body: unknown;
  signal: AbortSignal;
  /** Extra attempts after the first; default 3. */
  retries?: number;
  /** First back-off delay; doubles each attempt; default 500 ms. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Largest body to send, in bytes: a larger one fails as too_large before any connection. */
  maxBodyBytes?: number;
  /** Called before each retry (tests, logging). */
  onRetry?: (info: { attempt: number; delayMs: number; error: EngineError }) => void;
  /** The engine's kind, for the model latency metric (radiant_model_request_duration_seconds). */
  backend: 'llama-server' | 'remote';
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function statusError(status: number, text: string, url: string): EngineError {
  const snippet = text.slice(0, 300).replace(/\s+/g, ' ');
  if (status === 401 || status === 403)
    return new EngineError('auth', `MedGemma endpoint ${url} refused the API key (${status}): check MEDGEMMA_API_KEY`, { status });
  if (status === 429) return new EngineError('rate_limited', `MedGemma endpoint ${url} is rate limiting (429): ${snippet}`, { status });
  if (status >= 500) return new EngineError('upstream', `MedGemma endpoint ${url} failed (${status}): ${snippet}`, { status });
  return new EngineError('upstream', `MedGemma endpoint ${url} rejected the request (${status}): ${snippet}`, { status });
}

/** One model request (retries included), timed by backend and outcome. */
export async function postChatCompletion(o: PostChatOptions): Promise<ChatReply> {
  const end = nodeMetrics.modelDuration.startTimer({ backend: o.backend });
  try {
    const reply = await traced('model chat', { 'radiant.engine': o.backend }, () => postChat(o), SpanKind.CLIENT);
    end({ outcome: 'success' });
    return reply;
  } catch (err) {
    end({ outcome: o.signal.aborted ? 'aborted' : err instanceof EngineError ? err.kind : 'error' });
    throw err;
  }
}

interface RawReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/**
 * One POST, the whole reply read. No keep-alive: a model call lasts seconds to minutes, so a new
 * connection costs nothing, and a pooled socket the server closed meanwhile would fail a call
 * that is not retried (llama-server). Redirects are not followed (an error, as any 3xx).
 */
function post(url: string, headers: Record<string, string>, body: string, signal: AbortSignal): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return reject(new Error(`unsupported protocol ${u.protocol}`));
    const client = u.protocol === 'https:' ? https : http;
    const req = client.request(
      u,
      { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, signal, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
        res.on('close', () => {
          if (!res.complete) reject(Object.assign(new Error('connection closed before the reply ended'), { code: 'ECONNRESET' }));
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function postChat(o: PostChatOptions): Promise<ChatReply> {
  const retries = o.retries ?? 3;
  const base = o.baseDelayMs ?? 500;
  const body = JSON.stringify(o.body);
  const bytes = Buffer.byteLength(body);
  if (o.maxBodyBytes !== undefined && bytes > o.maxBodyBytes)
    throw new EngineError(
      'too_large',
      `request of ${(bytes / 1e6).toFixed(1)} MB exceeds MEDGEMMA_MAX_REQUEST_MB (${(o.maxBodyBytes / 1e6).toFixed(1)} MB): lower MEDGEMMA_MAX_SLICES`,
    );
  for (let attempt = 1; ; attempt++) {
    let err: EngineError;
    let retryAfterMs: number | undefined;
    try {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (o.apiKey) headers.authorization = `Bearer ${o.apiKey}`;
      const res = await post(o.url, headers, body, o.signal);
      const text = res.text;
      if (res.status >= 200 && res.status < 300) {
        try {
          return JSON.parse(text) as ChatReply;
        } catch {
          throw new EngineError(
            'bad_output',
            `MedGemma endpoint ${o.url} answered ${res.status} with a body that is not JSON: ${text.slice(0, 200)}`,
            { status: res.status, rawText: text },
          );
        }
      }
      err = statusError(res.status, text, o.url);
      const ra = Number(res.headers['retry-after'] ?? Number.NaN);
      if (Number.isFinite(ra) && ra >= 0) retryAfterMs = ra * 1000;
    } catch (e) {
      if (e instanceof EngineError) throw e;
      if (o.signal.aborted) throw e; // mapped to timeout/cancelled by the caller
      const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      err = new EngineError('upstream', `MedGemma endpoint ${o.url} unreachable or connection lost (${why})`, { cause: e });
    }
    if (!err.retryable || attempt > retries) {
      err.details.attempts = attempt;
      if (attempt > 1) err.message += ` (after ${attempt} attempts)`;
      throw err;
    }
    const maxMs = o.maxDelayMs ?? 30_000;
    const delayMs = retryAfterMs !== undefined ? Math.min(maxMs, retryAfterMs) : backoffDelay({ baseMs: base, maxMs }, attempt);
    o.onRetry?.({ attempt, delayMs, error: err });
    await sleep(delayMs, o.signal);
  }
}
