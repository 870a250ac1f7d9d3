import { Readable } from 'node:stream';
import dcmjsCodecs from 'dcmjs-codecs';
import type { ByteRange, RangeStore } from './pixel-data.js';
import { TS } from './transfer-syntax.js';

/**
 * One encapsulated frame → its uncompressed samples, through dcmjs-codecs' WebAssembly codecs:
 * the node's one decoding step, used frame by frame by the render pipeline (render/frame-decoder.ts)
 * and by the transcoder (transcode-worker.ts). The caller finds the frame's fragments with the
 * pixel-data walker (pixel-data.ts) and loads the codecs first (native-codecs.ts' initCodecs).
 */

const { Context, NativeCodecs } = dcmjsCodecs;
type CodecContext = InstanceType<typeof Context>;
type Codec = (ctx: CodecContext) => CodecContext;

/**
 * Encapsulated syntaxes by codec; the JPEG processes that may carry YBR are converted to RGB by the
 * codec. HTJ2K goes through OpenJPEG's decoder, which reads it (as dcmjs-imaging did): measured 3x
 * faster than the OpenJPH decoder (decodeHtJpeg2000) on the corpus' HTJ2K RGB file.
 */
const CODECS: ReadonlyMap<string, Codec> = new Map<string, Codec>([
  [TS.JPEGBaseline8Bit, (c) => NativeCodecs.decodeJpeg(c, { convertColorspaceToRgb: true })],
  [TS.JPEGExtended12Bit, (c) => NativeCodecs.decodeJpeg(c, { convertColorspaceToRgb: true })],
  [TS.JPEGLossless, (c) => NativeCodecs.decodeJpeg(c)],
  [TS.JPEGLosslessSV1, (c) => NativeCodecs.decodeJpeg(c)],
  [TS.JPEGLSLossless, (c) => NativeCodecs.decodeJpegLs(c)],
  [TS.JPEGLSNearLossless, (c) => NativeCodecs.decodeJpegLs(c)],
  [TS.JPEG2000Lossless, (c) => NativeCodecs.decodeJpeg2000(c)],
  [TS.JPEG2000, (c) => NativeCodecs.decodeJpeg2000(c)],
  [TS.JPEG2000MCLossless, (c) => NativeCodecs.decodeJpeg2000(c)],
  [TS.JPEG2000MC, (c) => NativeCodecs.decodeJpeg2000(c)],
  [TS.HTJ2KLossless, (c) => NativeCodecs.decodeJpeg2000(c)],
  [TS.HTJ2KLosslessRPCL, (c) => NativeCodecs.decodeJpeg2000(c)],
  [TS.HTJ2K, (c) => NativeCodecs.decodeJpeg2000(c)],
  [TS.RLELossless, (c) => NativeCodecs.decodeRle(c)],
]);

/** Whether frames stored in `ts` can be decoded one by one here. */
export function hasFrameCodec(ts: string): boolean {
  return CODECS.has(ts);
}

/** A number element as parsed (dcmjs or header.ts: a number, a numeric string, or a list of them). */
export function elementNumber(v: unknown, fallback: number): number {
  const x = Array.isArray(v) ? v[0] : v;
  const n = typeof x === 'number' ? x : typeof x === 'string' ? Number(x.trim()) : Number.NaN;
  return Number.isFinite(n) ? n : fallback;
}

/** A code string element as parsed, printable, trimmed and upper case ('' when absent). */
export function elementText(v: unknown): string {
  const x = Array.isArray(v) ? v[0] : v;
  return typeof x === 'string'
    ? x
        .replace(/[^ -~]+/g, '')
        .trim()
        .toUpperCase()
    : '';
}

/** The photometric interpretation of what the codec gave back. */
function decodedPhotometric(stored: string, ts: string, samples: number): string {
  if (samples !== 3) return stored;
  // JPEG baseline/extended were asked to convert; JPEG 2000 undoes its own component transform.
  if (ts === TS.JPEGBaseline8Bit || ts === TS.JPEGExtended12Bit) return 'RGB';
  if (stored === 'YBR_ICT' || stored === 'YBR_RCT') return 'RGB';
  return stored;
}

/** One frame's uncompressed samples, exactly Rows × Columns × SamplesPerPixel × bytes allocated. */
export interface FrameSamples {
  bytes: Uint8Array;
  photometric: string;
  planarConfiguration: number;
}

/**
 * Decodes one frame (its fragments' bytes, concatenated) of an instance stored in `ts`, described
 * by its image pixel elements. Throws the codec's error as is (a WebAssembly trap is a
 * RuntimeError: the caller replaces the thread).
 */
export function decodeFrameSamples(elements: Record<string, unknown>, ts: string, encoded: Uint8Array): FrameSamples {
  const codec = CODECS.get(ts);
  if (!codec) throw new Error(`no codec decodes ${ts} frame by frame`);
  const samples = elementNumber(elements.SamplesPerPixel, 1);
  const photometric = elementText(elements.PhotometricInterpretation) || 'MONOCHROME2';
  const bitsAllocated = elementNumber(elements.BitsAllocated, 8);
  const ctx = new Context({
    width: elementNumber(elements.Columns, 0),
    height: elementNumber(elements.Rows, 0),
    bitsAllocated,
    bitsStored: elementNumber(elements.BitsStored, bitsAllocated),
    samplesPerPixel: samples,
    pixelRepresentation: elementNumber(elements.PixelRepresentation, 0),
    planarConfiguration: elementNumber(elements.PlanarConfiguration, 0),
    photometricInterpretation: photometric,
    encodedBuffer: encoded,
  });
  const out = codec(ctx);
  const bytes = out.getDecodedBuffer();
  if (!bytes) throw new Error(`the ${ts} codec returned no pixels`);
  return {
    bytes,
    photometric: decodedPhotometric(photometric, ts, samples),
    planarConfiguration: elementNumber(out.getPlanarConfiguration(), elementNumber(elements.PlanarConfiguration, 0)),
  };
}

/** A whole instance in memory, read as the pixel-data walker reads a stored object. */
export function memoryStore(bytes: Buffer): RangeStore {
  return {
    get: async (_key: string, range?: ByteRange) =>
      Readable.from([range ? bytes.subarray(range.start, range.end === undefined ? undefined : range.end + 1) : bytes]),
    stat: async () => ({ size: bytes.length }),
  };
}

/** The bytes of one frame's fragments (ranges from pixelDataLayout), as one buffer. */
export function frameBytes(bytes: Buffer, ranges: ByteRange[]): Buffer {
  const parts = ranges.map((r) => bytes.subarray(r.start, (r.end ?? bytes.length - 1) + 1));
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}
