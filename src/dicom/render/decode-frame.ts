import type { Bounds, VoiFunction, VoiLut } from './value-mapping.js';
import { RadiantError } from '../../errors.js';
import { elementText } from '../frame-codec.js';

/**
 * From a parsed, uncompressed data set (dcmjs naturalized elements, as dcmjs-codecs returns them
 * after transcoding to Explicit VR Little Endian, or as native-elements.ts walks them) to one
 * frame's modality values: stored values masked to Bits Stored and sign-extended, then Rescale
 * Slope/Intercept (per frame for Enhanced objects), plus what the value mappings need
 * (photometric, window, VOI LUT, declared pixel range, padding, pixel aspect). Colour frames
 * (RGB, YBR_FULL, YBR_FULL_422, PALETTE COLOR) come out as 8-bit RGB.
 */

export class PixelDecodeError extends RadiantError {
  override readonly name = 'PixelDecodeError';
  constructor(
    message: string,
    /** A codec's WebAssembly trap behind it: the thread's codec memory can be in any state. */
    readonly trap?: Error,
  ) {
    super('unparseable', message);
  }
}

/**
 * One frame's pixel data already taken out of its instance (a codec's output, frame-decoder.ts):
 * native little-endian samples of that frame alone, in the layout the codec gave them.
 */
