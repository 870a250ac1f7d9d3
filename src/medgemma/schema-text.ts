import type { JsonSchema } from './engine.js';

/**
 * A JSON schema written compactly for the prompt, so that the model is told the same shape the
 * grammar enforces (both come from one schema): {"key": type, …}, [item], "a"|"b" for enums,
 * ranges as `integer 1..85` / `number 0..1`, `A | null` for anyOf. Text lengths are left out
 * (the grammar bounds them; the prompt need not spend tokens on them).
 */
export function describeSchema(s: JsonSchema): string {
  if (Array.isArray(s.anyOf)) return (s.anyOf as JsonSchema[]).map(describeSchema).join(' | ');
  if (s.enum) return s.enum.map((e) => JSON.stringify(e)).join('|');
  const type = Array.isArray(s.type) ? s.type.join('|') : s.type;
  if (type === 'object' || s.properties) {
    const req = new Set(s.required ?? []);
    const fields = Object.entries(s.properties ?? {}).map(([k, v]) => `${JSON.stringify(k)}${req.has(k) ? '' : '?'}: ${describeSchema(v)}`);
    return `{${fields.join(', ')}}`;
  }
  if (type === 'array') {
    const item = s.items ? describeSchema(s.items) : 'any';
    const n = s.minItems !== undefined && s.minItems === s.maxItems ? ` ×${String(s.minItems)}` : '';
    return `[${item}${n}]`;
  }
  if ((type === 'integer' || type === 'number') && (s.minimum !== undefined || s.maximum !== undefined))
    return `${type} ${String(s.minimum ?? '')}..${String(s.maximum ?? '')}`;
  return type ?? 'any';
}
