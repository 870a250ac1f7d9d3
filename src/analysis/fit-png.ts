import sharp from 'sharp';
import { placement } from './pixels-fit.js';

/**
 * An 8-bit image fitted into size × size: scaled so its physical aspect (pixel aspect from Pixel
 * Spacing) is kept and its longer side fills the box, centred, padded black, written as an 8-bit
 * RGB PNG (what MedGemma's image processor reads).
 *
 * Speed over size: these PNGs are handed straight to the model, never stored. Measured on
 * 85 chest-CT slices at 896²: zlib level 1 took 5× the time of level 0 (stored blocks) for a
 * file only ~17% smaller (CT noise does not compress), adaptive filtering doubled it again; so
 * level 0, no filtering. Bilinear resize, as Gemma 3's image processor itself resamples.
 */

export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3;
  /** Physical width / height of one pixel. */
  pixelAspect: number;
}

export interface FittedPng {
  png: Buffer;
  width: number;
  height: number;
}

export const PNG_OPTIONS = { compressionLevel: 0, adaptiveFiltering: false } as const;

export { fittedSize } from './pixels-fit.js';

export async function fitPng(img: RawImage, size: number): Promise<FittedPng> {
  const inner = placement(img.width, img.height, img.pixelAspect, size);
  const { left, top } = inner;
  const input = Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength);
  let p = sharp(input, { raw: { width: img.width, height: img.height, channels: img.channels } });
  if (inner.width !== img.width || inner.height !== img.height)
    p = p.resize({ width: inner.width, height: inner.height, fit: 'fill', kernel: 'linear' });
  if (inner.width !== size || inner.height !== size) {
    p = p.extend({ left, top, right: size - inner.width - left, bottom: size - inner.height - top, background: { r: 0, g: 0, b: 0 } });
  }
  // Grey data stays one channel through the resize (a third of the work) and becomes RGB on output.
  if (img.channels === 1) p = p.toColourspace('srgb');
  const { data, info } = await p.png(PNG_OPTIONS).toBuffer({ resolveWithObject: true });
  return { png: data, width: info.width, height: info.height };
}

/** An image already fitted onto its size × size canvas (by the decode workers): PNG only. */
export async function encodePng(img: { data: Uint8Array; width: number; height: number; channels: 1 | 3 }): Promise<FittedPng> {
  const input = Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength);
  let p = sharp(input, { raw: { width: img.width, height: img.height, channels: img.channels } });
  if (img.channels === 1) p = p.toColourspace('srgb');
  const { data, info } = await p.png(PNG_OPTIONS).toBuffer({ resolveWithObject: true });
  return { png: data, width: info.width, height: info.height };
}
