/**
 * Geometry of the square model input, and the bilinear enlargement done in the decode workers.
 *
 * Enlarging (the usual case: a 512² CT or 256² MR into 896²) is done here on the modality values
 * of one channel, before mapping, instead of by libvips on three mapped channels afterwards:
 * measured on the chest CT, a third of the CPU time per slice, and it runs in the workers in
 * parallel. Reductions (large radiographs) still go through sharp, whose reducer low-passes
 * properly; plain bilinear sampling would alias.
 */

export interface Placement {
  /** The scaled content's size inside the box. */
  width: number;
  height: number;
  /** Offsets that centre it. */
  left: number;
  top: number;
}

/** The content's size in a size × size box, physical aspect kept (pixelAspect = pixel width / height). */
export function fittedSize(width: number, height: number, pixelAspect: number, size: number): { width: number; height: number } {
  const physW = width * (pixelAspect > 0 && Number.isFinite(pixelAspect) ? pixelAspect : 1);
  const physH = height;
  const scale = size / Math.max(physW, physH);
  return {
    width: Math.max(1, Math.min(size, Math.round(physW * scale))),
    height: Math.max(1, Math.min(size, Math.round(physH * scale))),
  };
}

export function placement(width: number, height: number, pixelAspect: number, size: number): Placement {
  const inner = fittedSize(width, height, pixelAspect, size);
  return { ...inner, left: Math.floor((size - inner.width) / 2), top: Math.floor((size - inner.height) / 2) };
}

/** Source index and weight of each destination sample, pixel centres aligned (as PIL and libvips). */
function axis(src: number, dst: number): { i0: Int32Array; i1: Int32Array; w: Float32Array } {
  const i0 = new Int32Array(dst);
  const i1 = new Int32Array(dst);
  const w = new Float32Array(dst);
  const s = src / dst;
  for (let d = 0; d < dst; d++) {
    const x = Math.min(src - 1, Math.max(0, (d + 0.5) * s - 0.5));
    const k = Math.floor(x);
    i0[d] = k;
    i1[d] = Math.min(src - 1, k + 1);
    w[d] = x - k;
  }
  return { i0, i1, w };
}

/** Bilinear resampling of one channel of float values (separable: rows, then columns). */
export function resizeBilinear(src: Float32Array, sw: number, sh: number, dw: number, dh: number): Float32Array {
  if (sw === dw && sh === dh) return src;
  const X = axis(sw, dw);
  const Y = axis(sh, dh);
  const tmp = new Float32Array(sh * dw);
  for (let y = 0; y < sh; y++) {
    const row = y * sw;
    const trow = y * dw;
    for (let x = 0; x < dw; x++) {
      const a = src[row + X.i0[x]!]!;
      tmp[trow + x] = a + (src[row + X.i1[x]!]! - a) * X.w[x]!;
    }
  }
  const out = new Float32Array(dw * dh);
  for (let y = 0; y < dh; y++) {
    const ra = Y.i0[y]! * dw;
    const rb = Y.i1[y]! * dw;
    const f = Y.w[y]!;
    const o = y * dw;
    for (let i = 0; i < dw; i++) {
      const a = tmp[ra + i]!;
      out[o + i] = a + (tmp[rb + i]! - a) * f;
    }
  }
  return out;
}

/** Copies an interleaved image into a black size × size canvas at its placement. */
export function padInto(inner: Uint8Array, p: Placement, channels: number, size: number): Uint8Array {
  if (p.width === size && p.height === size) return inner;
  const out = new Uint8Array(size * size * channels);
  const rowBytes = p.width * channels;
  for (let y = 0; y < p.height; y++) out.set(inner.subarray(y * rowBytes, (y + 1) * rowBytes), ((p.top + y) * size + p.left) * channels);
  return out;
}
