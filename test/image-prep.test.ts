import { expect } from 'chai';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { encodePart10 } from '../fixtures/encode.js';
import { CT_PHANTOM, CR_PHANTOM, ctSlices, makeCrImage, makeCtSeries, makeMrSeries, type GeneratedFile } from '../fixtures/generate.js';
import { fittedSize } from '../src/dicom/render/fit.js';
import {
  closeImagePrep,
  ImagePrepError,
  prepareImages,
  sampleEvenly,
  type PreparedImage,
  type PreparedImages,
  type PrepareKind,
  type PrepareSlice,
} from '../src/analysis/prepare-images.js';
import { CT_WINDOWS } from '../src/analysis/ct-windows.js';
import { decodeFrame } from '../src/dicom/render/decode-frame.js';
import { greyVoiLut, greyWindow, linear8, type Bounds } from '../src/dicom/render/value-mapping.js';
import { corpusRoot } from './helpers/corpus.js';

/**
 * Image preparation for MedGemma: HU windows checked pixel by pixel on generated phantoms with
 * known values, radiograph inversion, geometry (896², aspect, padding), even sampling over the
 * corpus chest CT, and every compressed WG04/pydicom syntax against its uncompressed twin.
 */

interface Raw {
  data: Buffer;
  width: number;
  height: number;
  channels: number;
}

