/**
 * The OpenAI-compatible chat request for one analyze() call (system prompt, prompt, images as PNG
 * data URLs, JSON-schema response format) and the reading of its reply. Shared by the llama-server
 * and remote backends.
 */
import type { AnalyzeRequest, EngineTimings } from './engine.js';
import { SYSTEM_PROMPT } from './safety.js';

/**
 * imageUrls, when given, replace the data URLs (one per image): the local llama-server reads the
 * PNGs from its media folder, which keeps an 85-image CT request far below its 100 MB body limit.
 */
export function chatRequestBody(req: AnalyzeRequest, model?: string, imageUrls?: readonly string[]): Record<string, unknown> {
  const content: unknown[] = [{ type: 'text', text: req.prompt }];
  req.images.forEach((png, i) => {
    content.push({ type: 'image_url', image_url: { url: imageUrls?.[i] ?? `data:image/png;base64,${png.toString('base64')}` } });
  });
  const body: Record<string, unknown> = {
    messages: [
      { role: 'system', content: SYSTEM_PROMPT },
      { role: 'user', content: req.images.length ? content : req.prompt },
    ],
    max_tokens: req.maxTokens ?? 1024,
    temperature: req.temperature ?? 0,
    response_format: { type: 'json_schema', json_schema: { name: 'findings', strict: true, schema: req.schema } },
  };
  if (req.seed !== undefined) body.seed = req.seed;
  if (model) body.model = model;
  return body;
}

export interface ChatReply {
  model?: string;
  /** llama-server: its llama.cpp build ("b<number>-<commit>"). */
  system_fingerprint?: string;
  choices?: Array<{ finish_reason?: string | null; message?: { content?: string | null; reasoning_content?: string | null } }>;
  usage?: { prompt_tokens?: number; completion_tokens?: number };
  timings?: { prompt_n?: number; prompt_ms?: number; predicted_ms?: number; predicted_n?: number; predicted_per_second?: number };
}

export function replyText(reply: ChatReply): string {
  return reply.choices?.[0]?.message?.content ?? '';
}

/** Why generation stopped ('stop', 'length'…); null when the server does not say. */
export function replyFinishReason(reply: ChatReply): string | null {
  return reply.choices?.[0]?.finish_reason ?? null;
}

/** Timings from llama-server's `timings`, or from usage and the wall clock for other servers. */
export function replyTimings(reply: ChatReply, wallMs: number, totalMs: number): EngineTimings {
  const t = reply.timings;
  const promptTokens = reply.usage?.prompt_tokens ?? t?.prompt_n;
  const counted = promptTokens !== undefined ? { promptTokens } : {};
  if (t && typeof t.predicted_ms === 'number') {
    const tokens = t.predicted_n ?? reply.usage?.completion_tokens ?? 0;
    return {
      promptMs: t.prompt_ms ?? 0,
      predictedMs: t.predicted_ms,
      tokens,
      tokensPerSecond: t.predicted_per_second ?? (t.predicted_ms > 0 ? (tokens * 1000) / t.predicted_ms : 0),
      totalMs,
      ...counted,
    };
  }
  const tokens = reply.usage?.completion_tokens ?? 0;
  return { promptMs: 0, predictedMs: wallMs, tokens, tokensPerSecond: wallMs > 0 ? (tokens * 1000) / wallMs : 0, totalMs, ...counted };
}
