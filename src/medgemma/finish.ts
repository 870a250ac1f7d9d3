/** The last step every backend shares: safety post-check, then JSON parse + schema shape check. */
import type { AnalyzeResult, EngineBackendName, EngineTimings, JsonSchema, ModelIdentity } from './engine.js';
import { EngineError } from './engine.js';
import { parseModelJson } from './output.js';
import { postCheck } from './safety.js';

export function finishResult<T>(
  text: string,
  schema: JsonSchema,
  backend: EngineBackendName,
  model: ModelIdentity,
  timings: EngineTimings,
): AnalyzeResult<T> {
  const checked = postCheck(text);
  if (checked.flags.includes('empty_output')) throw new EngineError('bad_output', 'model returned empty output', { rawText: text });
  let json: unknown;
  try {
    json = parseModelJson(checked.text, schema);
  } catch (err) {
    if (err instanceof EngineError && checked.flags.includes('repetition_loop')) {
      throw new EngineError('bad_output', `model output is degenerate (repetition loop): ${err.message}`, { rawText: text });
    }
    throw err;
  }
  return { json: json as T, rawText: checked.text, model, timings, backend, safetyFlags: checked.flags };
}
