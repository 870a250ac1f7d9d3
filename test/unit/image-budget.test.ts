import { expect } from 'chai';
import sharp from 'sharp';
import { imageDataUrls } from '../../src/medgemma/image-budget.js';

/**
 * An uncompressed PNG (as the image preparation writes them) of a gradient with noise, like a
 * CT slice: lossless compression gains little, JPEG much.
 */
async function noisyPng(seed: number, size = 64): Promise<Buffer> {
  const px = Buffer.alloc(size * size * 3);
  let x = seed * 2654435761;
  for (let i = 0; i < px.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    const at = Math.floor(i / 3);
    px[i] = (((at % size) + Math.floor(at / size) + seed) * 2 + (x >>> 28)) & 255;
  }
  return sharp(px, { raw: { width: size, height: size, channels: 3 } })
    .png({ compressionLevel: 0 })
    .toBuffer();
}

const b64 = (n: number) => Math.ceil(n / 3) * 4;

describe('unit: images for a remote endpoint within the request budget (image-budget.ts)', () => {
  it('a large set that cannot fit losslessly goes JPEG on a sample estimate, without recompressing every image', async () => {
    const pngs = await Promise.all(Array.from({ length: 40 }, (_, i) => noisyPng(i + 1)));
    const lossless = (await Promise.all(pngs.map((p) => sharp(p).png({ compressionLevel: 6 }).toBuffer()))).reduce(
      (a, p) => a + b64(p.length),
      0,
    );
    // Half the lossless size: far over, and JPEG fits.
    const r = await imageDataUrls(pngs, Math.floor(lossless / 2));
    expect(r.format).to.equal('jpeg');
    expect(r.losslessEstimated, 'decided on the sample').to.equal(true);
    expect(r.losslessBytes / lossless).to.be.within(0.9, 1.1);
  });

  it('a set near the budget is measured whole: PNG when it fits, JPEG when it does not by a little', async () => {
    const pngs = await Promise.all(Array.from({ length: 40 }, (_, i) => noisyPng(i + 100)));
    const lossless = (await Promise.all(pngs.map((p) => sharp(p).png({ compressionLevel: 6 }).toBuffer()))).reduce(
      (a, p) => a + b64(p.length),
      0,
    );
    const fits = await imageDataUrls(pngs, lossless);
    expect(fits).to.include({ format: 'png', bytes: lossless, losslessEstimated: false });
    const over = await imageDataUrls(pngs, lossless - 1);
    expect(over).to.include({ format: 'jpeg', losslessBytes: lossless, losslessEstimated: false });
  });
});
