import { parentPort } from 'node:worker_threads';
import { serveWorker } from '../workers/worker-pool.js';
import { decodeFrameSamples, elementNumber, frameBytes, hasFrameCodec, memoryStore } from './frame-codec.js';
import { inflatePart10, initCodecs as init, Transcoder } from './native-codecs.js';
import { pixelDataLayout } from './pixel-data.js';
import { TS } from './transfer-syntax.js';

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
    t.transcode(req.to);
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
