import sharp from 'sharp';
import { placement } from './fit.js';
import type { RenderedImage, RenderOptions } from './render-types.js';

/**
 * The encoding step of the render pipeline (sharp): a display image (region, box, JPEG/PNG/GIF)
 * or a model image fitted into a square (PNG).
 *
 * fitPng: an 8-bit image fitted into size × size: scaled so its physical aspect (pixel aspect from Pixel
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

/**
 * A rendered frame as a display image: the region taken, scaled into the box (aspect kept, never
 * grown unless the box says so), encoded as asked. Output is opaque RGB: alpha is dropped (JPEG has
 * none; PNG and GIF stay smaller), grey becomes RGB.
 */
export async function encodeDisplay(
  img: { data: Uint8Array; width: number; height: number; channels: 1 | 3 | 4 },
  opts: Omit<RenderOptions, 'frame' | 'window'>,
): Promise<RenderedImage> {
  const input = Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength);
  let pipeline = sharp(input, { raw: { width: img.width, height: img.height, channels: img.channels } });
  if (opts.region) {
    const { x0, y0, x1, y1 } = opts.region;
    const left = Math.min(img.width - 1, Math.floor(x0 * img.width));
    const top = Math.min(img.height - 1, Math.floor(y0 * img.height));
    const width = Math.max(1, Math.min(img.width - left, Math.round((x1 - x0) * img.width)));
    const height = Math.max(1, Math.min(img.height - top, Math.round((y1 - y0) * img.height)));
    pipeline = pipeline.extract({ left, top, width, height });
  }
  const box = opts.box;
  if (box && (box.width !== undefined || box.height !== undefined)) {
    pipeline = pipeline.resize({ width: box.width, height: box.height, fit: 'inside', withoutEnlargement: !box.enlarge });
  }
  if (img.channels === 4) pipeline = pipeline.removeAlpha();
  if (img.channels === 1) pipeline = pipeline.toColourspace('srgb');
  const out =
    opts.output === 'image/png'
      ? pipeline.png({ compressionLevel: 6 })
      : opts.output === 'image/gif'
        ? pipeline.gif()
        : pipeline.jpeg({ quality: opts.quality });
  const { data, info } = await out.toBuffer({ resolveWithObject: true });
  return { body: data, width: info.width, height: info.height, mediaType: opts.output };
}