export interface FramePixels {
  bytes: Uint8Array;
  /** The codec's output photometric interpretation (e.g. RGB after a JPEG decoder's YBR conversion). */
  photometric: string;
  /** 0 interleaved, 1 planar, as the codec returned the samples. */
  planarConfiguration: number;
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
  /** Smallest/Largest Image Pixel Value, as modality values (display's pixel range). */
  declaredRange?: Bounds;
  /** Pixel Padding Value as a modality value: left out of the pixel range. */
  padding?: number;
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
  const f = elementText(v);
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
export function decodeFrame(el: Elements, frameIndex: number, into?: Float32Array, own?: FramePixels): DecodedFrame {
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
  const photometric = own ? own.photometric.trim().toUpperCase() : elementText(el.PhotometricInterpretation) || 'MONOCHROME2';
  const n = width * height;
  const aspect = pixelAspect(el, frameIndex);
  if (!own && el.PixelData === undefined && el.FloatPixelData !== undefined) {
    return floatFrame(el, frameIndex, width, height, photometric, aspect, into);
  }
  const bytes = own ? own.bytes : pixelBytes(el);
  // A frame of its own starts at byte 0; otherwise frames follow each other in Pixel Data.
  const at = own ? 0 : frameIndex;

  if (spp === 3) return colourFrame(el, bytes, at, own?.planarConfiguration, width, height, bitsAllocated, bitsStored, photometric, aspect);
  if (photometric === 'PALETTE COLOR') {
    if (bitsAllocated !== 8 && bitsAllocated !== 16)
      throw new PixelDecodeError(`palette colour pixel data with ${bitsAllocated} bits allocated is not supported`);
    const bpp = bitsAllocated / 8;
    const start = at * n * bpp;
    if (start + n * bpp > bytes.length) throw new PixelDecodeError('the pixel data is shorter than its frames');
    const rgb = paletteToRgb(el, storedArray(bytes, start, n, bpp));
    return { width, height, samplesPerPixel: 3, rgb, photometric: 'RGB', pixelAspect: aspect };
  }
  if (spp !== 1) throw new PixelDecodeError(`${spp} samples per pixel are not supported`);
  if (photometric !== 'MONOCHROME1' && photometric !== 'MONOCHROME2')
    throw new PixelDecodeError(`photometric interpretation ${photometric} is not supported`);
  if (bitsAllocated !== 1 && bitsAllocated !== 8 && bitsAllocated !== 16 && bitsAllocated !== 32)
    throw new PixelDecodeError(`${bitsAllocated} bits allocated are not supported`);

  let stored: Uint8Array | Uint16Array | Uint32Array;
  if (bitsAllocated === 1) {
    // Packed bits, frames included, no padding between frames (PS3.5 8.1.1).
    const first = at * n;
    if (Math.ceil((first + n) / 8) > bytes.length) throw new PixelDecodeError('the pixel data is shorter than its frames');
    stored = new Uint8Array(n);
    for (let i = 0; i < n; i++) stored[i] = (bytes[(first + i) >> 3]! >> ((first + i) & 7)) & 1;
  } else {
    const bpp = bitsAllocated / 8;
    const start = at * n * bpp;
    if (start + n * bpp > bytes.length) throw new PixelDecodeError('the pixel data is shorter than its frames');
    stored = storedArray(bytes, start, n, bpp);
  }
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

  // Stored values as the pixels are (masked, sign-extended: a padding value read as US from a
  // signed image is the same word), then through the Modality LUT.
  const storedValue = (v: number | undefined): number | undefined =>
    v === undefined ? undefined : (signed ? (v << shift) >> shift : bitsStored >= 32 ? v : v & mask) * slope + intercept;
  // 1-bit pixels (segmentations, masks) range over 0 and 1 whatever a frame holds: an empty frame is black.
  const smallest = storedValue(first(el.SmallestImagePixelValue) ?? (bitsStored === 1 ? 0 : undefined));
  const largest = storedValue(first(el.LargestImagePixelValue) ?? (bitsStored === 1 ? 1 : undefined));
  const padding = storedValue(first(el.PixelPaddingValue));
  return {
    width,
    height,
    samplesPerPixel: 1,
    values,
    photometric,
    ...voiOf(el, frameIndex),
    pixelAspect: aspect,
    ...(smallest !== undefined && largest !== undefined ? { declaredRange: { low: smallest, high: largest } } : {}),
    ...(padding !== undefined ? { padding } : {}),
  };
}

/** The frame's window (per-frame functional groups first) and the instance's VOI LUT. */
function voiOf(el: Elements, frameIndex: number): { window?: FrameWindow; voiLut?: VoiLut } {
  const centers = numbers(frameAttr(el, frameIndex, 'FrameVOILUTSequence', 'WindowCenter'));
  const widths = numbers(frameAttr(el, frameIndex, 'FrameVOILUTSequence', 'WindowWidth'));
  const fn = voiFunction(frameAttr(el, frameIndex, 'FrameVOILUTSequence', 'VOILUTFunction'));
  const window = centers.length > 0 && widths.length > 0 && widths[0]! >= 1 ? { center: centers[0]!, width: widths[0]!, fn } : undefined;
  const voiLut = voiLutOf(el);
  return { ...(window ? { window } : {}), ...(voiLut ? { voiLut } : {}) };
}

/** Float Pixel Data (32-bit IEEE, e.g. parametric maps): the values are the frame's values. */
function floatFrame(
  el: Elements,
  frameIndex: number,
  width: number,
  height: number,
  photometric: string,
  aspect: number,
  into?: Float32Array,
): DecodedFrame {
  const n = width * height;
  const parts = Array.isArray(el.FloatPixelData) ? el.FloatPixelData : [el.FloatPixelData];
  const buf = parts.find((p): p is ArrayBuffer | ArrayBufferView => p instanceof ArrayBuffer || ArrayBuffer.isView(p));
  if (!buf) throw new PixelDecodeError('the instance has no Float Pixel Data');
  const bytes = buf instanceof ArrayBuffer ? new Uint8Array(buf) : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  const start = frameIndex * n * 4;
  if (start + n * 4 > bytes.length) throw new PixelDecodeError('the pixel data is shorter than its frames');
  const values = into && into.length >= n ? into.subarray(0, n) : new Float32Array(n);
  values.set(new Float32Array(bytes.slice(start, start + n * 4).buffer));
  const p = photometric === 'MONOCHROME1' ? 'MONOCHROME1' : 'MONOCHROME2';
  return { width, height, samplesPerPixel: 1, values, photometric: p, ...voiOf(el, frameIndex), pixelAspect: aspect };
}

/** RGB, YBR_FULL or YBR_FULL_422 samples (8 or 16 bits) → interleaved 8-bit RGB. */
function colourFrame(
  el: Elements,
  bytes: Uint8Array,
  frameIndex: number,
  planarOverride: number | undefined,
  width: number,
  height: number,
  bitsAllocated: number,
  bitsStored: number,
  photometric: string,
  aspect: number,
): DecodedFrame {
  if (bitsAllocated !== 8 && bitsAllocated !== 16)
    throw new PixelDecodeError(`colour pixel data with ${bitsAllocated} bits allocated is not supported`);
  const n = width * height;
  const bpp = bitsAllocated / 8;
  // Native YBR_FULL_422: two luminance samples share one chrominance pair (Y Y Cb Cr per 2 pixels).
  const sub422 = photometric === 'YBR_FULL_422' && width % 2 === 0;
  const samples = sub422 ? n * 2 : n * 3;
  const start = frameIndex * samples * bpp;
  if (start + samples * bpp > bytes.length) throw new PixelDecodeError('the pixel data is shorter than its frames');
  const words = storedArray(bytes, start, samples, bpp);
  // 16-bit colour keeps its top 8 stored bits.
  const shift = bpp === 2 ? Math.max(0, Math.min(16, bitsStored) - 8) : 0;
  const at = (i: number): number => words[i]! >> shift;
  const planar = (planarOverride ?? first(el.PlanarConfiguration)) === 1 && !sub422;
  const ybr = photometric.startsWith('YBR_FULL');
  const rgb = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    let a: number;
    let b: number;
    let c: number;
    if (sub422) {
      const pair = (i >> 1) * 4;
      a = at(pair + (i & 1));
      b = at(pair + 2);
      c = at(pair + 3);
    } else {
      a = planar ? at(i) : at(3 * i);
      b = planar ? at(n + i) : at(3 * i + 1);
      c = planar ? at(2 * n + i) : at(3 * i + 2);
    }
    if (ybr) {
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

/** One channel of a Palette Color Lookup Table (PS3.3 C.7.6.3.1.5/6): descriptor and 8-bit entries. */
function paletteChannel(el: Elements, colour: 'Red' | 'Green' | 'Blue'): { first: number; table: Uint8Array } {
  const desc = numbers(el[`${colour}PaletteColorLookupTableDescriptor`]);
  if (desc.length < 3) throw new PixelDecodeError(`the ${colour} palette lookup table descriptor is missing`);
  const entries = desc[0] === 0 ? 65536 : desc[0]!;
  const bits = desc[2] === 8 ? 8 : 16;
  const raw = el[`${colour}PaletteColorLookupTableData`];
  const buf = Array.isArray(raw) ? raw[0] : raw;
  const data =
    buf instanceof ArrayBuffer
      ? new Uint8Array(buf)
      : ArrayBuffer.isView(buf)
        ? new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
        : undefined;
  if (!data) throw new PixelDecodeError(`the ${colour} palette lookup table data is missing`);
  const table = new Uint8Array(entries);
  // 16-bit entries keep their high byte; 8-bit entries may still be stored in 16-bit words.
  const wide = bits === 16 || data.length >= entries * 2;
  for (let k = 0; k < entries; k++) table[k] = wide ? (data[2 * k + 1] ?? 0) : (data[k] ?? 0);
  return { first: desc[1]!, table };
}

function paletteToRgb(el: Elements, indices: Uint8Array | Uint16Array | Uint32Array): Uint8Array {
  const channels = (['Red', 'Green', 'Blue'] as const).map((c) => paletteChannel(el, c));
  const rgb = new Uint8Array(indices.length * 3);
  for (let i = 0; i < indices.length; i++) {
    for (let c = 0; c < 3; c++) {
      const { first: lo, table } = channels[c]!;
      const k = indices[i]! - lo;
      rgb[3 * i + c] = table[k <= 0 ? 0 : k >= table.length ? table.length - 1 : k]!;
    }
  }
  return rgb;
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
