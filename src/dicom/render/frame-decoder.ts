import { Readable } from 'node:stream';
import dcmjsCodecs from 'dcmjs-codecs';
import { headerElements } from '../header.js';
import { initCodecs } from '../native-codecs.js';
import { CorruptError, PixelDataUnavailable, pixelDataLayout, type ByteRange, type RangeStore } from '../pixel-data.js';
import { metaTransferSyntax } from '../structure.js';
import { TS } from '../transfer-syntax.js';
import { decodeElements } from './decode-elements.js';
import { type DecodedFrame, decodeFrame, type FramePixels, PixelDecodeError } from './decode-frame.js';
import { nativeElements } from './native-elements.js';

/**
 * The render pipeline's one decoder, for display and image preparation alike: a Part 10 instance
 * (any stored transfer syntax) → one frame at a time as modality values or RGB (decode-frame.ts).
 *
 * - Native little endian: the pixel data is read in place (native-elements.ts' fast walk for
 *   classic images, dcmjs' parse otherwise); a frame is a slice of it.
 * - Encapsulated: the data set before Pixel Data is parsed once (header.ts), the kernel's
 *   pixel-data walker (pixel-data.ts) finds each frame's fragments, and only the frames asked for
 *   go through dcmjs-codecs' WebAssembly codecs (JPEG baseline, extended 12-bit and lossless;
 *   JPEG-LS; JPEG 2000; HTJ2K; RLE): a large multi-frame costs one frame's decoding, not all of them.
 * - Deflated and big endian (rare): the whole instance is transcoded to native (decode-elements.ts).
 */

const { Context, NativeCodecs } = dcmjsCodecs;
type CodecContext = InstanceType<typeof Context>;
type Elements = Record<string, unknown>;

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

/** The whole instance in memory, as the pixel-data walker reads a stored object. */
function memoryStore(bytes: Buffer): RangeStore {
  return {
    get: async (_key: string, range?: ByteRange) =>
      Readable.from([range ? bytes.subarray(range.start, range.end === undefined ? undefined : range.end + 1) : bytes]),
    stat: async () => ({ size: bytes.length }),
  };
}

function num(v: unknown, fallback: number): number {
  const x = Array.isArray(v) ? v[0] : v;
  const n = typeof x === 'number' ? x : typeof x === 'string' ? Number(x.trim()) : Number.NaN;
  return Number.isFinite(n) ? n : fallback;
}

function text(v: unknown): string {
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

export class FrameDecoder {
  private constructor(
    /** The data set's elements (Pixel Data included only for native syntaxes). */
    readonly elements: Elements,
    /** The stored transfer syntax. */
    readonly transferSyntaxUid: string,
    private readonly encapsulated?: { bytes: Buffer; frames: ByteRange[][] },
  ) {}

  /** Frames in the instance (1 for single-frame images). */
  get numberOfFrames(): number {
    return Math.max(1, Math.trunc(num(this.elements.NumberOfFrames, 1)) || 1);
  }

  /**
   * Parses the instance (the bytes are kept, not copied, for an encapsulated one); decodes nothing
   * yet. PixelDecodeError when it cannot be read for decoding.
   */
  static async open(bytes: Buffer): Promise<FrameDecoder> {
    const stored = metaTransferSyntax(bytes) ?? TS.ImplicitVRLittleEndian;
    const fast = nativeElements(bytes, stored);
    if (fast) return new FrameDecoder(fast, stored);
    if (stored === TS.ExplicitVRLittleEndian || stored === TS.ImplicitVRLittleEndian || !CODECS.has(stored)) {
      // Native objects the fast walk declines, deflated, big endian: dcmjs-codecs parses (and
      // for the last two transcodes) the whole instance.
      const { elements } = await decodeElements(bytes);
      return new FrameDecoder(elements, stored);
    }
    let elements: Elements;
    try {
      elements = headerElements(bytes);
    } catch (err) {
      throw new PixelDecodeError(`the instance cannot be parsed: ${err instanceof Error ? err.message : String(err)}`);
    }
    let frames: ByteRange[][];
    try {
      frames = (await pixelDataLayout(memoryStore(bytes), '', stored)).frames;
    } catch (err) {
      if (err instanceof PixelDataUnavailable || err instanceof CorruptError) throw new PixelDecodeError(err.message);
      throw err;
    }
    await initCodecs();
    return new FrameDecoder(elements, stored, { bytes, frames });
  }

  /**
   * Frame `frameIndex` (0-based) as modality values or RGB. `into`, when given and large enough,
   * receives the modality values. PixelDecodeError for what cannot be decoded, its `trap` set
   * when a codec's WebAssembly trapped (the caller replaces the thread).
   */
  decode(frameIndex: number, into?: Float32Array): DecodedFrame {
    if (!this.encapsulated) return decodeFrame(this.elements, frameIndex, into);
    const el = this.elements;
    const ranges = this.encapsulated.frames[frameIndex];
    if (frameIndex < 0 || frameIndex >= this.numberOfFrames)
      throw new PixelDecodeError(`frame ${frameIndex + 1} does not exist: the instance has ${this.numberOfFrames} frame(s)`);
    if (!ranges || ranges.length === 0) throw new PixelDecodeError(`frame ${frameIndex + 1} has no pixel data`);
    const b = this.encapsulated.bytes;
    const parts = ranges.map((r) => b.subarray(r.start, (r.end ?? b.length - 1) + 1));
    const encoded = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    const samples = num(el.SamplesPerPixel, 1);
    const photometric = text(el.PhotometricInterpretation) || 'MONOCHROME2';
    let out: CodecContext;
    try {
      const ctx = new Context({
        width: num(el.Columns, 0),
        height: num(el.Rows, 0),
        bitsAllocated: num(el.BitsAllocated, 8),
        bitsStored: num(el.BitsStored, num(el.BitsAllocated, 8)),
        samplesPerPixel: samples,
        pixelRepresentation: num(el.PixelRepresentation, 0),
        planarConfiguration: num(el.PlanarConfiguration, 0),
        photometricInterpretation: photometric,
        encodedBuffer: new Uint8Array(encoded.buffer, encoded.byteOffset, encoded.length),
      });
      out = CODECS.get(this.transferSyntaxUid)!(ctx);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      const trap = err instanceof Error && err.name === 'RuntimeError' ? err : undefined;
      throw new PixelDecodeError(`pixel data stored as ${this.transferSyntaxUid} cannot be decoded: ${why}`, trap);
    }
    const decoded = out.getDecodedBuffer();
    if (!decoded) throw new PixelDecodeError(`the ${this.transferSyntaxUid} codec returned no pixels`);
    const own: FramePixels = {
      bytes: decoded,
      photometric: decodedPhotometric(photometric, this.transferSyntaxUid, samples),
      planarConfiguration: num(out.getPlanarConfiguration(), num(el.PlanarConfiguration, 0)),
    };
    return decodeFrame(el, frameIndex, into, own);
  }
}
