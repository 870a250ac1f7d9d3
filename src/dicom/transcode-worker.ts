import { parentPort } from 'node:worker_threads';
import { serveWorker } from '../workers/worker-pool.js';
import { decodeFrameSamples, elementNumber, frameBytes, hasFrameCodec, memoryStore } from './frame-codec.js';
import { inflatePart10, initCodecs as init, Transcoder } from './native-codecs.js';
import { pixelDataLayout } from './pixel-data.js';
import { newUid } from './new-uid.js';
import { TS, transferSyntax } from './transfer-syntax.js';

export interface TranscodeRequest {
  bytes: ArrayBuffer;
  from: string;
  to: string;
}

export type TranscodeReply = { ok: true; bytes: ArrayBuffer } | { ok: false; error: string; recycle: boolean };

function arrayBufferOf(b: Buffer | Uint8Array): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
}

/**
 * An encapsulated instance → the same instance with native Pixel Data, frame by frame through the
 * node's one frame decoding step (frame-codec.ts), its fragments found by the pixel-data walker.
 * dcmjs-codecs' own whole-instance decoding is not used for this: it pads each decoded frame to an
 * even length before concatenating them (every frame after the first of an odd-sized 8-bit frame,
 * e.g. a YBR_FULL_422 ultrasound cine, comes out shifted) and cannot map several fragments per frame.
 */
async function decodeToNative(input: Buffer, from: string): Promise<InstanceType<typeof Transcoder>> {
  const elements = new Transcoder(arrayBufferOf(input)).getElements() as Record<string, unknown>;
  const { frames } = await pixelDataLayout(memoryStore(input), '', from);
  const count = Math.max(1, Math.trunc(elementNumber(elements.NumberOfFrames, 1)) || 1);
  const bytesPerSample = Math.ceil(elementNumber(elements.BitsAllocated, 8) / 8);
  const frameSize =
    elementNumber(elements.Rows, 0) * elementNumber(elements.Columns, 0) * elementNumber(elements.SamplesPerPixel, 1) * bytesPerSample;
  if (!(frameSize > 0)) throw new Error('the instance has no image (Rows/Columns missing)');
  const pixels = Buffer.alloc(count * frameSize + ((count * frameSize) % 2));
  let decoded: { photometric: string; planarConfiguration: number } | undefined;
  for (let f = 0; f < count; f++) {
    const ranges = frames[f];
    if (!ranges || ranges.length === 0) throw new Error(`frame ${f + 1} of ${count} has no pixel data`);
    const s = decodeFrameSamples(elements, from, frameBytes(input, ranges));
    if (s.bytes.length < frameSize) throw new Error(`frame ${f + 1} decoded to ${s.bytes.length} bytes, ${frameSize} expected`);
    if (decoded && (decoded.photometric !== s.photometric || decoded.planarConfiguration !== s.planarConfiguration)) {
      throw new Error(`frame ${f + 1} decoded to another photometric interpretation or planar configuration than frame 1`);
    }
    decoded = s;
    pixels.set(s.bytes.subarray(0, frameSize), f * frameSize);
  }
  elements.PixelData = [arrayBufferOf(pixels)];
  elements.PhotometricInterpretation = decoded!.photometric;
  if (elementNumber(elements.SamplesPerPixel, 1) > 1) elements.PlanarConfiguration = decoded!.planarConfiguration;
  elements._vrMap = { PixelData: bytesPerSample === 1 ? 'OB' : 'OW' };
  return new Transcoder(elements, TS.ExplicitVRLittleEndian);
}

/** A multi-valued element as a list of strings ([] when absent or empty). */
function values(v: unknown): string[] {
  const list = Array.isArray(v) ? v : v === undefined || v === null || v === '' ? [] : [v];
  return list.map((x) => String(x).trim()).filter((x) => x !== '');
}

