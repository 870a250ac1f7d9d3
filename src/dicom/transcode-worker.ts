import { createRequire } from 'node:module';
import path from 'node:path';
import { parentPort } from 'node:worker_threads';
import zlib from 'node:zlib';
import dcmjsCodecs from 'dcmjs-codecs';
import { serveWorker } from '../workers/worker-pool.js';
import { fileMetaPrefix } from './part10.js';
import { datasetOffset, metaValues } from './structure.js';
import { TS } from './uids.js';

export interface TranscodeRequest {
  bytes: ArrayBuffer;
  from: string;
  to: string;
}

export type TranscodeReply = { ok: true; bytes: ArrayBuffer } | { ok: false; error: string; recycle: boolean };

const { NativeCodecs, Transcoder, log } = dcmjsCodecs;
// dcmjs-codecs and the dcmjs copy it parses with warn with element values (PHI) on stdout; the
// node's own log says what failed.
log.setLevel('silent');
const codecsDcmjs = createRequire(createRequire(import.meta.url).resolve('dcmjs-codecs'))('dcmjs') as typeof import('dcmjs').default;
codecsDcmjs.log.setLevel('silent');
codecsDcmjs.log.getLogger('validation.dcmjs').setLevel('silent');

let ready: Promise<void> | undefined;
function init(): Promise<void> {
  ready ??= NativeCodecs.initializeAsync({
    webAssemblyModulePathOrUrl: path.join(path.dirname(createRequire(import.meta.url).resolve('dcmjs-codecs')), 'dcmjs-native-codecs.wasm'),
  });
  return ready;
}

/** Deflated Explicit VR Little Endian → Explicit VR Little Endian: inflate the data set, new meta. */
async function inflatePart10(bytes: Buffer): Promise<Buffer> {
  const offset = await datasetOffset({ size: bytes.length, bytes: async (pos, n) => bytes.subarray(pos, pos + n) });
  const meta = metaValues(bytes.subarray(0, offset));
  const sopClassUid = meta.get(0x0002);
  const sopInstanceUid = meta.get(0x0003);
  if (!sopClassUid || !sopInstanceUid) throw new Error('the file meta information lacks the SOP Class or Instance UID');
  const dataset = zlib.inflateRawSync(bytes.subarray(offset));
  return Buffer.concat([fileMetaPrefix({ sopClassUid, sopInstanceUid, transferSyntaxUid: TS.ExplicitVRLittleEndian }), dataset]);
}

function arrayBufferOf(b: Buffer): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
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
    const t = new Transcoder(arrayBufferOf(input));
    t.transcode(req.to);
    const out = t.getDicomPart10();
    return { result: { ok: true, bytes: out }, transfer: [out] };
  },
  // A WebAssembly trap ("unreachable") can leave the codec's memory in any state: start afresh.
  (err) => ({ ok: false, error: err instanceof Error ? err.message : String(err), recycle: err instanceof Error && err.name === 'RuntimeError' }),
);
