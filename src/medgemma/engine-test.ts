import sharp from 'sharp';
import { errorMessage } from '../errors.js';
import type { Engine } from './engine.js';

/**
 * The administrator's test call of the AI engine: a tiny synthetic image (a grey ramp with a
 * bright disc, no patient data) and a one-line question, answered as JSON. Says whether the
 * engine answers at all, how fast, and with what; never stored as an analysis.
 */

export interface EngineTestResult {
  ok: boolean;
  latencyMs: number;
  /** The model's parsed answer (its words), or null when it failed. */
  answer: unknown;
  error: string | null;
  images: number;
}

const SIZE = 64;

/** 64×64 8-bit greyscale PNG: a horizontal ramp with a disc in the middle. */
export async function syntheticImage(): Promise<Buffer> {
  const px = Buffer.alloc(SIZE * SIZE);
  for (let y = 0; y < SIZE; y++)
    for (let x = 0; x < SIZE; x++) {
      const inDisc = (x - SIZE / 2) ** 2 + (y - SIZE / 2) ** 2 < (SIZE / 6) ** 2;
      px[y * SIZE + x] = inDisc ? 240 : Math.round((x / (SIZE - 1)) * 160);
    }
  return sharp(px, { raw: { width: SIZE, height: SIZE, channels: 1 } })
    .png()
    .toBuffer();
}

export async function testEngine(engine: Engine, timeoutMs: number): Promise<EngineTestResult> {
  const images = engine.multimodal ? [await syntheticImage()] : [];
  const started = performance.now();
  try {
    const out = await engine.analyze<{ answer: string }>({
      images,
      prompt: images.length
        ? 'This is a synthetic test image, not a patient image. In a few words, what shape is in its centre?'
        : 'This is a connectivity test. Answer with the word "ready".',
      schema: { type: 'object', properties: { answer: { type: 'string', maxLength: 200 } }, required: ['answer'] },
      maxTokens: 64,
      signal: AbortSignal.timeout(timeoutMs),
    });
    return { ok: true, latencyMs: Math.round(performance.now() - started), answer: out.json, error: null, images: images.length };
  } catch (err) {
    return { ok: false, latencyMs: Math.round(performance.now() - started), answer: null, error: errorMessage(err), images: images.length };
  }
}
