import sharp from 'sharp';
import { EngineError } from './engine.js';

/**
 * Images for a remote endpoint travel as base64 data URLs inside one JSON request, and servers
 * cap request bodies (llama-server at 100 MB; proxies and clouds often lower). The prepared PNGs
 * are written uncompressed for speed (src/dicom/render/encode.ts), so here they are first
 * recompressed losslessly; lossless PNG goes when the request fits the budget, else JPEG at the
 * highest quality of 95, 90, 85 that fits (chroma never subsampled: a CT image's three channels
 * are three HU windows, and 4:2:0 would blur two of them), else a clear error.
 *
 * Measured on the corpus (85 images at 896², base64): chest CT (three windows, noisy) ~125 MB as
 * compressed PNG, 81 MB as JPEG q95 (PSNR 39 dB against the PNG), 58 MB at q90 (35 dB); the 4:2:0
 * q75 JPEG of Google's CT notebook would be 21 MB at 24 dB. Brain MR (grey) ~30 MB as lossless PNG.
 */

export interface ImageUrls {
  urls: string[];
  format: 'png' | 'jpeg';
  /** JPEG quality; absent for PNG. */
  quality?: number;
  bytes: number;
  /** The images' size as lossless PNG data URLs: measured, or estimated from a sample (losslessEstimated). */
  losslessBytes: number;
  losslessEstimated: boolean;
}

const b64 = (n: number) => Math.ceil(n / 3) * 4;
const JPEG_QUALITIES = [95, 90, 85] as const;
/** Images recompressed to estimate the lossless size of a larger set. */
const SAMPLE_IMAGES = 8;
/**
 * An estimate this far over the budget is taken as final: the full lossless pass is skipped. The
 * spread of compressed sizes along a series is well within it (corpus chest CT: estimate within
 * 3% of the total); an estimate under it is checked by compressing every image.
 */
const ESTIMATE_MARGIN = 1.15;

const packPng = (p: Buffer) => sharp(p).png({ compressionLevel: 6 }).toBuffer();

/**
 * Lossless PNG data URLs when they fit the budget, else null, with their size. Recompressing
 * 85 images at 896² takes seconds, and a CT study never fits: a sample, evenly spread, decides
 * first whether the whole pass can fit at all.
 */
async function losslessUrls(
  pngs: readonly Buffer[],
  budgetBytes: number,
): Promise<{ packed: Buffer[] | null; bytes: number; estimated: boolean }> {
  const size = (bufs: readonly Buffer[]) => bufs.reduce((a, p) => a + b64(p.length), 0);
  // Already small enough as they are (a few images): no recompression needed.
  if (size(pngs) <= budgetBytes) return { packed: [...pngs], bytes: size(pngs), estimated: false };
  const packed: Array<Buffer | undefined> = new Array(pngs.length);
  if (pngs.length > SAMPLE_IMAGES * 2) {
    const picks = Array.from({ length: SAMPLE_IMAGES }, (_, i) => Math.floor(((i + 0.5) * pngs.length) / SAMPLE_IMAGES));
    await Promise.all(picks.map(async (i) => (packed[i] = await packPng(pngs[i]!))));
    const estimate = (size(picks.map((i) => packed[i]!)) / picks.length) * pngs.length;
    if (estimate > budgetBytes * ESTIMATE_MARGIN) return { packed: null, bytes: Math.round(estimate), estimated: true };
  }
  const all = await Promise.all(pngs.map(async (p, i) => packed[i] ?? packPng(p)));
  const bytes = size(all);
  return { packed: bytes <= budgetBytes ? all : null, bytes, estimated: false };
}

export async function imageDataUrls(pngs: readonly Buffer[], budgetBytes: number): Promise<ImageUrls> {
  const size = (bufs: readonly Buffer[]) => bufs.reduce((a, p) => a + b64(p.length), 0);
  const lossless = await losslessUrls(pngs, budgetBytes);
  const measured = { losslessBytes: lossless.bytes, losslessEstimated: lossless.estimated };
  if (lossless.packed) {
    return {
      urls: lossless.packed.map((p) => `data:image/png;base64,${p.toString('base64')}`),
      format: 'png',
      bytes: lossless.bytes,
      ...measured,
    };
  }
  let bytes = 0;
  for (const quality of JPEG_QUALITIES) {
    const jpegs = await Promise.all(pngs.map((p) => sharp(p).jpeg({ quality, chromaSubsampling: '4:4:4' }).toBuffer()));
    bytes = size(jpegs);
    if (bytes <= budgetBytes)
      return { urls: jpegs.map((j) => `data:image/jpeg;base64,${j.toString('base64')}`), format: 'jpeg', quality, bytes, ...measured };
  }
  throw new EngineError(
    'too_large',
    `${pngs.length} images need ${(bytes / 1e6).toFixed(0)} MB even as JPEG quality ${JPEG_QUALITIES.at(-1)}, over the ${(budgetBytes / 1e6).toFixed(0)} MB request budget (MEDGEMMA_MAX_REQUEST_MB); send fewer images (MEDGEMMA_MAX_SLICES)`,
  );
}
