import { createRequire } from 'node:module';
import path from 'node:path';
import zlib from 'node:zlib';
import dcmjsCodecs from 'dcmjs-codecs';
import { fileMetaPrefix } from '../dicom/part10.js';
import { datasetOffset, metaTransferSyntax, metaValues } from '../dicom/structure.js';
import { TS } from '../dicom/uids.js';
import { PixelDecodeError } from './pixels.js';
import { nativeElements } from './pixels-native.js';

/**
 * Part 10 bytes of any stored transfer syntax → the data set's elements with uncompressed,
 * little-endian Pixel Data. Classic native little-endian images take the fast walk
 * (pixels-native.ts); for everything else dcmjs-codecs (WebAssembly, the same codecs as the transcoder) does the
 * decompression and byte swapping; Deflated Explicit VR Little Endian is inflated here first, as
 * the transcoder does. Meant for worker threads: decoding is CPU-bound.
 */

const { NativeCodecs, Transcoder, log } = dcmjsCodecs;
// dcmjs-codecs and its dcmjs copy log element values (PHI) on stdout.
log.setLevel('silent');
const codecsDcmjs = createRequire(createRequire(import.meta.url).resolve('dcmjs-codecs'))('dcmjs') as typeof import('dcmjs').default;
codecsDcmjs.log.setLevel('silent');
codecsDcmjs.log.getLogger('validation.dcmjs').setLevel('silent');

let ready: Promise<void> | undefined;
function initCodecs(): Promise<void> {
  ready ??= NativeCodecs.initializeAsync({
    webAssemblyModulePathOrUrl: path.join(path.dirname(createRequire(import.meta.url).resolve('dcmjs-codecs')), 'dcmjs-native-codecs.wasm'),
  });
  return ready;
}

async function inflatePart10(bytes: Buffer): Promise<Buffer> {
  const offset = await datasetOffset({ size: bytes.length, bytes: async (pos, n) => bytes.subarray(pos, pos + n) });
  const meta = metaValues(bytes.subarray(0, offset));
  const sopClassUid = meta.get(0x0002);
  const sopInstanceUid = meta.get(0x0003);
  if (!sopClassUid || !sopInstanceUid) throw new PixelDecodeError('the file meta information lacks the SOP Class or Instance UID');
  const dataset = zlib.inflateRawSync(bytes.subarray(offset));
  return Buffer.concat([fileMetaPrefix({ sopClassUid, sopInstanceUid, transferSyntaxUid: TS.ExplicitVRLittleEndian }), dataset]);
}

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
  const input = stored === TS.DeflatedExplicitVRLittleEndian ? await inflatePart10(bytes) : bytes;
  const ab = input.buffer.slice(input.byteOffset, input.byteOffset + input.length) as ArrayBuffer;
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
