import sharp from 'sharp';
import { EngineError } from './engine.js';

/**
 * Images for a remote endpoint travel as base64 data URLs inside one JSON request, and servers
 * cap request bodies (llama-server at 100 MB; proxies and clouds often lower). An 85-slice CT at
 * 896² is ~200 MB of PNG. So: PNG (lossless) when the request fits the budget, else JPEG at high
 * quality (an 85-slice CT becomes ~15 MB), else a clear error rather than a refused upload.
 */

export interface ImageUrls {
  urls: string[];
  format: 'png' | 'jpeg';
  bytes: number;
}

const b64 = (n: number) => Math.ceil(n / 3) * 4;

export async function imageDataUrls(pngs: readonly Buffer[], budgetBytes: number, jpegQuality = 95): Promise<ImageUrls> {
  const pngBytes = pngs.reduce((a, p) => a + b64(p.length), 0);
  if (pngBytes <= budgetBytes) {
    return { urls: pngs.map((p) => `data:image/png;base64,${p.toString('base64')}`), format: 'png', bytes: pngBytes };
  }
  const jpegs = await Promise.all(pngs.map((p) => sharp(p).jpeg({ quality: jpegQuality, chromaSubsampling: '4:4:4' }).toBuffer()));
  const bytes = jpegs.reduce((a, j) => a + b64(j.length), 0);
  if (bytes > budgetBytes) {
    throw new EngineError(
      'too_large',
      `${pngs.length} images need ${(bytes / 1e6).toFixed(0)} MB even as JPEG, over the ${(budgetBytes / 1e6).toFixed(0)} MB request budget (MEDGEMMA_MAX_REQUEST_MB); send fewer images (MEDGEMMA_MAX_SLICES)`,
    );
  }
  return { urls: jpegs.map((j) => `data:image/jpeg;base64,${j.toString('base64')}`), format: 'jpeg', bytes };
}
