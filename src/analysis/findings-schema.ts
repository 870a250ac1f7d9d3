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
            confidence: { type: 'number', minimum: 0, maximum: 1 },
            image_indices: { type: 'array', maxItems: 8, items: { type: 'integer', minimum: 0, maximum: Math.max(0, l.imageCount - 1) } },
            recommendation: text(),
          },
          required: ['description', 'anatomical_location', 'laterality', 'category', 'severity', 'confidence', 'image_indices', 'recommendation'],
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
  // Grammars cannot always bound numbers: out-of-range confidence is clamped, not refused.
  confidence: z.number().transform((c) => (Number.isFinite(c) ? Math.min(1, Math.max(0, c)) : 0)),
  image_indices: z.array(z.number().int()),
  recommendation: z.string(),
});

const measurement = z.object({
  finding: z.string(),
  quantity: z.string(),
  value: z.number().refine(Number.isFinite, 'not a finite number'),
  unit: z.string(),
});

export const modelAnswer = z.object({
  findings: z.array(finding),
  measurements: z.array(measurement),
  impression: z.string(),
  comparison_with_prior: z.string(),
  technical_limitations: z.string(),
});

export type ModelAnswer = z.infer<typeof modelAnswer>;
export type ModelFinding = z.infer<typeof finding>;
export type ModelMeasurement = z.infer<typeof measurement>;

/** Parses the model's JSON; image indices outside the list sent are dropped (never trusted). */
export function readModelAnswer(json: unknown, imageCount: number): ModelAnswer {
  const a = modelAnswer.parse(json);
  for (const f of a.findings) f.image_indices = [...new Set(f.image_indices.filter((i) => i >= 0 && i < imageCount))];
  return a;
}
