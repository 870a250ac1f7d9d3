import { createRequire } from 'node:module';
import path from 'node:path';
import zlib from 'node:zlib';
import dcmjsCodecs from 'dcmjs-codecs';
import { RadiantError } from '../errors.js';
import { fileMetaPrefix } from './part10.js';
import { datasetOffset, metaValues } from './structure.js';
import { TS } from './transfer-syntax.js';

/**
 * dcmjs-codecs (WebAssembly codecs) as the node's workers use it: the transcoder's and image
 * preparation's. One place for its silencing and its start-up, and for inflating Deflated
 * Explicit VR Little Endian, which it does not do.
 */

export const { Transcoder } = dcmjsCodecs;
const { NativeCodecs, log } = dcmjsCodecs;
// dcmjs-codecs and the dcmjs copy it parses with log element values (PHI) on stdout; the node's
// own log says what failed.
log.setLevel('silent');
const codecsDcmjs = createRequire(createRequire(import.meta.url).resolve('dcmjs-codecs'))('dcmjs') as typeof import('dcmjs').default;
codecsDcmjs.log.setLevel('silent');
codecsDcmjs.log.getLogger('validation.dcmjs').setLevel('silent');

let ready: Promise<void> | undefined;

/** Loads the WebAssembly codecs once per thread. */
export function initCodecs(): Promise<void> {
  ready ??= NativeCodecs.initializeAsync({
    webAssemblyModulePathOrUrl: path.join(path.dirname(createRequire(import.meta.url).resolve('dcmjs-codecs')), 'dcmjs-native-codecs.wasm'),
  });
  return ready;
}

export class InflateError extends RadiantError {
  constructor(message: string) {
    super('unparseable', message);
    this.name = 'InflateError';
  }
}

/** Deflated Explicit VR Little Endian → Explicit VR Little Endian: inflate the data set, new meta. */
export async function inflatePart10(bytes: Buffer): Promise<Buffer> {
  const offset = await datasetOffset({ size: bytes.length, bytes: async (pos, n) => bytes.subarray(pos, pos + n) });
  const meta = metaValues(bytes.subarray(0, offset));
  const sopClassUid = meta.get(0x0002);
  const sopInstanceUid = meta.get(0x0003);
  if (!sopClassUid || !sopInstanceUid) throw new InflateError('the file meta information lacks the SOP Class or Instance UID');
  const dataset = zlib.inflateRawSync(bytes.subarray(offset));
  return Buffer.concat([fileMetaPrefix({ sopClassUid, sopInstanceUid, transferSyntaxUid: TS.ExplicitVRLittleEndian }), dataset]);
}
