import type { VoiFunction, VoiLut } from './value-mapping.js';
import { RadiantError } from '../../errors.js';

/**
 * The decoder of the render pipeline's image preparation. From a parsed, uncompressed data set
 * (dcmjs naturalized elements, as dcmjs-codecs returns them after transcoding to Explicit VR
 * Little Endian, or as native-elements.ts walks them) to one frame's modality values: stored values
 * masked to Bits Stored and sign-extended, then Rescale Slope/Intercept (per frame for Enhanced
 * objects), plus what the display mappings need (photometric, window, VOI LUT, pixel aspect).
 */

export class PixelDecodeError extends RadiantError {
  override readonly name = 'PixelDecodeError';
  constructor(message: string) {
    super('unparseable', message);
  }
}

export interface FrameWindow {
  center: number;
  width: number;
  fn: VoiFunction;
}

export interface DecodedFrame {
  width: number;
  height: number;
  /** 1: modality values in `values`; 3: interleaved 8-bit RGB in `rgb` (colour images). */
  samplesPerPixel: 1 | 3;
  values?: Float32Array;
  rgb?: Uint8Array;
  photometric: string;
  window?: FrameWindow;
  voiLut?: VoiLut;
  /** Physical width / height of one pixel (1 when unknown or square). */
  pixelAspect: number;
}

type Elements = Record<string, unknown>;

function items(v: unknown): Elements[] {
  if (Array.isArray(v)) return v.filter((x): x is Elements => typeof x === 'object' && x !== null);
  return typeof v === 'object' && v !== null ? [v as Elements] : [];
}

function numbers(v: unknown): number[] {
  const list = Array.isArray(v) ? v : v === undefined || v === null || v === '' ? [] : [v];
  const out: number[] = [];
  for (const x of list) {
    const n = typeof x === 'number' ? x : typeof x === 'string' ? Number(x.trim()) : NaN;
    if (Number.isFinite(n)) out.push(n);
  }
  return out;
}

function first(v: unknown): number | undefined {
  return numbers(v)[0];
}

function text(v: unknown): string | undefined {
  const x = Array.isArray(v) ? v[0] : v;
  return typeof x === 'string' ? x.trim().toUpperCase() : undefined;
}

/**
 * An attribute of a frame: the Per-Frame Functional Groups item, then the Shared one (PS3.3
 * C.7.6.16), then the top level (classic objects). `macro` is the functional group sequence.
 */
function frameAttr(el: Elements, frameIndex: number, macro: string, name: string): unknown {
  const perFrame = items(el.PerFrameFunctionalGroupsSequence)[frameIndex];
  for (const group of [perFrame, items(el.SharedFunctionalGroupsSequence)[0]]) {
    const item = group ? items(group[macro])[0] : undefined;
    if (item && item[name] !== undefined) return item[name];
  }
  return el[name];
}

function pixelBytes(el: Elements): Uint8Array {
  const pd = el.PixelData;
  const parts = Array.isArray(pd) ? pd : [pd];
  const buffers = parts.filter((p): p is ArrayBuffer | ArrayBufferView => p instanceof ArrayBuffer || ArrayBuffer.isView(p));
  if (buffers.length === 0) throw new PixelDecodeError('the instance has no Pixel Data (7FE0,0010)');
  const views = buffers.map((b) => (b instanceof ArrayBuffer ? new Uint8Array(b) : new Uint8Array(b.buffer, b.byteOffset, b.byteLength)));
  if (views.length === 1) return views[0]!;
  const all = new Uint8Array(views.reduce((n, v) => n + v.length, 0));
  let at = 0;
  for (const v of views) {
    all.set(v, at);
    at += v.length;
  }
  return all;
}

function voiFunction(v: unknown): VoiFunction {
  const f = text(v);
  return f === 'SIGMOID' || f === 'LINEAR_EXACT' ? f : 'LINEAR';
}

function voiLutOf(el: Elements): VoiLut | undefined {
  const item = items(el.VOILUTSequence)[0];
  if (!item) return undefined;
  const desc = numbers(item.LUTDescriptor);
  if (desc.length < 3) return undefined;
  // PS3.3 C.11.2.1.1: 0 entries means 65536; the first mapped value is signed when the pixels are.
  const n = desc[0] === 0 ? 65536 : desc[0]!;
  let firstMapped = desc[1]!;
  if (first(el.PixelRepresentation) === 1 && firstMapped > 32767) firstMapped -= 65536;
  const raw = item.LUTData;
  let data: Uint16Array;
  if (raw instanceof ArrayBuffer) data = new Uint16Array(raw.slice(0, n * 2));
  else if (Array.isArray(raw) && raw[0] instanceof ArrayBuffer) data = new Uint16Array((raw[0] as ArrayBuffer).slice(0, n * 2));
  else data = Uint16Array.from(numbers(raw).slice(0, n));
  return data.length > 0 ? { firstMapped, bits: desc[2]!, data } : undefined;
}

function pixelAspect(el: Elements, frameIndex: number): number {
  // PixelSpacing / ImagerPixelSpacing are [row spacing (vertical), column spacing (horizontal)].
  const spacing = numbers(frameAttr(el, frameIndex, 'PixelMeasuresSequence', 'PixelSpacing'));
  const imager = numbers(el.ImagerPixelSpacing);
  const ratio = numbers(el.PixelAspectRatio);
  const s = spacing.length === 2 ? spacing : imager.length === 2 ? imager : undefined;
  if (s && s[0]! > 0 && s[1]! > 0) return s[1]! / s[0]!;
  if (ratio.length === 2 && ratio[0]! > 0 && ratio[1]! > 0) return ratio[1]! / ratio[0]!;
  return 1;
}

