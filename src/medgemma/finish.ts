/**
 * The last step every backend shares: the safety gate (bounded reading, JSON parse + schema shape
 * check, flags, PHI redaction). The model's text is returned verbatim; a failed gate is
 * EngineError('bad_output') carrying that text.
 */
import type { AnalyzeResult, EngineBackendName, EngineTimings, JsonSchema, ModelIdentity, RequestProvenance } from './engine.js';
import { EngineError } from './engine.js';
import type { PhiContext } from './phi-echo.js';
import { safetyGate } from './safety-gate.js';

export function finishResult<T>(
  text: string,
  schema: JsonSchema,
  backend: EngineBackendName,
  model: ModelIdentity,
  timings: EngineTimings,
  finishReason: string | null = null,
  phi?: PhiContext,
  request?: RequestProvenance,
): AnalyzeResult<T> {
  const gate = safetyGate({ rawText: text, finishReason, phi, schema });
  if (gate.verdict.status === 'failed')
    throw new EngineError('bad_output', `model output unusable: ${gate.verdict.reason}`, { rawText: text, request });
  return {
    json: gate.answer as T,
    rawText: text,
    model,
    timings,
    backend,
    safetyFlags: gate.flags,
    finishReason,
    ...(request ? { request } : {}),
  };
}
