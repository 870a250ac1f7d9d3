/**
 * Digests of one chat request as it was sent (pure): the system prompt, the user message, the
 * answer's JSON schema, the sampling parameters and every image's bytes. Computed from the
 * OpenAI-style body itself, so whatever the recipe puts in the request is what is hashed.
 */
import { createHash } from 'node:crypto';
import type { RequestProvenance } from './engine.js';

const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

/** Every image's digest folded into one (the audit row and the SR's Algorithm Parameters carry it). */
export function imagesDigest(imageSha256: readonly string[]): string {
  return sha256(imageSha256.join('\n'));
}

/** JSON with object keys sorted at every level: one text per value, whatever the insertion order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

/** Body keys that steer decoding; whichever of them the request carries are its sampling parameters. */
const SAMPLING_KEYS = [
  'temperature',
  'top_k',
  'top_p',
  'min_p',
  'seed',
  'max_tokens',
  'max_completion_tokens',
  'n_predict',
  'repeat_penalty',
  'presence_penalty',
  'frequency_penalty',
] as const;

interface Part {
  type?: string;
  text?: string;
  image_url?: { url?: string };
}
interface Message {
  role?: string;
  content?: string | Part[] | null;
}

const textOf = (content: Message['content']): string =>
  typeof content === 'string' ? content : (content ?? []).map((p) => (p.type === 'text' ? (p.text ?? '') : '')).join('');

/**
 * body: the chat completion request; images: the bytes behind image parts that are not data URLs
 * (llama-server's file:// media), by position among the image parts; schema: the schema when the
 * body carries none (a grammar built from it); llamaBuild: what the backend reports.
 */
export function requestProvenance(
  body: Record<string, unknown>,
  opts: { images?: readonly Buffer[]; schema?: unknown; llamaBuild?: string | null } = {},
): RequestProvenance {
  const messages = (Array.isArray(body.messages) ? body.messages : []) as Message[];
  const system = messages.filter((m) => m.role === 'system');
  const imageSha256: string[] = [];
  const userContent = messages
    .filter((m) => m.role === 'user')
    .map((m) => {
      if (typeof m.content === 'string' || !m.content) return m.content ?? '';
      return m.content.map((p) => {
        if (p.type !== 'image_url') return p;
        const url = p.image_url?.url ?? '';
        const comma = url.indexOf(',');
        const bytes =
          url.startsWith('data:') && comma > 0 ? Buffer.from(url.slice(comma + 1), 'base64') : opts.images?.[imageSha256.length];
        imageSha256.push(bytes ? sha256(bytes) : sha256(url));
        return { type: 'image', index: imageSha256.length - 1 };
      });
    });
  const format = body.response_format as { json_schema?: { schema?: unknown }; schema?: unknown } | undefined;
  const schema = format?.json_schema?.schema ?? format?.schema ?? opts.schema ?? null;
  const sampling: RequestProvenance['sampling'] = {};
  for (const k of SAMPLING_KEYS) {
    const v = body[k];
    if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean' || v === null) sampling[k] = v;
  }
  return {
    systemPromptSha256: system.length ? sha256(system.map((m) => textOf(m.content)).join('\n')) : null,
    userPromptSha256: sha256(canonicalJson(userContent.length === 1 ? userContent[0] : userContent)),
    schemaSha256: sha256(canonicalJson(schema)),
    sampling,
    samplingSha256: sha256(canonicalJson(sampling)),
    imageSha256,
    llamaBuild: opts.llamaBuild ?? null,
  };
}
