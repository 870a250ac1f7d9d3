import { parentPort } from 'node:worker_threads';
import { serveWorker } from '../workers/worker-pool.js';
import { decodeFrame, type DecodedFrame } from './pixels.js';
import { padInto, placement, resizeBilinear, resizeThroughLut } from './pixels-fit.js';
import { decodeElements } from './pixels-source.js';
import { ctThreeWindow, ctWindowLut, greyLinear, greyToRgb, greyVoiLut, greyWindow, invert, minMax } from './windowing.js';

/**
 * Decode worker for image preparation: one instance's requested frames, decoded and, where the
 * mapping depends on the slice alone (CT windows, radiograph VOI), enlarged into the square box
 * and mapped to 8 bits here, so the main thread only encodes PNG. MR needs per-volume statistics:
 * its modality values go back. Frames larger than the box go back mapped at their own size for
 * sharp to reduce.
 */

/** 'ct': three HU windows → RGB; 'voi': the instance's own VOI (or min–max) → grey; 'values': Float32 modality values. */
export type WorkerMapping = 'ct' | 'voi' | 'values';

export interface PixelsRequest {
  bytes: ArrayBuffer;
  /** 1-based. */
  frames: number[];
  mapping: WorkerMapping;
  /** Side of the square output: frames that enlarge into it come back fitted ('rgb8', size × size). */
  size: number;
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
      /** Already placed on the black size × size canvas: only PNG encoding is left. */
      fitted: boolean;
    }
  | { ok: false; frameNumber: number; error: string };

export type PixelsReply =
  | { ok: true; frames: FrameResult[]; decodeMs: number; mapMs: number }
  | { ok: false; error: string; recycle: boolean };

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

interface Mapped {
  format: 'rgb8' | 'grey8' | 'f32';
  data: Uint8Array | Float32Array;
  mapping: string;
  width: number;
  height: number;
  fitted: boolean;
}

/** The instance's own VOI (window, else VOI LUT, else min–max) → grey; MONOCHROME1 inverted. */
function voiGrey(f: DecodedFrame, values: Float32Array): { grey: Uint8Array; how: string } {
  let grey: Uint8Array;
  let how: string;
  if (f.window) {
    grey = greyWindow(values, f.window.center, f.window.width, f.window.fn);
    how = 'voi-window';
  } else if (f.voiLut) {
    grey = greyVoiLut(values, f.voiLut);
    how = 'voi-lut';
  } else {
    // Over the original pixels, not the resampled ones (which can only be within their range).
    grey = greyLinear(values, minMax(f.values!));
    how = 'minmax';
  }
  // MONOCHROME1: the minimum is white; inverted so that air (least attenuation) is black.
  if (f.photometric === 'MONOCHROME1') {
    invert(grey);
    how += '-inverted';
  }
  return { grey, how };
}

function mapFrame(f: DecodedFrame, mapping: WorkerMapping, size: number): Mapped {
  const native = { width: f.width, height: f.height, fitted: false };
  if (f.samplesPerPixel === 3) return { format: 'rgb8', data: f.rgb!, mapping: 'rgb', ...native };
  const values = f.values!;
  if (mapping === 'values') return { format: 'f32', data: values, mapping: 'values', ...native };
  const p = placement(f.width, f.height, f.pixelAspect, size);
  if (p.width >= f.width && p.height >= f.height) {
    if (mapping === 'ct') {
      const rgb = resizeThroughLut(values, f.width, f.height, p.width, p.height, ctWindowLut());
      return { format: 'rgb8', data: padInto(rgb, p, 3, size), mapping: 'ct-3window', width: size, height: size, fitted: true };
    }
    const { grey, how } = voiGrey(f, resizeBilinear(values, f.width, f.height, p.width, p.height));
    return { format: 'rgb8', data: padInto(greyToRgb(grey), p, 3, size), mapping: how, width: size, height: size, fitted: true };
  }
  if (mapping === 'ct') return { format: 'rgb8', data: ctThreeWindow(values), mapping: 'ct-3window', ...native };
  const { grey, how } = voiGrey(f, values);
  return { format: 'grey8', data: grey, mapping: how, ...native };
}

let valuesScratch = new Float32Array(0);

/** A reusable buffer for values that never leave the worker (mapped here, not sent back). */
function scratchFor(el: Record<string, unknown>, mapping: WorkerMapping): Float32Array | undefined {
  if (mapping === 'values') return undefined;
  const n = (Number(el.Rows) || 0) * (Number(el.Columns) || 0);
  if (valuesScratch.length < n) valuesScratch = new Float32Array(n);
  return valuesScratch;
}

function ownBuffer(a: Uint8Array | Float32Array): ArrayBuffer {
  return a.byteOffset === 0 && a.byteLength === a.buffer.byteLength
    ? (a.buffer as ArrayBuffer)
    : (a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength) as ArrayBuffer);
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
        const f = decodeFrame(elements, frameNumber - 1, scratchFor(elements, req.mapping));
        const t2 = performance.now();
        const m = mapFrame(f, req.mapping, req.size);
        mapMs += performance.now() - t2;
        decodeMs += t2 - t1;
        const pixels = ownBuffer(m.data);
        if (!transfer.includes(pixels)) transfer.push(pixels);
        frames.push({
          ok: true,
          frameNumber,
          width: m.width,
          height: m.height,
          format: m.format,
          pixels,
          mapping: m.mapping,
          pixelAspect: f.pixelAspect,
          monochrome1: f.photometric === 'MONOCHROME1',
          fitted: m.fitted,
        });
      } catch (err) {
        frames.push({ ok: false, frameNumber, error: errorText(err) });
      }
    }
    return { result: { ok: true, frames, decodeMs, mapMs }, transfer };
  },
  // A WebAssembly trap can leave the codec's memory in any state: start afresh.
  (err) => ({ ok: false, error: errorText(err), recycle: err instanceof Error && err.name === 'RuntimeError' }),
);
