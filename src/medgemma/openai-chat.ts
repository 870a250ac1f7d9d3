/**
 * The OpenAI-compatible chat request for one analyze() call (the recipe's messages, images as PNG
 * data URLs, JSON-schema response format, sampling) and the reading of its reply. Shared by the
 * llama-server and remote backends.
 */
import type { AnalyzeRequest, EngineTimings } from './engine.js';
import { SYSTEM_PROMPT } from './safety.js';

/** The system message a request asks for: its own, SYSTEM_PROMPT by default, none for null. */
export function systemMessage(req: AnalyzeRequest): string | null {
  return req.systemPrompt === undefined ? SYSTEM_PROMPT : req.systemPrompt;
}

/**
 * The user message's parts in the order the recipe (recipes.ts) sends them: 'labelled' (MedGemma
 * 1.5) is the instruction, each image followed by its label, then the question; otherwise the
 * text (prompt, question) then the images. `image(i)` gives the i-th image part.
 */
export function userParts<P>(req: AnalyzeRequest, text: (t: string) => P, image: (i: number) => P): P[] {
  if (req.imageLabels) {
    const parts = [text(req.prompt)];
    req.images.forEach((_png, i) => {
      parts.push(image(i));
      const label = req.imageLabels![i];
      if (label) parts.push(text(label));
    });
    if (req.question) parts.push(text(req.question));
    return parts;
  }
  return [text(req.question ? `${req.prompt}\n${req.question}` : req.prompt), ...req.images.map((_png, i) => image(i))];
}

/**
 * imageUrls, when given, replace the data URLs (one per image): the local llama-server reads the
 * PNGs from its media folder, which keeps an 85-image CT request far below its 100 MB body limit.
 * Greedy decoding: temperature 0 unless asked, top_k only when the request sets it.
 */
export function chatRequestBody(req: AnalyzeRequest, model?: string, imageUrls?: readonly string[]): Record<string, unknown> {
  const content = userParts<unknown>(
    req,
    (text) => ({ type: 'text', text }),
    (i) => ({ type: 'image_url', image_url: { url: imageUrls?.[i] ?? `data:image/png;base64,${req.images[i]!.toString('base64')}` } }),
  );
  const system = systemMessage(req);
  const user = content.length === 1 && !req.images.length ? (content[0] as { text: string }).text : content;
  const body: Record<string, unknown> = {
    messages: [...(system !== null ? [{ role: 'system', content: system }] : []), { role: 'user', content: user }],
    max_tokens: req.maxTokens ?? 1024,
    temperature: req.temperature ?? 0,
    response_format: { type: 'json_schema', json_schema: { name: 'findings', strict: true, schema: req.schema } },
  };
  if (req.topK !== undefined) body.top_k = req.topK;
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
