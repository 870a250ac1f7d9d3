/**
 * Value mappings from modality values (HU for CT, signal for MR, stored-after-rescale for
 * radiographs) to 8-bit display values: windows (PS3.3 VOI LUT functions), VOI LUT, min–max,
 * robust bounds over a volume, several windows as colour channels, MONOCHROME1 inversion. Pure
 * functions over typed arrays: they run inside the render workers for per-frame mappings and on
 * the main thread for per-volume ones (MR in image preparation).
 */

/** A linear window as low/high bounds: values ≤ low → 0, ≥ high → 255. */
export interface Bounds {
  low: number;
  high: number;
}

/** Three windows, one per colour channel (R, G, B). */
export type ChannelWindows = readonly [Bounds, Bounds, Bounds];

/** (v - low) / (high - low) · 255, clipped and rounded (the scalar form of the array mappings). */
export function linear8(v: number, b: Bounds): number {
  const t = ((v - b.low) / (b.high - b.low)) * 255;
  return t <= 0 ? 0 : t >= 255 ? 255 : Math.round(t);
}

/** Interleaved RGB, one window per channel. */
export function threeWindows(
  values: Float32Array,
  windows: ChannelWindows,
  out: Uint8Array = new Uint8Array(values.length * 3),
): Uint8Array {
  const [r, g, b] = windows;
  const sr = 255 / (r.high - r.low);
  const sg = 255 / (g.high - g.low);
  const sb = 255 / (b.high - b.low);
  // Hand-inlined (this loop runs over every pixel of every slice): clip, then round half up.
  for (let i = 0, j = 0; i < values.length; i++, j += 3) {
    const v = values[i]!;
    let x = (v - r.low) * sr;
    out[j] = x <= 0 ? 0 : x >= 255 ? 255 : (x + 0.5) | 0;
    x = (v - g.low) * sg;
    out[j + 1] = x <= 0 ? 0 : x >= 255 ? 255 : (x + 0.5) | 0;
    x = (v - b.low) * sb;
    out[j + 2] = x <= 0 ? 0 : x >= 255 ? 255 : (x + 0.5) | 0;
  }
  return out;
}

/**
 * A value → packed RGB lookup: entry k holds R | G << 8 | B << 16 for the value
 * (k - offset + 0.5) / scale, so that index = value · scale + offset (truncated, clipped).
 */
export interface PackedLut {
  table: Uint32Array;
  scale: number;
  offset: number;
}

/** Lookups built so far, by their windows (a process uses one or two sets). */
const luts = new Map<string, PackedLut>();

/**
 * Three windows as a lookup over −4096…+4096 (HU for CT) in quarter steps (at most 0.4 of a level
 * off in an 80-wide window); values beyond saturate windows within that range anyway.
 */
export function channelWindowsLut(windows: ChannelWindows): PackedLut {
  const key = JSON.stringify(windows);
  const known = luts.get(key);
  if (known) return known;
  const steps = 4;
  const minHu = -4096;
  const table = new Uint32Array(8192 * steps + 1);
  const [r, g, b] = windows;
  for (let k = 0; k < table.length; k++) {
    const hu = minHu + k / steps;
    table[k] = linear8(hu, r) | (linear8(hu, g) << 8) | (linear8(hu, b) << 16);
  }
  const lut = { table, scale: steps, offset: -minHu * steps + 0.5 };
  luts.set(key, lut);
  return lut;
}

/** Grey → interleaved RGB (R = G = B). */
export function greyToRgb(grey: Uint8Array): Uint8Array {
  const out = new Uint8Array(grey.length * 3);
  for (let i = 0, j = 0; i < grey.length; i++, j += 3) out[j] = out[j + 1] = out[j + 2] = grey[i]!;
  return out;
}

/** One channel through one linear window. */
export function greyLinear(values: Float32Array, b: Bounds, out: Uint8Array = new Uint8Array(values.length)): Uint8Array {
  // A flat image (low = high) maps to black rather than dividing by zero.
  if (!(b.high > b.low)) return out.fill(0);
  const s = 255 / (b.high - b.low);
  for (let i = 0; i < values.length; i++) {
    const x = (values[i]! - b.low) * s;
    out[i] = x <= 0 ? 0 : x >= 255 ? 255 : (x + 0.5) | 0;
  }
  return out;
}

export type VoiFunction = 'LINEAR' | 'LINEAR_EXACT' | 'SIGMOID';

