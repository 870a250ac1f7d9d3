import { parentPort } from 'node:worker_threads';
import { serveWorker } from '../workers/worker-pool.js';
import { decodeFrame, type DecodedFrame } from './pixels.js';
import { decodeElements } from './pixels-source.js';
import { ctThreeWindow, greyLinear, greyVoiLut, greyWindow, invert, minMax } from './windowing.js';

/**
 * Decode worker for image preparation: one instance's requested frames, decoded and, where the
 * mapping depends on the slice alone (CT windows, radiograph VOI), mapped to 8 bits here so the
 * main thread only fits and encodes. MR needs per-volume statistics: its modality values go back.
 */

/** 'ct': three HU windows → RGB; 'voi': the instance's own VOI (or min–max) → grey; 'values': Float32 modality values. */
export type WorkerMapping = 'ct' | 'voi' | 'values';

export interface PixelsRequest {
  bytes: ArrayBuffer;
  /** 1-based. */
  frames: number[];
  mapping: WorkerMapping;
}

export type FrameResult =
  | {
      ok: true;
      frameNumber: number;
      width: number;
      height: number;
      /** 'rgb8': 3 channels of 8 bits; 'grey8': 1 channel; 'f32': Float32 modality values, 1 channel. */
      format: 'rgb8' | 'grey8' | 'f32';
      pixels: ArrayBuffer;
      /** How the values were mapped (e.g. 'ct-3window', 'voi-window', 'minmax'). */
      mapping: string;
      pixelAspect: number;
      monochrome1: boolean;
    }
  | { ok: false; frameNumber: number; error: string };

export type PixelsReply = { ok: true; frames: FrameResult[]; decodeMs: number; mapMs: number } | { ok: false; error: string; recycle: boolean };

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function mapFrame(f: DecodedFrame, mapping: WorkerMapping): { format: 'rgb8' | 'grey8' | 'f32'; data: Uint8Array | Float32Array; mapping: string } {
  if (f.samplesPerPixel === 3) return { format: 'rgb8', data: f.rgb!, mapping: 'rgb' };
  const values = f.values!;
  if (mapping === 'values') return { format: 'f32', data: values, mapping: 'values' };
  if (mapping === 'ct') return { format: 'rgb8', data: ctThreeWindow(values), mapping: 'ct-3window' };
  let grey: Uint8Array;
  let how: string;
  if (f.window) {
    grey = greyWindow(values, f.window.center, f.window.width, f.window.fn);
    how = 'voi-window';
  } else if (f.voiLut) {
    grey = greyVoiLut(values, f.voiLut);
    how = 'voi-lut';
  } else {
    grey = greyLinear(values, minMax(values));
    how = 'minmax';
  }
  // MONOCHROME1: the minimum is white; inverted so that air (least attenuation) is black.
  if (f.photometric === 'MONOCHROME1') {
    invert(grey);
    how += '-inverted';
  }
  return { format: 'grey8', data: grey, mapping: how };
}

function ownBuffer(a: Uint8Array | Float32Array): ArrayBuffer {
  return a.byteOffset === 0 && a.byteLength === a.buffer.byteLength ? (a.buffer as ArrayBuffer) : (a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength) as ArrayBuffer);
}

serveWorker<PixelsRequest, PixelsReply>(
  parentPort!,
  async (req) => {
    const t0 = performance.now();
    const { elements } = await decodeElements(Buffer.from(req.bytes));
    let decodeMs = performance.now() - t0;
    let mapMs = 0;
    const frames: FrameResult[] = [];
    const transfer: ArrayBuffer[] = [];
    for (const frameNumber of req.frames) {
      try {
        const t1 = performance.now();
        const f = decodeFrame(elements, frameNumber - 1);
        const t2 = performance.now();
        const m = mapFrame(f, req.mapping);
        mapMs += performance.now() - t2;
        decodeMs += t2 - t1;
        const pixels = ownBuffer(m.data);
        if (!transfer.includes(pixels)) transfer.push(pixels);
        frames.push({ ok: true, frameNumber, width: f.width, height: f.height, format: m.format, pixels, mapping: m.mapping, pixelAspect: f.pixelAspect, monochrome1: f.photometric === 'MONOCHROME1' });
      } catch (err) {
        frames.push({ ok: false, frameNumber, error: errorText(err) });
      }
    }
    return { result: { ok: true, frames, decodeMs, mapMs }, transfer };
  },
  // A WebAssembly trap can leave the codec's memory in any state: start afresh.
  (err) => ({ ok: false, error: errorText(err), recycle: err instanceof Error && err.name === 'RuntimeError' }),
);