/** What each lossy target's encoder writes as Lossy Image Compression Method (PS3.3 C.7.6.1.1.5.1). */
const LOSSY_METHOD: Record<string, string> = {
  [TS.JPEGBaseline8Bit]: 'ISO_10918_1',
  [TS.JPEGLSNearLossless]: 'ISO_14495_1',
  [TS.JPEG2000]: 'ISO_15444_1',
};

/**
 * Encoding into a lossy syntax makes a derived image (PS3.3 C.7.6.1.1.5): Lossy Image Compression
 * "01", this step's ratio and method appended after those of earlier lossy steps (the values
 * correspond one to one), Image Type value 1 DERIVED, and a new SOP Instance UID, since the
 * predecessor was a DICOM image. dcmjs-codecs' encoders overwrite ratio and method and take a
 * dcmjs UID; `before` holds the elements as they were before encoding.
 */
function markLossy(after: Record<string, unknown>, before: { ratio: string[]; method: string[]; imageType: string[] }, to: string): void {
  const ratio = values(after.LossyImageCompressionRatio).at(-1);
  after.LossyImageCompression = '01';
  // Earlier steps without a recorded method or ratio still keep the two lists aligned.
  const steps = Math.max(before.ratio.length, before.method.length);
  const pad = (l: string[], fill: string) => [...l, ...Array<string>(steps - l.length).fill(fill)];
  if (ratio) after.LossyImageCompressionRatio = [...pad(before.ratio, '1'), Number(ratio).toFixed(2)];
  after.LossyImageCompressionMethod = [...pad(before.method, 'UNKNOWN'), LOSSY_METHOD[to] ?? 'UNKNOWN'];
  if (before.imageType.length) after.ImageType = ['DERIVED', ...before.imageType.slice(1)];
  after.SOPInstanceUID = newUid();
}

/** JPEG Baseline holds 8-bit samples only (PS3.5 A.4.1): refused with a reason before encoding. */
function checkTarget(elements: Record<string, unknown>, to: string): void {
  const bitsStored = elementNumber(elements.BitsStored, elementNumber(elements.BitsAllocated, 8));
  if (to === TS.JPEGBaseline8Bit && (bitsStored > 8 || elementNumber(elements.BitsAllocated, 8) > 8)) {
    throw new Error(`JPEG Baseline (${to}) holds 8-bit samples only; this image has ${bitsStored} bits stored`);
  }
}

serveWorker<TranscodeRequest, TranscodeReply>(
  parentPort!,
  async (req) => {
    await init();
    let input: Buffer = Buffer.from(req.bytes);
    if (req.from === TS.DeflatedExplicitVRLittleEndian) {
      input = await inflatePart10(input);
      if (req.to === TS.ExplicitVRLittleEndian) {
        const out = arrayBufferOf(input);
        return { result: { ok: true, bytes: out }, transfer: [out] };
      }
    }
    const t = hasFrameCodec(req.from) ? await decodeToNative(input, req.from) : new Transcoder(arrayBufferOf(input));
    const lossy = transferSyntax(req.to)?.lossy === true && req.to !== req.from;
    const src = t.getElements() as Record<string, unknown>;
    if (lossy) checkTarget(src, req.to);
    const before = {
      ratio: values(src.LossyImageCompressionRatio),
      method: values(src.LossyImageCompressionMethod),
      imageType: values(src.ImageType),
    };
    t.transcode(req.to);
    if (lossy) markLossy(t.getElements() as Record<string, unknown>, before, req.to);
    // The attributes are carried over as stored: a legacy or over-long value (an ACR-NEMA DA
    // "1997.04.24") is not the transcoder's business and must not stop the pixels.
    const out = t.getDicomPart10({ allowInvalidVRLength: true });
    return { result: { ok: true, bytes: out }, transfer: [out] };
  },
  // A WebAssembly trap ("unreachable") can leave the codec's memory in any state: start afresh.
  (err) => ({
    ok: false,
    error: err instanceof Error ? err.message : String(err),
    recycle: err instanceof Error && err.name === 'RuntimeError',
  }),
);
