/**
 * Parses the model's text as JSON and checks it against the schema's shape: types, required keys,
 * enums, nested objects and arrays (a subset of JSON Schema; constrained decoding does the rest).
 * A ```json fence or prose around one JSON object is accepted. Any failure is
 * EngineError('bad_output') carrying the raw text.
 */
import { jsonCandidate } from './answer-text.js';
import { EngineError, type JsonSchema } from './engine.js';

export function parseModelJson(text: string, schema: JsonSchema): unknown {
  let value: unknown;
  try {
    value = JSON.parse(jsonCandidate(text));
  } catch (err) {
    throw new EngineError('bad_output', `model output is not JSON: ${(err as Error).message}`, { rawText: text });
  }
  const problems = validateShape(value, schema, '$');
  if (problems.length)
    throw new EngineError('bad_output', `model output does not match the schema: ${problems.slice(0, 5).join('; ')}`, { rawText: text });
  return value;
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

/** Returns a list of problems ("$.findings[0].confidence: expected number, got string"). */
export function validateShape(value: unknown, schema: JsonSchema, at = '$'): string[] {
  const out: string[] = [];
  const actual = typeOf(value);
  if (schema.type !== undefined) {
    const allowed = Array.isArray(schema.type) ? schema.type : [schema.type];
    const ok = allowed.some((t) => t === actual || (t === 'number' && actual === 'integer'));
    if (!ok) return [`${at}: expected ${allowed.join('|')}, got ${actual}`];
  }
  if (schema.enum && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value)))
    out.push(`${at}: not one of ${JSON.stringify(schema.enum)}`);
  if (actual === 'object' && (schema.properties || schema.required)) {
    const obj = value as Record<string, unknown>;
    for (const key of schema.required ?? []) if (!(key in obj)) out.push(`${at}: missing required key "${key}"`);
    for (const [key, sub] of Object.entries(schema.properties ?? {}))
      if (key in obj) out.push(...validateShape(obj[key], sub, `${at}.${key}`));
  }
  if (actual === 'array' && schema.items)
    (value as unknown[]).forEach((v, i) => out.push(...validateShape(v, schema.items!, `${at}[${i}]`)));
  return out;
}
