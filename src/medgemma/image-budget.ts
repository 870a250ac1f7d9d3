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
}

const b64 = (n: number) => Math.ceil(n / 3) * 4;
const JPEG_QUALITIES = [95, 90, 85] as const;

export async function imageDataUrls(pngs: readonly Buffer[], budgetBytes: number): Promise<ImageUrls> {
  const size = (bufs: readonly Buffer[]) => bufs.reduce((a, p) => a + b64(p.length), 0);
  // Already small enough as they are (a few images): no recompression needed.
  const packed = size(pngs) <= budgetBytes ? pngs : await Promise.all(pngs.map((p) => sharp(p).png({ compressionLevel: 6 }).toBuffer()));
  const pngBytes = size(packed);
  if (pngBytes <= budgetBytes) {
    return { urls: packed.map((p) => `data:image/png;base64,${p.toString('base64')}`), format: 'png', bytes: pngBytes };
  }
  let bytes = 0;
  for (const quality of JPEG_QUALITIES) {
    const jpegs = await Promise.all(pngs.map((p) => sharp(p).jpeg({ quality, chromaSubsampling: '4:4:4' }).toBuffer()));
    bytes = size(jpegs);
    if (bytes <= budgetBytes)
      return { urls: jpegs.map((j) => `data:image/jpeg;base64,${j.toString('base64')}`), format: 'jpeg', quality, bytes };
  }
  throw new EngineError(
    'too_large',
    `${pngs.length} images need ${(bytes / 1e6).toFixed(0)} MB even as JPEG quality ${JPEG_QUALITIES.at(-1)}, over the ${(budgetBytes / 1e6).toFixed(0)} MB request budget (MEDGEMMA_MAX_REQUEST_MB); send fewer images (MEDGEMMA_MAX_SLICES)`,
  );
}
