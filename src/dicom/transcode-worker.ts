import { parentPort } from 'node:worker_threads';
import { serveWorker } from '../workers/worker-pool.js';
import { inflatePart10, initCodecs as init, Transcoder } from './native-codecs.js';
import { TS } from './transfer-syntax.js';

export interface TranscodeRequest {
  bytes: ArrayBuffer;
  from: string;
  to: string;
}

export type TranscodeReply = { ok: true; bytes: ArrayBuffer } | { ok: false; error: string; recycle: boolean };

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
