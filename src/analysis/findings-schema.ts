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
  /** Images the model may cite (indices run 0..imageCount-1). */
  imageCount: number;
  /** Side of the square images sent, in pixels (regions are given in those coordinates). */
  imageSize: number;
}

export function findingsJsonSchema(l: FindingsLimits): JsonSchema {
  const text = (max = l.maxText): JsonSchema => ({ type: 'string', maxLength: max });
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
            // A bounded integer: llama.cpp's grammar enforces integer ranges but not number
            // ranges (a number may come back as 1e999); stored as 0–1.
            confidence_percent: { type: 'integer', minimum: 0, maximum: 100 },
            image_indices: { type: 'array', maxItems: 8, items: { type: 'integer', minimum: 0, maximum: Math.max(0, l.imageCount - 1) } },
            recommendation: text(),
            // Where on one of the images, when the model can say: a box in that image's pixels.
            region: {
              anyOf: [
                { type: 'null' },
                {
                  type: 'object',
                  properties: {
                    image_index: { type: 'integer', minimum: 0, maximum: Math.max(0, l.imageCount - 1) },
                    x_min: { type: 'integer', minimum: 0, maximum: l.imageSize - 1 },
                    y_min: { type: 'integer', minimum: 0, maximum: l.imageSize - 1 },
                    x_max: { type: 'integer', minimum: 0, maximum: l.imageSize - 1 },
                    y_max: { type: 'integer', minimum: 0, maximum: l.imageSize - 1 },
                  },
                  required: ['image_index', 'x_min', 'y_min', 'x_max', 'y_max'],
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
            'confidence_percent',
            'image_indices',
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

const finding = z.object({
  description: z.string(),
  anatomical_location: z.string(),
  laterality: z.enum(LATERALITIES),
  category: z.enum(CATEGORIES),
  severity: z.enum(SEVERITIES),
  confidence_percent: z.number().int(),
  image_indices: z.array(z.number().int()),
  recommendation: z.string(),
  region: z
    .object({
      image_index: z.number().int(),
      x_min: z.number().int(),
      y_min: z.number().int(),
      x_max: z.number().int(),
      y_max: z.number().int(),
    })
    .nullable()
    .optional(),
});

const measurement = z.object({
  finding: z.string(),
  quantity: z.string(),
  // JSON.parse gives Infinity for 1e999: such a measurement is dropped, not the whole answer.
  value: z.number().or(z.literal(Infinity)).or(z.literal(-Infinity)),
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
  image_indices: number[];
  recommendation: string;
  /** A box on image `imageIndex`, in the prepared (square) image's pixels; null when none or invalid. */
  region: { imageIndex: number; box: [number, number, number, number] } | null;
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
 * Parses the model's JSON into the stored shape: confidence 0–1, image indices only within the
 * list sent (never trusted), measurements with a non-finite value dropped.
 */
export function readModelAnswer(json: unknown, imageCount: number, imageSize = Number.POSITIVE_INFINITY): ModelAnswer {
  const a = rawAnswer.parse(json);
  const flags: string[] = [];
  const findings = a.findings.map((f) => {
    const { confidence_percent, region: r, ...rest } = f;
    if (confidence_percent < 0 || confidence_percent > 100) flags.push('confidence_clamped');
    const indices = [...new Set(f.image_indices.filter((i) => i >= 0 && i < imageCount))];
    if (indices.length !== f.image_indices.length) flags.push('image_indices_dropped');
    let region: ModelFinding['region'] = null;
    if (r) {
      const inside = (v: number) => v >= 0 && v < imageSize;
      const ok =
        r.image_index >= 0 &&
        r.image_index < imageCount &&
        [r.x_min, r.y_min, r.x_max, r.y_max].every(inside) &&
        r.x_max > r.x_min &&
        r.y_max > r.y_min;
      if (ok) region = { imageIndex: r.image_index, box: [r.x_min, r.y_min, r.x_max, r.y_max] };
      else flags.push('region_dropped');
    }
    return { ...rest, confidence: Math.min(100, Math.max(0, confidence_percent)) / 100, image_indices: indices, region };
  });
  const measurements = a.measurements.filter((m) => Number.isFinite(m.value));
  if (measurements.length !== a.measurements.length) flags.push('non_finite_measurement_dropped');
  return { ...a, findings, measurements, flags: [...new Set(flags)] };
}