async function rawOf(png: Buffer): Promise<Raw> {
  const meta = await sharp(png).metadata();
  expect(meta.format).to.equal('png');
  expect(meta.depth).to.equal('uchar');
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

function px(r: Raw, x: number, y: number): number[] {
  const o = (Math.round(y) * r.width + Math.round(x)) * r.channels;
  return Array.from(r.data.subarray(o, o + r.channels));
}

/** Independent of the implementation's loops: the spec's formula per channel. */
function expectedCt(hu: number): number[] {
  return CT_WINDOWS.map((w: Bounds) => Math.min(255, Math.max(0, Math.round(((hu - w.low) / (w.high - w.low)) * 255))));
}

function near(actual: number[], expected: number[], tol: number, what: string): void {
  expect(actual.length, what).to.equal(expected.length);
  actual.forEach((v, i) =>
    expect(Math.abs(v - expected[i]!), `${what}: channel ${i} is ${v}, expected ${expected[i]} ± ${tol}`).to.be.at.most(tol),
  );
}

function readerOf(files: Map<string, Buffer>): (uid: string) => Promise<Buffer> {
  return async (uid) => {
    const b = files.get(uid);
    if (!b) throw new Error(`no instance ${uid}`);
    return b;
  };
}

function generated(files: GeneratedFile[]): { slices: PrepareSlice[]; read: (uid: string) => Promise<Buffer> } {
  return {
    slices: files.map((f) => ({ sopInstanceUid: f.sopInstanceUid, frameNumber: 1 })),
    read: readerOf(new Map(files.map((f) => [f.sopInstanceUid, f.bytes]))),
  };
}

async function prepareFiles(kind: PrepareKind, absPaths: string[], maxImages = 85): Promise<PreparedImages> {
  return prepareImages({
    kind,
    slices: absPaths.map((p) => ({ sopInstanceUid: p, frameNumber: 1 })),
    maxImages,
    readInstance: (p) => fsp.readFile(p),
  });
}

/** Over every channel, or over one channel of interleaved RGB. */
function meanAbsDiff(a: Raw, b: Raw, channel?: number): number {
  expect(a.data.length).to.equal(b.data.length);
  const step = channel === undefined ? 1 : a.channels;
  let sum = 0;
  let n = 0;
  for (let i = channel ?? 0; i < a.data.length; i += step, n++) sum += Math.abs(a.data[i]! - b.data[i]!);
  return sum / n;
}

/** Wall timings, plus the process's CPU time (all threads): on a shared machine the CPU time says more. */
async function timed(label: string, slices: number, run: () => Promise<PreparedImages>): Promise<PreparedImages> {
  const cpu0 = process.cpuUsage();
  const r = await run();
  const cpu = process.cpuUsage(cpu0);
  const t = r.timings;
  console.log(
    `      ${label}: ${slices} slices → ${r.images.length} images in ${t.totalMs.toFixed(0)} ms (${((t.totalMs / slices) * 100).toFixed(0)} ms per 100 slices);` +
      ` stages summed over slices: decode ${t.decodeMs.toFixed(0)} ms, map+enlarge ${t.mapMs.toFixed(0)} ms, encode ${t.encodeMs.toFixed(0)} ms;` +
      ` process CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms; PNG ${(r.images.reduce((n, i) => n + i.png.length, 0) / 1e6).toFixed(0)} MB`,
  );
  return r;
}

const corpus = (p: string): string => path.join(corpusRoot, p);

describe('image preparation for MedGemma', function () {
  this.timeout(180_000);
  after(() => closeImagePrep());

  describe('sampleEvenly', () => {
    it('keeps the first and last, spreads the rest evenly, never repeats', () => {
      const items = Array.from({ length: 99 }, (_, i) => i);
      const s = sampleEvenly(items, 85);
      expect(s).to.have.length(85);
      expect(s[0]).to.equal(0);
      expect(s[84]).to.equal(98);
      for (let i = 1; i < s.length; i++) {
        const step = s[i]! - s[i - 1]!;
        expect(step, `step ${i}`).to.be.within(1, 2);
      }
      const big = sampleEvenly(
        Array.from({ length: 500 }, (_, i) => i),
        85,
      );
      const steps = big.slice(1).map((v, i) => v - big[i]!);
      expect(Math.max(...steps) - Math.min(...steps)).to.be.at.most(1);
      expect(big[84]).to.equal(499);
    });

    it('returns everything when there are few items, one item for max 1', () => {
      expect(sampleEvenly([1, 2, 3], 85)).to.deep.equal([1, 2, 3]);
      expect(sampleEvenly([1, 2, 3], 1)).to.deep.equal([1]);
      expect(sampleEvenly([1, 2, 3], 2)).to.deep.equal([1, 3]);
      expect(sampleEvenly([1, 2, 3], 0)).to.deep.equal([]);
    });
  });

  describe('windowing', () => {
    it('maps the reference HU values as MedGemma 1.5 does', () => {
      const at = (hu: number): number[] => CT_WINDOWS.map((w) => linear8(hu, w));
      expect(at(-1000)).to.deep.equal([3, 0, 0]);
      expect(at(0)).to.deep.equal([128, Math.round((135 / 350) * 255), 0]);
      expect(at(40)[2]).to.equal(128);
      expect(at(3000)).to.deep.equal([255, 255, 255]);
    });

    it('applies Window Center/Width as PS3.3 C.11.2.1.2 defines LINEAR, and a VOI LUT', () => {
      // c = 40, w = 400: ≤ c − 0.5 − (w−1)/2 = −160 → 0; > c − 0.5 + (w−1)/2 = 239 → 255.
      expect(Array.from(greyWindow(Float32Array.from([-1000, -160, 39.5, 239, 3000]), 40, 400, 'LINEAR'))).to.deep.equal([
        0, 0, 128, 255, 255,
      ]);
      const lut = { firstMapped: 100, bits: 12, data: Uint16Array.from([0, 1000, 4000]) };
      expect(Array.from(greyVoiLut(Float32Array.from([0, 100, 101, 102, 5000]), lut))).to.deep.equal([
        0,
        0,
        Math.round((1000 / 4000) * 255),
        255,
        255,
      ]);
    });

    it('masks to Bits Stored and sign-extends signed pixel data', () => {
      // 12 bits stored in 16, signed: 0x0FFF is −1, 0x0800 is −2048; bits above 11 are ignored.
      const words = Uint16Array.from([0x0fff, 0x0800, 0xf7ff, 0x0001]);
      const f = decodeFrame(
        {
          Rows: 2,
          Columns: 2,
          SamplesPerPixel: 1,
          PhotometricInterpretation: 'MONOCHROME2',
          BitsAllocated: 16,
          BitsStored: 12,
          PixelRepresentation: 1,
          RescaleSlope: '2',
          RescaleIntercept: '10',
          PixelData: [words.buffer],
        },
        0,
      );
      expect(Array.from(f.values!)).to.deep.equal([-1 * 2 + 10, -2048 * 2 + 10, 2047 * 2 + 10, 1 * 2 + 10]);
    });

    it('fits by physical aspect: non-square pixels and non-square matrices', () => {
      expect(fittedSize(512, 512, 1, 896)).to.deep.equal({ width: 896, height: 896 });
      expect(fittedSize(512, 256, 1, 896)).to.deep.equal({ width: 896, height: 448 });
      // Pixels twice as tall as wide: a 512×512 matrix is a 1:2 picture.
      expect(fittedSize(512, 512, 0.5, 896)).to.deep.equal({ width: 448, height: 896 });
    });
  });

  describe('CT', () => {
    const sizes = [{ pixelRepresentation: 'signed' as const }, { pixelRepresentation: 'unsigned' as const }];
    for (const opt of sizes) {
      it(`puts the three HU windows into R, G, B at known phantom pixels (${opt.pixelRepresentation} storage)`, async () => {
        const files = makeCtSeries({ slices: 3, size: 512, seed: 11, pixelRepresentation: opt.pixelRepresentation });
        const { slices, read } = generated(files);
        const r = await prepareImages({ kind: 'ct', slices, maxImages: 85, readInstance: read });
        expect(r.skipped).to.deep.equal([]);
        expect(r.images).to.have.length(3);
        const mid = r.images[1]!;
        expect(mid.mapping).to.equal('ct-3window');
        expect([mid.width, mid.height]).to.deep.equal([896, 896]);
        const img = await rawOf(mid.png);
        expect([img.width, img.height, img.channels]).to.deep.equal([896, 896, 3]);
        // 350 mm field of view over 512 pixels, centred on the isocentre; 896/512 output scale.
        const ps = 350 / 512;
        const toOut = (mm: number): number => ((mm + ((512 - 1) * ps) / 2) / ps + 0.5) * (896 / 512) - 0.5;
        const p = CT_PHANTOM;
        const checks: Array<[string, number, number, number]> = [
          ['air', -170, -170, p.airHu],
          ['soft tissue', 0, 30, p.body.hu],
          ['lung', p.lungs[0]!.cx, p.lungs[0]!.cy, p.lungHu],
          ['spine', p.spine.cx, p.spine.cy, p.spine.hu],
          ['lesion', p.lesion.cx, p.lesion.cy, p.lesion.hu],
        ];
        for (const [what, x, y, hu] of checks) near(px(img, toOut(x), toOut(y)), expectedCt(hu), 1, `${what} (${hu} HU)`);
        near(px(img, toOut(-170), toOut(-170)), [3, 0, 0], 1, 'air is R≈3, G=B=0');
      });
    }

    it('keeps the aspect of a non-square image and pads it black', async () => {
      const files = makeCtSeries({ slices: 1, rows: 256, columns: 512, pixelSpacing: 0.7, seed: 12 });
      const { slices, read } = generated(files);
      const r = await prepareImages({ kind: 'ct', slices, maxImages: 85, readInstance: read });
      const img = await rawOf(r.images[0]!.png);
      expect([img.width, img.height, img.channels]).to.deep.equal([896, 896, 3]);
      // 512×256 pixels of 0.7 mm → 896×448, centred: rows 224..671 carry the image.
      let padMax = 0;
      for (const y of [0, 100, 223, 672, 800, 895]) for (let x = 0; x < 896; x++) padMax = Math.max(padMax, ...px(img, x, y));
      expect(padMax, 'padding is black').to.equal(0);
      // The image's own air is R≈3, so content rows are never all black.
      for (const y of [226, 448, 669]) {
        let minR = 255;
        for (let x = 0; x < 896; x++) minR = Math.min(minR, px(img, x, y)[0]!);
        expect(minR, `row ${y} is image, not padding`).to.be.at.least(2);
      }
    });

    it('applies per-frame Rescale Slope/Intercept of an Enhanced CT and masks bits above Bits Stored', async () => {
      const n = 16;
      const pixels = new Uint16Array(2 * n);
      // Frame 1: stored 1024 with a stray bit 15 (outside Bits Stored 12) → 1024·1 − 1024 = 0 HU.
      pixels.fill(1024 | 0x8000, 0, n);
      // Frame 2: stored 1044 → 1044·2 − 2048 = 40 HU.
      pixels.fill(1044, n, 2 * n);
      const bytes = encodePart10(
        {
          SOPClassUID: '1.2.840.10008.5.1.4.1.1.2.1',
          SOPInstanceUID: '2.25.4242424242',
          Modality: 'CT',
          Rows: 4,
          Columns: 4,
          NumberOfFrames: 2,
          SamplesPerPixel: 1,
          PhotometricInterpretation: 'MONOCHROME2',
          BitsAllocated: 16,
          BitsStored: 12,
          HighBit: 11,
          PixelRepresentation: 0,
          SharedFunctionalGroupsSequence: [{ PixelMeasuresSequence: [{ PixelSpacing: [1, 1], SliceThickness: 1 }] }],
          PerFrameFunctionalGroupsSequence: [
            { PixelValueTransformationSequence: [{ RescaleIntercept: '-1024', RescaleSlope: '1', RescaleType: 'HU' }] },
            { PixelValueTransformationSequence: [{ RescaleIntercept: '-2048', RescaleSlope: '2', RescaleType: 'HU' }] },
          ],
          PixelData: pixels.buffer,
          _vrMap: { PixelData: 'OW' },
        },
        'explicit',
      );
      const r = await prepareImages({
        kind: 'ct',
        slices: [
          { sopInstanceUid: 'e', frameNumber: 1 },
          { sopInstanceUid: 'e', frameNumber: 2 },
        ],
        maxImages: 85,
        size: 64,
        readInstance: async () => bytes,
      });
      expect(r.images.map((i) => i.frameNumber)).to.deep.equal([1, 2]);
      near(px(await rawOf(r.images[0]!.png), 32, 32), expectedCt(0), 0, 'frame 1 (0 HU)');
      near(px(await rawOf(r.images[1]!.png), 32, 32), expectedCt(40), 0, 'frame 2 (40 HU)');
    });

    it('prepares the 99-slice corpus chest CT as 85 evenly sampled 896² images, first and last included', async () => {
      const dir = corpus('ct-series-chest-99');
      const files = fs
        .readdirSync(dir)
        .filter((f) => f.endsWith('.dcm'))
        .sort()
        .map((f) => path.join(dir, f));
      expect(files).to.have.length(99);
      const r = await timed('corpus CT (first run, workers starting)', files.length, () => prepareFiles('ct', files));
      for (let i = 0; i < 2; i++) await timed('corpus CT (warm)', files.length, () => prepareFiles('ct', files));
      expect(r.skipped).to.deep.equal([]);
      expect(r.images).to.have.length(85);
      expect(r.images[0]!.sopInstanceUid).to.equal(files[0]);
      expect(r.images[84]!.sopInstanceUid).to.equal(files[98]);
      const expectedOrder = sampleEvenly(files, 85);
      expect(r.images.map((i) => i.sopInstanceUid)).to.deep.equal(expectedOrder);
      expect(r.images.map((i) => i.index)).to.deep.equal(expectedOrder.map((_, i) => i));
      for (const i of [r.images[0]!, r.images[42]!]) {
        const img = await rawOf(i.png);
        expect([img.width, img.height, img.channels]).to.deep.equal([896, 896, 3]);
      }
      // The table and air around the patient are below −1024 HU… never brighter than the body.
      const mid = await rawOf(r.images[42]!.png);
      expect(px(mid, 2, 2)[1]).to.equal(0);
    });

    it('prepares a generated 500-slice 512² CT (timing)', async () => {
      const files = new Map<string, Buffer>();
      const slices: PrepareSlice[] = [];
      for (const f of ctSlices({ slices: 500, size: 512, seed: 13 })) {
        files.set(f.sopInstanceUid, f.bytes);
        slices.push({ sopInstanceUid: f.sopInstanceUid, frameNumber: 1 });
      }
      const r = await timed('generated CT', 500, () => prepareImages({ kind: 'ct', slices, maxImages: 85, readInstance: readerOf(files) }));
      expect(r.images).to.have.length(85);
      expect(r.images[84]!.sopInstanceUid).to.equal(slices[499]!.sopInstanceUid);
      expect(r.timings.totalMs).to.be.greaterThan(0);
    });
  });

  describe('MR', () => {
    it('maps the whole volume through one robust window into grey', async () => {
      const files = makeMrSeries({ slices: 12, size: 128, seed: 14, noise: 5 });
      const { slices, read } = generated(files);
      const r = await prepareImages({ kind: 'mr', slices, maxImages: 85, readInstance: read });
      expect(r.images).to.have.length(12);
      let lo = 255;
      let hi = 0;
      let notGrey = 0;
      for (const i of r.images) {
        expect(i.mapping).to.equal('mr-robust-minmax');
        const img = await rawOf(i.png);
        expect(img.channels).to.equal(3);
        for (let k = 0; k < img.data.length; k += 3) {
          if (img.data[k] !== img.data[k + 1] || img.data[k] !== img.data[k + 2]) notGrey++;
          lo = Math.min(lo, img.data[k]!);
          hi = Math.max(hi, img.data[k]!);
        }
      }
      expect(notGrey, 'pixels with R, G, B not equal').to.equal(0);
      // 0.5th–99.5th percentiles over the volume: the range is used, the extremes saturate.
      expect(lo).to.equal(0);
      expect(hi).to.equal(255);
    });
  });

  describe('projection radiographs', () => {
    it('inverts MONOCHROME1 so that air is black (generated CR, both photometrics)', async () => {
      const out: Raw[] = [];
      for (const photometricInterpretation of ['MONOCHROME1', 'MONOCHROME2'] as const) {
        const files = makeCrImage({ size: 256, seed: 15, photometricInterpretation });
        const { slices, read } = generated(files);
        const r = await prepareImages({ kind: 'projection', slices, maxImages: 85, readInstance: read });
        expect(r.images[0]!.mapping).to.equal(photometricInterpretation === 'MONOCHROME1' ? 'voi-window-inverted' : 'voi-window');
        out.push(await rawOf(r.images[0]!.png));
      }
      const [m1, m2] = out as [Raw, Raw];
      // Outside the body (background) is air: dark; the spine is bright, in both.
      const bg = Math.round((CR_PHANTOM.background / 4095) * 255);
      for (const img of [m1, m2]) {
        expect(px(img, 5, 5)[0]).to.be.at.most(bg + 2);
        expect(px(img, 448, 448)[0]).to.be.at.least(100);
      }
      expect(meanAbsDiff(m1, m2)).to.be.below(1.5);
    });

    it('inverts the corpus MONOCHROME1 JPEG chest CR: air dark, mediastinum bright', async () => {
      const r = await prepareFiles('projection', [corpus('xray/Monochrome1-Jpeg.dcm')]);
      expect(r.skipped).to.deep.equal([]);
      const i = r.images[0]!;
      expect(i.mapping).to.match(/-inverted$/);
      const img = await rawOf(i.png);
      // 2010 × 2446 pixels: 736 wide inside 896, padded left and right.
      expect(px(img, 40, 448)).to.deep.equal([0, 0, 0]);
      const mean = (x0: number, y0: number, w: number, h: number): number => {
        let s = 0;
        for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) s += px(img, x, y)[0]!;
        return s / (w * h);
      };
      const air = mean(100, 10, 60, 60); // above the shoulders, beside the neck
      const mediastinum = mean(420, 300, 50, 100);
      expect(air, `air ${air.toFixed(0)}`).to.be.below(60);
      expect(mediastinum, `mediastinum ${mediastinum.toFixed(0)}`).to.be.above(150);
    });
  });

  describe('compressed and other transfer syntaxes', () => {
    // Lossy twins' allowed mean abs difference (0–255 scale): JPEG-LS near-lossless is within a few
    // stored units; WG04's J2KI files are compressed 37:1 (CT) and 58:1 (MR).
    const LOSSY: Record<string, number> = { JLSN: 1.5, J2KI: 8 };
    const twins: Array<{ kind: PrepareKind; ref: string; files: string[] }> = [
      {
        kind: 'ct',
        ref: 'transfer-syntaxes/wg04-CT1-MR1/CT1_UNC',
        files: ['RLE', 'JPLL', 'J2KR', 'JLSL', 'JLSN', 'J2KI'].map((s) => `transfer-syntaxes/wg04-CT1-MR1/CT1_${s}`),
      },
      // MR1_JLSL is absent: dcmjs-codecs traps on it (see the skipped test below).
      {
        kind: 'mr',
        ref: 'transfer-syntaxes/wg04-CT1-MR1/MR1_UNC',
        files: ['RLE', 'JPLL', 'J2KR', 'JLSN', 'J2KI'].map((s) => `transfer-syntaxes/wg04-CT1-MR1/MR1_${s}`),
      },
      {
        kind: 'mr',
        ref: 'transfer-syntaxes/pydicom/MR_small.dcm',
        files: [
          'MR_small_RLE.dcm',
          'MR_small_bigendian.dcm',
          'MR_small_implicit.dcm',
          'MR_small_jp2klossless.dcm',
          'MR_small_jpeg_ls_lossless.dcm',
        ].map((f) => `transfer-syntaxes/pydicom/${f}`),
      },
    ];
    for (const t of twins) {
      it(`${path.basename(t.ref)}'s compressed twins give the same image (${t.files.length} syntaxes)`, async () => {
        const ref = await prepareFiles(t.kind, [corpus(t.ref)]);
        const refRaw = await rawOf(ref.images[0]!.png);
        for (const f of t.files) {
          const r = await prepareFiles(t.kind, [corpus(f)]);
          expect(r.skipped, f).to.deep.equal([]);
          const img = await rawOf(r.images[0]!.png);
          const lossy = Object.entries(LOSSY).find(([s]) => f.endsWith(s))?.[1];
          // Lossless: identical. Lossy: close in the widest window (R for CT; grey for MR); the
          // 80 HU window magnifies compression error ×3 per HU, so it is not the yardstick.
          const d = lossy !== undefined ? meanAbsDiff(img, refRaw, 0) : meanAbsDiff(img, refRaw);
          expect(d, `${f}: mean abs diff ${d.toFixed(3)}`).to.be.at.most(lossy ?? 0);
        }
      });
    }

    it('decodes deflated explicit VR little endian and colour JPEG', async () => {
      const r = await prepareFiles('other', [
        corpus('transfer-syntaxes/pydicom/image_dfl.dcm'),
        corpus('transfer-syntaxes/pydicom/SC_rgb_jpeg_dcmtk.dcm'),
      ]);
      expect(r.skipped).to.deep.equal([]);
      expect(r.images.map((i) => i.mapping)).to.deep.equal(['minmax', 'rgb']);
      for (const i of r.images) {
        const img = await rawOf(i.png);
        expect([img.width, img.height, img.channels]).to.deep.equal([896, 896, 3]);
        let max = 0;
        for (const v of img.data) max = Math.max(max, v);
        expect(max, 'not an empty image').to.be.above(100);
      }
    });

    it('reports slices whose codec fails (a damaged JPEG 2000 stream, a JPEG-LS codec trap) in skipped and prepares the rest', async () => {
      // JPEG Extended (MR1_JPLY) is decoded since the pipeline decodes frame by frame with the codecs directly.
      const files = [
        corpus('transfer-syntaxes/wg04-CT1-MR1/MR1_UNC'),
        corpus('transfer-syntaxes/wg04-CT1-MR1/MR1_JPLY'),
        corpus('malformed/JPEG2000-embedded-sequence-delimiter.dcm'),
        corpus('transfer-syntaxes/wg04-CT1-MR1/MR1_JLSL'),
        corpus('transfer-syntaxes/wg04-CT1-MR1/MR1_RLE'),
      ];
      const r = await prepareFiles('mr', files);
      expect(r.images.map((i: PreparedImage) => i.sopInstanceUid)).to.deep.equal([files[0], files[1], files[4]]);
      expect(r.images.map((i) => i.index)).to.deep.equal([0, 1, 2]);
      expect(r.skipped.map((s) => s.sopInstanceUid)).to.deep.equal([files[2], files[3]]);
      expect(r.skipped[0]!.reason).to.match(/1\.2\.840\.10008\.1\.2\.4\.91 cannot be decoded/);
      expect(r.skipped[1]!.reason).to.match(/1\.2\.840\.10008\.1\.2\.4\.80 cannot be decoded/);
      // The trapped worker was replaced: the pool still decodes.
      const after = await prepareFiles('mr', [files[4]!]);
      expect(after.images).to.have.length(1);
    });

    it('throws ImagePrepError all_failed when nothing can be prepared, listing every slice', async () => {
      const err = await prepareImages({
        kind: 'ct',
        slices: [
          { sopInstanceUid: 'a', frameNumber: 1 },
          { sopInstanceUid: 'b', frameNumber: 1 },
        ],
        maxImages: 85,
        readInstance: async (uid) => {
          if (uid === 'a') throw new Error('blob gone');
          return Buffer.from('not DICOM at all');
        },
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(ImagePrepError);
      const e = err as ImagePrepError;
      expect(e.code).to.equal('all_failed');
      expect(e.skipped.map((s) => s.sopInstanceUid)).to.deep.equal(['a', 'b']);
      expect(e.skipped[0]!.reason).to.match(/blob gone/);
    });

    it('stops when the signal is aborted', async () => {
      const files = makeCtSeries({ slices: 2, size: 64, seed: 16 });
      const { slices, read } = generated(files);
      const ac = new AbortController();
      ac.abort();
      const err = await prepareImages({ kind: 'ct', slices, maxImages: 85, readInstance: read, signal: ac.signal }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(Error);
      expect((err as Error).name).to.equal('AbortError');
    });

    it('refuses an empty request with a typed error', async () => {
      const err = await prepareImages({ kind: 'ct', slices: [], maxImages: 85, readInstance: async () => Buffer.alloc(0) }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(ImagePrepError);
      expect((err as ImagePrepError).code).to.equal('no_slices');
    });
  });
});
