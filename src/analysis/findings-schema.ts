import { z } from 'zod';
import type { JsonSchema } from '../medgemma/engine.js';

/**
 * The answer the model must give, as a JSON schema for constrained decoding. Bounds on list
 * lengths and text are part of the schema, not only post-checks: constrained decoding can only
 * stop a model that never closes a string at a declared maxLength.
 */

export const LATERALITIES = ['left', 'right', 'bilateral', 'midline', 'not_applicable'] as const;
export const SEVERITIES = ['normal', 'mild', 'moderate', 'severe', 'indeterminate'] as const;
export const CATEGORIES = ['normal', 'abnormal', 'incidental', 'artifact', 'limitation'] as const;

export interface FindingsLimits {
  maxFindings: number;
  maxText: number;
  /** Images the model may cite, by number 1..imageCount (the "SLICE n" labels of recipes.ts). */
  imageCount: number;
}

/**
 * box_2d as MedGemma 1.5 gives boxes (Google-Health/medgemma
 * notebooks/cxr_anatomy_localization_with_hugging_face.ipynb): [y0, x0, y1, x1], the top-left and
 * bottom-right corners, each normalised to 0–1000 of the (square, padded) image the model saw.
 */
export const BOX_2D_SCALE = 1000;

export function findingsJsonSchema(l: FindingsLimits): JsonSchema {
  const text = (max = l.maxText): JsonSchema => ({ type: 'string', maxLength: max });
  const imageNumber: JsonSchema = { type: 'integer', minimum: 1, maximum: Math.max(1, l.imageCount) };
  const coordinate: JsonSchema = { type: 'integer', minimum: 0, maximum: BOX_2D_SCALE };
  return {
    type: 'object',
    properties: {
      findings: {
        type: 'array',
        maxItems: l.maxFindings,
        items: {
          type: 'object',
          properties: {
            description: text(),
            anatomical_location: text(Math.min(l.maxText, 120)),
            laterality: { enum: [...LATERALITIES] },
            category: { enum: [...CATEGORIES] },
            severity: { enum: [...SEVERITIES] },
            // One scale end to end: 0–1 here, in the prompt, the API and the SR. llama.cpp's grammar
            // does not bound numbers (1e999 parses as Infinity): reading clamps and flags.
            confidence: { type: 'number', minimum: 0, maximum: 1 },
            image_numbers: { type: 'array', maxItems: 8, items: imageNumber },
            recommendation: text(),
            // Where on one of the images, when the model can say.
            region: {
              anyOf: [
                { type: 'null' },
                {
                  type: 'object',
                  properties: {
                    image_number: imageNumber,
                    box_2d: { type: 'array', minItems: 4, maxItems: 4, items: coordinate },
                  },
                  required: ['image_number', 'box_2d'],
                  additionalProperties: false,
                },
              ],
            },
          },
          required: [
            'description',
            'anatomical_location',
            'laterality',
            'category',
            'severity',
            'confidence',
            'image_numbers',
            'recommendation',
            'region',
          ],
          additionalProperties: false,
        },
      },
      measurements: {
        type: 'array',
        maxItems: l.maxFindings,
        items: {
          type: 'object',
          properties: {
            finding: text(Math.min(l.maxText, 120)),
            quantity: text(64),
            value: { type: 'number' },
            unit: text(16),
          },
          required: ['finding', 'quantity', 'value', 'unit'],
          additionalProperties: false,
        },
      },
      impression: text(),
      comparison_with_prior: text(),
      technical_limitations: text(),
    },
    required: ['findings', 'measurements', 'impression', 'comparison_with_prior', 'technical_limitations'],
    additionalProperties: false,
  };
}

// JSON.parse gives Infinity for 1e999: such a value is clamped or dropped, not the whole answer.
const numberOrInfinity = z.number().or(z.literal(Infinity)).or(z.literal(-Infinity));

const finding = z.object({
  description: z.string(),
  anatomical_location: z.string(),
  laterality: z.enum(LATERALITIES),
  category: z.enum(CATEGORIES),
  severity: z.enum(SEVERITIES),
  confidence: numberOrInfinity,
  image_numbers: z.array(z.number().int()),
  recommendation: z.string(),
  region: z
    .object({ image_number: z.number().int(), box_2d: z.array(numberOrInfinity) })
    .nullable()
    .optional(),
});

