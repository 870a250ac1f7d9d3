import { decodeFrameSamples, elementNumber, frameBytes, hasFrameCodec, memoryStore } from '../frame-codec.js';
import { headerElements } from '../header.js';
import { initCodecs } from '../native-codecs.js';
import { CorruptError, PixelDataUnavailable, pixelDataLayout, type ByteRange } from '../pixel-data.js';
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

type Elements = Record<string, unknown>;

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
    return Math.max(1, Math.trunc(elementNumber(this.elements.NumberOfFrames, 1)) || 1);
  }

  /**
   * Parses the instance (the bytes are kept, not copied, for an encapsulated one); decodes nothing
   * yet. PixelDecodeError when it cannot be read for decoding.
   */
  static async open(bytes: Buffer): Promise<FrameDecoder> {
    const stored = metaTransferSyntax(bytes) ?? TS.ImplicitVRLittleEndian;
    const fast = nativeElements(bytes, stored);
    if (fast) return new FrameDecoder(fast, stored);
    if (stored === TS.ExplicitVRLittleEndian || stored === TS.ImplicitVRLittleEndian || !hasFrameCodec(stored)) {
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
    let own: FramePixels;
    try {
      own = decodeFrameSamples(el, this.transferSyntaxUid, frameBytes(this.encapsulated.bytes, ranges));
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      const trap = err instanceof Error && err.name === 'RuntimeError' ? err : undefined;
      throw new PixelDecodeError(`pixel data stored as ${this.transferSyntaxUid} cannot be decoded: ${why}`, trap);
    }
    return decodeFrame(el, frameIndex, into, own);
  }
}
