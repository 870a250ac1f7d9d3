import { EngineError } from './engine.js';

/**
 * Whether a request fits the model's context, checked before anything is sent: llama.cpp refuses
 * (or truncates) a prompt longer than its context, after the images were encoded, and an answer
 * with no room left ends mid-JSON. Images cost what the projector says (MedGemma: 256 tokens) plus
 * the four tokens around each (Gemma 3 wraps an image as "\n\n<start_of_image>…<end_of_image>\n\n");
 * text is estimated at 3 characters a token (Gemma's tokenizer averages about 4 on English prose,
 * fewer on JSON and numbers: 3 errs on the safe side). The answer needs room too: the smaller of
 * its token limit and ANSWER_RESERVE.
 */

export const IMAGE_WRAPPER_TOKENS = 4;
export const CHARS_PER_TOKEN = 3;
export const ANSWER_RESERVE = 1024;

export interface BudgetInput {
  images: number;
  imageTokens: number;
  /** Every text part of the request (system message, instruction, labels, question). */
  textChars: number;
  maxTokens: number;
  contextTokens: number;
}

export interface Budget {
  promptTokens: number;
  answerTokens: number;
  /** The most images that would fit with this text (MEDGEMMA_MAX_SLICES advice). */
  maxImages: number;
}

export function contextBudget(b: BudgetInput): Budget {
  const perImage = b.imageTokens + IMAGE_WRAPPER_TOKENS;
  const textTokens = Math.ceil(b.textChars / CHARS_PER_TOKEN);
  const answerTokens = Math.min(b.maxTokens, ANSWER_RESERVE);
  return {
    promptTokens: b.images * perImage + textTokens,
    answerTokens,
    maxImages: Math.max(0, Math.floor((b.contextTokens - textTokens - answerTokens) / perImage)),
  };
}

/** Throws EngineError('too_large') naming MEDGEMMA_MAX_SLICES when the request would not fit. */
export function checkContextBudget(b: BudgetInput): Budget {
  const r = contextBudget(b);
  if (r.promptTokens + r.answerTokens > b.contextTokens)
    throw new EngineError(
      'too_large',
      `the request needs about ${r.promptTokens} tokens (${b.images} images × ${b.imageTokens + IMAGE_WRAPPER_TOKENS} + text) and ${r.answerTokens} for the answer, over the model's context of ${b.contextTokens} (MEDGEMMA_CONTEXT): set MEDGEMMA_MAX_SLICES to ${r.maxImages} or less, or raise MEDGEMMA_CONTEXT`,
    );
  return r;
}