/**
 * A Window Center/Width pair through VOI LUT Function (PS3.3 C.11.2.1.2 / C.11.2.1.3.2) to 0..255.
 * LINEAR keeps the standard's half-pixel offsets ((c - 0.5), (w - 1)); width < 1 is invalid for
 * LINEAR (the standard requires ≥ 1), so callers fall back to min–max then.
 */
export function greyWindow(
  values: Float32Array,
  center: number,
  width: number,
  fn: VoiFunction,
  out: Uint8Array = new Uint8Array(values.length),
): Uint8Array {
  if (fn === 'SIGMOID') {
    for (let i = 0; i < values.length; i++) {
      const y = 255 / (1 + Math.exp((-4 * (values[i]! - center)) / width));
      out[i] = Math.round(y);
    }
    return out;
  }
  // LINEAR with width 1 is a threshold at c - 0.5 (PS3.3 C.11.2.1.2.1); the formula below would divide by 0.
  if (fn === 'LINEAR' && width <= 1) {
    for (let i = 0; i < values.length; i++) out[i] = values[i]! <= center - 0.5 ? 0 : 255;
    return out;
  }
  const bounds: Bounds =
    fn === 'LINEAR_EXACT'
      ? { low: center - width / 2, high: center + width / 2 }
      : { low: center - 0.5 - (width - 1) / 2, high: center - 0.5 + (width - 1) / 2 };
  return greyLinear(values, bounds, out);
}

/** A VOI LUT (PS3.3 C.11.2.1.1): first mapped input value, entries, bits per entry. */
export interface VoiLut {
  firstMapped: number;
  bits: number;
  data: Uint16Array;
}

export function greyVoiLut(values: Float32Array, lut: VoiLut, out: Uint8Array = new Uint8Array(values.length)): Uint8Array {
  const n = lut.data.length;
  // Entries are scaled by the LUT's own range, not by the declared bit depth: several
  // manufacturers declare 16 bits and fill 12.
  let max = 0;
  for (let i = 0; i < n; i++) if (lut.data[i]! > max) max = lut.data[i]!;
  const scale = max > 0 ? 255 / max : 0;
  for (let i = 0; i < values.length; i++) {
    let k = Math.round(values[i]!) - lut.firstMapped;
    k = k < 0 ? 0 : k >= n ? n - 1 : k;
    out[i] = Math.round(lut.data[k]! * scale);
  }
  return out;
}

/**
 * The window a display uses when the instance names none: the declared Smallest/Largest Image
 * Pixel Value when they make a range, else the frame's own range without the Pixel Padding Value
 * (PS3.3 C.7.5.1.1.2: padding pixels are not part of the image), as whole modality values.
 */
export function pixelRangeWindow(values: Float32Array, declared?: Bounds, padding?: number): { center: number; width: number } {
  if (declared && declared.low < declared.high) {
    const low = Math.trunc(declared.low);
    const high = Math.trunc(declared.high);
    return { center: (low + high) / 2, width: Math.max(1, high - low) };
  }
  let low = Infinity;
  let high = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v === padding) continue;
    if (v < low) low = v;
    if (v > high) high = v;
  }
  if (low > high) low = high = 0;
  low = Math.trunc(low);
  high = Math.trunc(high);
  return { center: (low + high) / 2, width: Math.max(1, high - low) };
}

export function minMax(values: Float32Array): Bounds {
  let low = Infinity;
  let high = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v < low) low = v;
    if (v > high) high = v;
  }
  return values.length ? { low, high } : { low: 0, high: 0 };
}

export function invert(grey: Uint8Array): Uint8Array {
  for (let i = 0; i < grey.length; i++) grey[i] = 255 - grey[i]!;
  return grey;
}

/**
 * Robust bounds over several slices: the lowP/highP quantiles of a strided sample (at most
 * `perSlice` values from each), enough for percentiles without sorting every voxel.
 */
export function robustBounds(slices: readonly Float32Array[], lowP = 0.005, highP = 0.995, perSlice = 16384): Bounds {
  const parts: Float32Array[] = [];
  let total = 0;
  for (const s of slices) {
    const stride = Math.max(1, Math.floor(s.length / perSlice));
    const part = new Float32Array(Math.ceil(s.length / stride));
    for (let i = 0, j = 0; i < s.length; i += stride, j++) part[j] = s[i]!;
    parts.push(part);
    total += part.length;
  }
  if (total === 0) return { low: 0, high: 0 };
  const all = new Float32Array(total);
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  all.sort();
  const pick = (p: number): number => all[Math.min(total - 1, Math.max(0, Math.round(p * (total - 1))))]!;
  return { low: pick(lowP), high: pick(highP) };
}
