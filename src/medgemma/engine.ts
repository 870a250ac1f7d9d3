/**
 * The MedGemma inference engine: one interface over three backends (llama-server, a remote
 * OpenAI-compatible endpoint, node-llama-cpp in process). A call takes PNG images, a prompt and
 * a JSON schema, and returns the parsed JSON with the raw text, the model's identity and timings.
 * Failures are EngineError with a kind the caller can act on.
 */
import type { ModelValidation } from './known-models.js';
import type { PhiContext } from './phi-echo.js';

export type EngineErrorKind = 'unavailable' | 'timeout' | 'cancelled' | 'bad_output' | 'auth' | 'rate_limited' | 'upstream' | 'too_large';

export class EngineError extends Error {
  constructor(
    readonly kind: EngineErrorKind,
    message: string,
    readonly details: { status?: number; attempts?: number; rawText?: string; request?: RequestProvenance; cause?: unknown } = {},
  ) {
    super(message);
    this.name = 'EngineError';
  }
  /**
   * Worth trying again later (the same request may succeed): rate limits, timeouts, an engine not
   * up yet, network failures and 5xx/408 answers. Any other 4xx is the request's own fault.
   */
  get retryable(): boolean {
    if (this.kind === 'upstream') {
      const s = this.details.status;
      return s === undefined || s >= 500 || s === 408;
    }
    return this.kind === 'rate_limited' || this.kind === 'unavailable' || this.kind === 'timeout';
  }
}

/** A JSON schema (object form); only the subset used for output validation is typed. */
export type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  [key: string]: unknown;
};

export interface AnalyzeRequest {
  /** PNG-encoded images, in order. */
  images: Buffer[];
  /** The user text: all of it, or with `imageLabels` the instruction that precedes the images. */
  prompt: string;
  /**
   * The labelled layout of MedGemma 1.5's recipe (recipes.ts): each image is followed by its label
   * ("SLICE 1"…), then `question` ends the message. Absent: the text, then the images.
   */
  imageLabels?: string[];
  question?: string;
  /** The system message; absent: SYSTEM_PROMPT (safety.ts); null: none (MedGemma 1.5 takes none). */
  systemPrompt?: string | null;
  /** Greedy decoding's top_k 1, for servers that take it (llama-server, vLLM). */
  topK?: number;
  /** The shape the answer must have. */
  schema: JsonSchema;
  maxTokens?: number;
  signal?: AbortSignal;
  /** Sampling temperature; default 0 (deterministic). */
  temperature?: number;
  seed?: number;
  /** The study's patient identifiers, to flag and redact them if the answer echoes them; never sent. */
  phi?: PhiContext;
}

export interface ModelIdentity {
  /** File name of the model (or the remote model's name). */
  name: string;
  /** SHA-256 of the model file; null for a remote model. */
  sha256: string | null;
  /** GGUF file type, e.g. "MOSTLY_Q4_K_M"; null when unknown. */
  quantization: string | null;
  /** GGUF general.architecture, e.g. "gemma3" (absent for a remote model). */
  architecture?: string;
  /** GGUF general.name as the converter wrote it. */
  ggufName?: string | null;
  /** File size in bytes. */
  bytes?: number;
  /** Parameter count (sum of the tensors' element counts). */
  parameters?: number;
  /**
   * projectionDim: clip.vision.projection_dim; matchesModel: it equals the model's embedding length (null: unknown);
   * imageTokens: what one image costs in the context (null: the projector does not say).
   */
  mmproj?:
    | {
        name: string;
        sha256: string;
        bytes?: number;
        projectionDim?: number | null;
        matchesModel?: boolean | null;
        imageTokens?: number | null;
      }
    | undefined;
  /**
   * True only when the model's SHA-256 (and its mmproj's) is trusted: listed in
   * MEDGEMMA_TRUSTED_SHA256 or a known published file (src/medgemma/known-models.ts).
   */
  validated: boolean;
  validation: ModelValidation;
}

export interface EngineTimings {
  promptMs: number;
  predictedMs: number;
  tokens: number;
  tokensPerSecond: number;
  imageEncodeMs?: number;
  /** Wall-clock time of the whole call, queueing included. */
  totalMs: number;
  /** Tokens of the prompt (text and images), when the server says. */
  promptTokens?: number;
}

/**
 * What was sent, as SHA-256 digests (src/medgemma/request-provenance.ts computes them from the
 * request body itself): enough to tell whether two analyses asked the same model the same thing.
 */
export interface RequestProvenance {
  /** Null when no system message was sent. */
  systemPromptSha256: string | null;
  /** The user message's content with each image replaced by its position (canonical JSON). */
  userPromptSha256: string;
  /** The JSON schema of the answer as sent (response_format, or the grammar's schema). */
  schemaSha256: string;
  /** The sampling parameters as sent (temperature, top_k, top_p, min_p, seed, max tokens...). */
  sampling: Record<string, number | string | boolean | null>;
  samplingSha256: string;
  /** Every image's bytes as sent (after any re-encoding), in order. */
  imageSha256: string[];
  /** The llama.cpp build the backend reports (llama-server's system_fingerprint); null when unknown (remote). */
  llamaBuild: string | null;
}

/** Where a safety flag points: a finding by index, the impression, or the answer as a whole. */
export type SafetyTarget = number | 'impression' | 'answer';

/**
 * One hit of one safety rule (src/medgemma/safety-gate.ts): 'definitive_diagnosis', 'certainty',
 * 'phi_echo' (the phrase is then "[redacted <kind>]", never the identifier), 'truncated',
 * 'thinking_stripped', 'thinking_unterminated', 'flags_truncated'; the analysis adds its reading notes
 * ('region_dropped'…).
 */
export interface SafetyFlag {
  target: SafetyTarget;
  /** The words as the model wrote them. */
  phrase: string;
  rule: string;
}

export interface AnalyzeResult<T = unknown> {
  /** The parsed answer, the model's words kept; only echoed patient identifiers are redacted. */
  json: T;
  /** The model's text verbatim (thinking block and all), for storage as raw_answer. */
  rawText: string;
  model: ModelIdentity;
  timings: EngineTimings;
  backend: EngineBackendName;
  /** What the safety gate flagged; it never rewrites. */
  safetyFlags: SafetyFlag[];
  /** The endpoint's finish_reason ('stop', 'length'…); null when the backend gives none. */
  finishReason: string | null;
  /** Digests of what was sent, for the analysis' provenance (every backend here gives them). */
  request?: RequestProvenance;
}

export type EngineBackendName = 'llama-server' | 'remote' | 'node-llama-cpp';

export interface Engine {
  readonly backend: EngineBackendName;
  /** Whether the backend takes images. */
  readonly multimodal: boolean;
  /** Tokens one call may use, prompt and answer (MEDGEMMA_CONTEXT); undefined: unknown, not checked. */
  readonly contextTokens?: number;
  /** Tokens one image costs, as the vision projector says; undefined: the recipe's figure. */
  readonly imageTokens?: number;
  /** What the model claims to be, for MEDGEMMA_RECIPE=auto: a GGUF's known release, or a remote model's name. */
  readonly modelClaim?: string;
  analyze<T = unknown>(req: AnalyzeRequest): Promise<AnalyzeResult<T>>;
  /** A cheap check that the engine answers now (readiness, /readyz); throws why not. Absent: being ready is enough. */
  probe?(signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}
