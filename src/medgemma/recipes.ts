import type { AnalyzeRequest, JsonSchema } from './engine.js';
import { SYSTEM_PROMPT } from './safety.js';
import { describeSchema } from './schema-text.js';

/**
 * How each model family wants to be asked: one table the request building reads
 * (src/analysis/pipeline.ts → recipeMessages here → openai-chat.ts).
 *
 * MedGemma 1.5 follows Google's published notebooks (github.com/Google-Health/medgemma):
 * - notebooks/high_dimensional_ct_hugging_face.ipynb: instances sorted by int(InstanceNumber),
 *   85 slices sampled evenly, each windowed into R −1024…1024, G −135…215, B 0…80 HU; ONE user
 *   message (no system message): the instruction text, then per slice the image followed by the
 *   text "SLICE n" (n from 1), then the question; do_sample=False, max_new_tokens=2000.
 * - notebooks/cxr_anatomy_localization_with_hugging_face.ipynb: boxes as "box_2d" [y0, x0, y1, x1]
 *   normalised to 0–1000 on the image padded to a square (our prepared image is that square).
 * MedGemma 1 (4B-it, 27B-it) is a 2-D model: the model card's example is a system message and one
 * user message with the text and one image. The generic fallback (any other model) keeps the
 * layout every OpenAI-compatible server takes: system message, text, then the images.
 */

export type RecipeId = 'medgemma-1.5' | 'medgemma-1' | 'generic';
/** MEDGEMMA_RECIPE (config.ts): a recipe, or auto (from the model's identity). */
export type RecipeChoice = RecipeId | 'auto';

export interface Recipe {
  id: RecipeId;
  /** Where the recipe comes from (for the README and the stored provenance). */
  source: string;
  /** Whether the safety guidance goes as a system message; false: it opens the user text instead. */
  systemMessage: boolean;
  /**
   * 'labelled': instruction, then each image followed by its label ("SLICE n" for a volume,
   * "IMAGE n" otherwise), then the question. 'text-first': the whole text, then the images.
   */
  layout: 'labelled' | 'text-first';
  /** Most images one request carries (MEDGEMMA_MAX_SLICES lowers it; never raises it). */
  maxImages: number;
  /** Greedy decoding: temperature 0 always; top_k 1 too where the recipe's servers take it. */
  topK: 1 | undefined;
  /** Tokens one 896² image costs when the projector does not say (SigLIP 64² patches pooled 4×4 = 256). */
  imageTokens: number;
}

export const RECIPES: Readonly<Record<RecipeId, Recipe>> = {
  'medgemma-1.5': {
    id: 'medgemma-1.5',
    source: 'Google-Health/medgemma notebooks/high_dimensional_ct_hugging_face.ipynb, cxr_anatomy_localization_with_hugging_face.ipynb',
    systemMessage: false,
    layout: 'labelled',
    maxImages: 1000,
    topK: 1,
    imageTokens: 256,
  },
  'medgemma-1': {
    id: 'medgemma-1',
    source: 'google/medgemma-4b-it model card (one image per request)',
    systemMessage: true,
    layout: 'text-first',
    maxImages: 1,
    topK: 1,
    imageTokens: 256,
  },
  generic: {
    id: 'generic',
    source: 'OpenAI-compatible chat: system message, text, images',
    systemMessage: true,
    layout: 'text-first',
    maxImages: 1000,
    topK: undefined,
    imageTokens: 256,
  },
};

/**
 * The recipe for a model: the MEDGEMMA_RECIPE override, else from what the model claims to be —
 * the known release of a local GGUF ("MedGemma 1.5 4B-it", known-models.ts) or a remote model's
 * name. A bare "medgemma" says no release: generic.
 */
export function recipeFor(choice: RecipeChoice, claim: string | undefined): Recipe {
  if (choice !== 'auto') return RECIPES[choice];
  const c = claim ?? '';
  if (/medgemma[\s_-]*1[._]5/i.test(c)) return RECIPES['medgemma-1.5'];
  if (/medgemma[\s_-]*(?:1[\s_-]|4b|27b)/i.test(c)) return RECIPES['medgemma-1'];
  return RECIPES.generic;
}

/** The label after image `n` (1-based) in the labelled layout. */
export function imageLabel(volume: boolean, n: number): string {
  return `${volume ? 'SLICE' : 'IMAGE'} ${n}`;
}

export interface RecipeInput {
  /** The task and context (the rendered prompt template). */
  instruction: string;
  /** The answer's shape: stated in the text as well as enforced by the grammar. */
  schema: JsonSchema;
  imageCount: number;
  /** A CT/MR volume (labels "SLICE n") rather than separate images ("IMAGE n"). */
  volume: boolean;
}

export type RecipeMessages = Pick<AnalyzeRequest, 'prompt' | 'question' | 'imageLabels' | 'systemPrompt' | 'topK'>;

/**
 * The request's text parts as the recipe lays them out. The safety guidance is the system message
 * where the recipe has one, else it opens the instruction; the question names the JSON shape.
 */
export function recipeMessages(r: Recipe, i: RecipeInput): RecipeMessages {
  const shape = `Answer with one JSON object of this shape and nothing else: ${describeSchema(i.schema)}`;
  const topK = r.topK !== undefined ? { topK: r.topK } : {};
  if (r.layout === 'labelled') {
    const seen = i.volume ? 'slices' : 'images';
    return {
      systemPrompt: r.systemMessage ? SYSTEM_PROMPT : null,
      prompt: r.systemMessage ? i.instruction : `${SYSTEM_PROMPT}\n${i.instruction}`,
      imageLabels: Array.from({ length: i.imageCount }, (_, k) => imageLabel(i.volume, k + 1)),
      // The notebook's question opens with a blank line and points back at the images.
      question: `\n\nBased on the visual evidence in the ${seen} provided above, draft the findings. ${shape}`,
      ...topK,
    };
  }
  return { systemPrompt: r.systemMessage ? SYSTEM_PROMPT : null, prompt: i.instruction, question: shape, ...topK };
}

/** The user message's text parts, in order (stored as the prompt text, with its hash). */
export function userText(m: RecipeMessages): string {
  return [m.prompt, ...(m.imageLabels ?? []), m.question ?? ''].filter(Boolean).join('\n');
}
