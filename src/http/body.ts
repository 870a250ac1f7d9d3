import type { ZodType } from 'zod';
import { HttpError } from './errors.js';
import type { BaseContext } from './state.js';

/** Small JSON or form bodies only; large bodies (DICOM) are streamed by their routes. */
const MAX_FORM_BYTES = 1024 * 1024;

// The rest of the body is not read: the connection closes after the answer (no reuse mid-body).
const tooLarge = () =>
  new HttpError(413, 'payload_too_large', `body larger than ${MAX_FORM_BYTES} bytes`, undefined, { Connection: 'close' });

async function readSmall(ctx: BaseContext): Promise<string> {
  const declared = Number(ctx.get('content-length') || 0);
  if (declared > MAX_FORM_BYTES) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > MAX_FORM_BYTES) throw tooLarge();
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function readJson<T>(ctx: BaseContext, schema: ZodType<T>): Promise<T> {
  if (!ctx.is('application/json')) throw new HttpError(415, 'unsupported_media_type', 'expected application/json');
  const text = await readSmall(ctx);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'invalid_json', 'body is not valid JSON');
  }
  return schema.parse(value);
}

/** application/x-www-form-urlencoded (OAuth2 password grant), or JSON for convenience. */
export async function readForm<T>(ctx: BaseContext, schema: ZodType<T>): Promise<T> {
  if (ctx.is('application/json')) return readJson(ctx, schema);
  if (!ctx.is('application/x-www-form-urlencoded')) {
    throw new HttpError(415, 'unsupported_media_type', 'expected application/x-www-form-urlencoded');
  }
  const params = new URLSearchParams(await readSmall(ctx));
  return schema.parse(Object.fromEntries(params));
}

/** A DICOM JSON body (PS3.18 F.2: application/dicom+json, or plain application/json), parsed, not yet checked. */
export async function readDicomJson(ctx: BaseContext): Promise<unknown> {
  if (!ctx.is('application/dicom+json', 'application/json')) {
    throw new HttpError(415, 'unsupported_media_type', 'expected application/dicom+json');
  }
  const text = await readSmall(ctx);
  try {
    return text.trim() === '' ? undefined : JSON.parse(text);
  } catch {
    throw new HttpError(400, 'invalid_json', 'body is not valid JSON');
  }
}