const measurement = z.object({
  finding: z.string(),
  quantity: z.string(),
  value: numberOrInfinity,
  unit: z.string(),
});

const rawAnswer = z.object({
  findings: z.array(finding),
  measurements: z.array(measurement),
  impression: z.string(),
  comparison_with_prior: z.string(),
  technical_limitations: z.string(),
});

export interface ModelFinding {
  description: string;
  anatomical_location: string;
  laterality: (typeof LATERALITIES)[number];
  category: (typeof CATEGORIES)[number];
  severity: (typeof SEVERITIES)[number];
  /** 0–1. */
  confidence: number;
  /** 0-based, in the list sent (the model's image numbers minus one). */
  image_indices: number[];
  recommendation: string;
  /**
   * A box on image `imageIndex` (0-based, in the list sent): `box` [x0, y0, x1, y1] in the prepared
   * (square) image's pixels, and `box2d` the model's own [y0, x0, y1, x1] on 0–1000; null when none
   * or invalid.
   */
  region: ModelRegion | null;
}

export interface ModelRegion {
  imageIndex: number;
  box: [number, number, number, number];
  box2d: [number, number, number, number];
}

export interface ModelMeasurement {
  finding: string;
  quantity: string;
  value: number;
  unit: string;
}

export interface ModelAnswer {
  findings: ModelFinding[];
  measurements: ModelMeasurement[];
  impression: string;
  comparison_with_prior: string;
  technical_limitations: string;
  /** What reading the answer changed (dropped measurements, clamped confidences...). */
  flags: string[];
}

/**
 * The model's box_2d [y0, x0, y1, x1] (0–1000) as [x0, y0, x1, y1] in the pixels of the size × size
 * image it was given: v / 1000 · size. Null when it is not four finite numbers within 0–1000
 * with y1 > y0 and x1 > x0. (src/reports maps prepared pixels back to the source image.)
 */
export function box2dToPixels(box2d: readonly number[], size: number): [number, number, number, number] | null {
  if (box2d.length !== 4 || !box2d.every((v) => Number.isFinite(v) && v >= 0 && v <= BOX_2D_SCALE)) return null;
  const [y0, x0, y1, x1] = box2d as [number, number, number, number];
  if (!(x1 > x0 && y1 > y0)) return null;
  const px = (v: number) => Math.round(((v * size) / BOX_2D_SCALE) * 10) / 10;
  return [px(x0), px(y0), px(x1), px(y1)];
}

/**
 * Parses the model's JSON into the stored shape: confidence clamped to 0–1, image numbers (1-based)
 * to indices only within the list sent (never trusted), box_2d to prepared-image pixels with the
 * model's box kept, measurements with a non-finite value dropped.
 */
export function readModelAnswer(json: unknown, imageCount: number, imageSize: number): ModelAnswer {
  const a = rawAnswer.parse(json);
  const flags: string[] = [];
  const toIndex = (n: number) => (n >= 1 && n <= imageCount ? n - 1 : undefined);
  const findings = a.findings.map((f): ModelFinding => {
    const { confidence, image_numbers, region: r, ...rest } = f;
    if (!(confidence >= 0 && confidence <= 1)) flags.push('confidence_clamped');
    const indices = [...new Set(image_numbers.map(toIndex).filter((i) => i !== undefined))];
    if (indices.length !== image_numbers.length) flags.push('image_indices_dropped');
    let region: ModelRegion | null = null;
    if (r) {
      const imageIndex = toIndex(r.image_number);
      const box = box2dToPixels(r.box_2d, imageSize);
      if (imageIndex !== undefined && box) region = { imageIndex, box, box2d: r.box_2d as ModelRegion['box2d'] };
      else flags.push('region_dropped');
    }
    const clamped = Number.isNaN(confidence) ? 0 : Math.min(1, Math.max(0, confidence));
    return { ...rest, confidence: clamped, image_indices: indices, region };
  });
  const measurements = a.measurements.filter((m) => Number.isFinite(m.value));
  if (measurements.length !== a.measurements.length) flags.push('non_finite_measurement_dropped');
  return { ...a, findings, measurements, flags: [...new Set(flags)] };
}
