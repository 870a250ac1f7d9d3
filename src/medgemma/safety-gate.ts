/**
 * The safety gate every model answer passes (pure): it never changes the model's meaning. It
 * reads the raw text with bounded effort, decides whether the answer can be used at all (verdict),
 * and flags what a radiologist must see: definitive-diagnosis phrasing, certainty words, the
 * patient's own identifiers echoed back (redacted from the copy that is published), a truncated
 * answer. The verbatim text stays with the caller for storage (raw_answer).
 */
import { hasRepetitionLoop, isBlank, MAX_ANSWER_CHARS, stripThinking } from './answer-text.js';
import { EngineError, type JsonSchema, type SafetyFlag, type SafetyTarget } from './engine.js';
import { parseModelJson } from './output.js';
import { findPhi, redact, type PhiContext } from './phi-echo.js';
import { scanPhrasing } from './safety-lexicon.js';

export type SafetyVerdict = { status: 'ok' } | { status: 'failed'; reason: string };

export interface GateInput {
  /** The model's answer, verbatim. */
  rawText: string;
  /** The endpoint's finish_reason ('stop', 'length'...); null when the backend gives none. */
  finishReason?: string | null;
  /** The study's patient identifiers, to catch them echoed. */
  phi?: PhiContext;
  /** The shape the answer must have. */
  schema?: JsonSchema;
}

export interface GateResult {
  verdict: SafetyVerdict;
  flags: SafetyFlag[];
  /** The parsed answer with echoed identifiers redacted (what may be published); null when failed. */
  answer: unknown;
}

/** Phrasing flags kept per answer; past this, one 'flags_truncated' flag says more were found. */
const MAX_PHRASING_FLAGS = 200;

/** Flags and the redacted copy of an already parsed answer (findings[i].*, impression, the rest). */
export function flagAnswer(answer: unknown, phi: PhiContext = {}): { flags: SafetyFlag[]; answer: unknown } {
  const flags: SafetyFlag[] = [];
  let phrasing = 0;
  const walk = (value: unknown, target: SafetyTarget): unknown => {
    if (typeof value === 'string') {
      const hits = findPhi(value, phi);
      // Every echoed identifier is flagged (and redacted): never capped.
      for (const h of hits) flags.push({ target, phrase: `[redacted ${h.kind}]`, rule: 'phi_echo' });
      const published = hits.length ? redact(value, hits) : value;
      for (const p of scanPhrasing(published)) {
        if (++phrasing <= MAX_PHRASING_FLAGS) flags.push({ target, phrase: p.phrase, rule: p.rule });
        else if (phrasing === MAX_PHRASING_FLAGS + 1) flags.push({ target: 'answer', phrase: '', rule: 'flags_truncated' });
      }
      return published;
    }
    if (Array.isArray(value)) return value.map((v) => walk(v, target));
    if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, target)]));
    return value;
  };
  if (!answer || typeof answer !== 'object' || Array.isArray(answer)) return { flags, answer: walk(answer, 'answer') };
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(answer)) {
    if (key === 'findings' && Array.isArray(value)) out[key] = value.map((f, i) => walk(f, i));
    else out[key] = walk(value, key === 'impression' ? 'impression' : 'answer');
  }
  return { flags, answer: out };
}

/** True when the value says nothing: blank strings, nulls, empty lists and objects of those (a number or a boolean is content). */
function hasNoContent(value: unknown): boolean {
  if (typeof value === 'string') return value.trim() === '';
  if (Array.isArray(value)) return value.every(hasNoContent);
  if (value && typeof value === 'object') return Object.values(value).every(hasNoContent);
  return value === null || value === undefined;
}

const failed = (reason: string, flags: SafetyFlag[]): GateResult => ({ verdict: { status: 'failed', reason }, flags, answer: null });

/**
 * The whole gate: too long, empty, looping or unparseable answers fail with a reason; a parsed one
 * is flagged and redacted. Bounded: nothing over MAX_ANSWER_CHARS is parsed, loops are looked for
 * in a bounded window in linear time.
 */
export function safetyGate(input: GateInput): GateResult {
  const flags: SafetyFlag[] = [];
  const truncated = input.finishReason === 'length';
  if (truncated) flags.push({ target: 'answer', phrase: 'finish_reason: length', rule: 'truncated' });
  const cut = truncated ? ' (cut at the token limit: finish_reason "length")' : '';
  if (input.rawText.length > MAX_ANSWER_CHARS) {
    const looping = hasRepetitionLoop(input.rawText) ? 'a repetition loop, ' : '';
    return failed(`${looping}answer of ${input.rawText.length} characters, over the ${MAX_ANSWER_CHARS} limit${cut}`, flags);
  }
  const stripped = stripThinking(input.rawText);
  for (const note of stripped.notes) flags.push({ target: 'answer', phrase: '<unused94>', rule: note });
  if (isBlank(stripped.text)) return failed(`empty answer${cut}`, flags);
  if (hasRepetitionLoop(stripped.text)) return failed(`repetition loop in the answer${cut}`, flags);
  let parsed: unknown;
  try {
    parsed = parseModelJson(stripped.text, input.schema ?? {});
  } catch (err) {
    if (err instanceof EngineError) return failed(`${err.message}${cut}`, flags);
    throw err;
  }
  if (hasNoContent(parsed)) return failed(`empty answer (nothing in the JSON)${cut}`, flags);
  const checked = flagAnswer(parsed, input.phi);
  return { verdict: { status: 'ok' }, flags: [...flags, ...checked.flags], answer: checked.answer };
}

/** A stored flag as an object: analyses stored before flags were objects hold plain rule names. */
export function asSafetyFlag(stored: SafetyFlag | string): SafetyFlag {
  return typeof stored === 'string' ? { target: 'answer', phrase: '', rule: stored } : stored;
}