/**
 * One frame (0-based) of an uncompressed data set. `into`, when given and large enough, receives
 * the modality values (a caller's reusable buffer); otherwise a new array is allocated.
 */
export function decodeFrame(el: Elements, frameIndex: number, into?: Float32Array): DecodedFrame {
  const width = first(el.Columns) ?? 0;
  const height = first(el.Rows) ?? 0;
  if (!(width > 0 && height > 0)) throw new PixelDecodeError('the instance has no image (Rows/Columns missing)');
  const frames = Math.max(1, first(el.NumberOfFrames) ?? 1);
  if (frameIndex < 0 || frameIndex >= frames)
    throw new PixelDecodeError(`frame ${frameIndex + 1} does not exist: the instance has ${frames} frame(s)`);
  const spp = first(el.SamplesPerPixel) ?? 1;
  const bitsAllocated = first(el.BitsAllocated) ?? 16;
  const bitsStored = first(el.BitsStored) ?? bitsAllocated;
  const signed = first(el.PixelRepresentation) === 1;
  const photometric = text(el.PhotometricInterpretation) ?? 'MONOCHROME2';
  const bytes = pixelBytes(el);
  const n = width * height;
  const aspect = pixelAspect(el, frameIndex);

  if (spp === 3) {
    if (bitsAllocated !== 8) throw new PixelDecodeError(`colour pixel data with ${bitsAllocated} bits allocated is not supported`);
    const start = frameIndex * n * 3;
    if (start + n * 3 > bytes.length) throw new PixelDecodeError('the pixel data is shorter than its frames');
    const src = bytes.subarray(start, start + n * 3);
    const planar = first(el.PlanarConfiguration) === 1;
    const rgb = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) {
      const a = planar ? src[i]! : src[3 * i]!;
      const b = planar ? src[n + i]! : src[3 * i + 1]!;
      const c = planar ? src[2 * n + i]! : src[3 * i + 2]!;
      if (photometric.startsWith('YBR_FULL')) {
        // PS3.3 C.7.6.3.1.2 (YBR_FULL to RGB).
        rgb[3 * i] = clamp8(a + 1.402 * (c - 128));
        rgb[3 * i + 1] = clamp8(a - 0.344136 * (b - 128) - 0.714136 * (c - 128));
        rgb[3 * i + 2] = clamp8(a + 1.772 * (b - 128));
      } else {
        rgb[3 * i] = a;
        rgb[3 * i + 1] = b;
        rgb[3 * i + 2] = c;
      }
    }
    return { width, height, samplesPerPixel: 3, rgb, photometric: 'RGB', pixelAspect: aspect };
  }
  if (spp !== 1) throw new PixelDecodeError(`${spp} samples per pixel are not supported`);
  if (photometric !== 'MONOCHROME1' && photometric !== 'MONOCHROME2')
    throw new PixelDecodeError(`photometric interpretation ${photometric} is not supported`);
  if (bitsAllocated !== 8 && bitsAllocated !== 16 && bitsAllocated !== 32)
    throw new PixelDecodeError(`${bitsAllocated} bits allocated are not supported`);

  const bpp = bitsAllocated / 8;
  const start = frameIndex * n * bpp;
  if (start + n * bpp > bytes.length) throw new PixelDecodeError('the pixel data is shorter than its frames');
  const stored = storedArray(bytes, start, n, bpp);
  const slope = first(frameAttr(el, frameIndex, 'PixelValueTransformationSequence', 'RescaleSlope')) ?? 1;
  const intercept = first(frameAttr(el, frameIndex, 'PixelValueTransformationSequence', 'RescaleIntercept')) ?? 0;
  const values = into && into.length >= n ? into.subarray(0, n) : new Float32Array(n);
  // Stored bits are the low BitsStored bits (HighBit = BitsStored - 1 in every current IOD); the
  // rest may hold overlays or garbage, so mask, then sign-extend for signed data.
  const shift = 32 - bitsStored;
  const mask = bitsStored >= 32 ? 0xffffffff : 2 ** bitsStored - 1;
  for (let i = 0; i < n; i++) {
    const raw = stored[i]!;
    values[i] = (signed ? (raw << shift) >> shift : bitsStored >= 32 ? raw : raw & mask) * slope + intercept;
  }

  const centers = numbers(frameAttr(el, frameIndex, 'FrameVOILUTSequence', 'WindowCenter'));
  const widths = numbers(frameAttr(el, frameIndex, 'FrameVOILUTSequence', 'WindowWidth'));
  const fn = voiFunction(frameAttr(el, frameIndex, 'FrameVOILUTSequence', 'VOILUTFunction'));
  const window = centers.length > 0 && widths.length > 0 && widths[0]! >= 1 ? { center: centers[0]!, width: widths[0]!, fn } : undefined;
  const voiLut = voiLutOf(el);
  return {
    width,
    height,
    samplesPerPixel: 1,
    values,
    photometric,
    ...(window ? { window } : {}),
    ...(voiLut ? { voiLut } : {}),
    pixelAspect: aspect,
  };
}

/** The frame's stored words as a typed array (little endian host: Node's platforms all are). */
function storedArray(bytes: Uint8Array, start: number, n: number, bpp: number): Uint8Array | Uint16Array | Uint32Array {
  if (bpp === 1) return bytes.subarray(start, start + n);
  const off = bytes.byteOffset + start;
  // Typed arrays need aligned offsets; an odd-offset frame is copied once.
  const aligned = off % bpp === 0 ? bytes : bytes.slice(start, start + n * bpp);
  const base = off % bpp === 0 ? off : aligned.byteOffset;
  return bpp === 2 ? new Uint16Array(aligned.buffer, base, n) : new Uint32Array(aligned.buffer, base, n);
}

function clamp8(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
}
