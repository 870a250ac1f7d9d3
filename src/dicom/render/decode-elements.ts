import { metaTransferSyntax } from '../structure.js';
import { inflatePart10, InflateError, initCodecs, Transcoder } from '../native-codecs.js';
import { TS } from '../transfer-syntax.js';
import { PixelDecodeError } from './decode-frame.js';
import { nativeElements } from './native-elements.js';

/**
 * Part 10 bytes of any stored transfer syntax → the data set's elements with uncompressed,
 * little-endian Pixel Data. Classic native little-endian images take the fast walk
 * (native-elements.ts); for everything else dcmjs-codecs (WebAssembly, the same codecs as the transcoder) does the
 * decompression and byte swapping; Deflated Explicit VR Little Endian is inflated here first, as
 * the transcoder does. Meant for worker threads: decoding is CPU-bound.
 */

const NATIVE_LE: ReadonlySet<string> = new Set([TS.ExplicitVRLittleEndian, TS.ImplicitVRLittleEndian]);

export interface DecodedElements {
  elements: Record<string, unknown>;
  /** The stored transfer syntax (before decoding). */
  transferSyntaxUid: string;
}

export async function decodeElements(bytes: Buffer): Promise<DecodedElements> {
  // The meta group stops metaValues at its end: the whole file can be passed.
  const stored = metaTransferSyntax(bytes) ?? TS.ImplicitVRLittleEndian;
  const fast = nativeElements(bytes, stored);
  if (fast) return { elements: fast, transferSyntaxUid: stored };
  await initCodecs();
  const input =
    stored === TS.DeflatedExplicitVRLittleEndian
      ? await inflatePart10(bytes).catch((err: unknown) => {
          throw err instanceof InflateError ? new PixelDecodeError(err.message) : err;
        })
      : bytes;
  // A copy into a plain ArrayBuffer: dcmjs-codecs tells Part 10 bytes from an elements object by
  // `instanceof ArrayBuffer`, and the render workers' instances arrive in a SharedArrayBuffer (whose
  // slice is shared too: the instance was taken for an empty data set, Rows/Columns undefined).
  const ab = new Uint8Array(input.buffer, input.byteOffset, input.length).slice().buffer;
  let t: InstanceType<typeof Transcoder>;
  try {
    t = new Transcoder(ab);
  } catch (err) {
    throw new PixelDecodeError(`the instance cannot be parsed: ${err instanceof Error ? err.message : String(err)}`);
  }
  const ts = t.getTransferSyntaxUid();
  if (!NATIVE_LE.has(ts)) {
    try {
      t.transcode(TS.ExplicitVRLittleEndian);
    } catch (err) {
      throw new PixelDecodeError(`pixel data stored as ${stored} cannot be decoded: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return { elements: t.getElements(), transferSyntaxUid: stored };
}
