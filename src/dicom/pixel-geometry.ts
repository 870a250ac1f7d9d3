import type { PixelDataExtent } from './structure.js';

/**
 * Whether an image's claimed geometry fits the pixel data it actually carries. A data set may
 * claim Rows = Columns = 65535 over a few bytes of pixel data; a decoder trusting the claim
 * allocates gigabytes. Ingest refuses such an instance, and rendering checks again before
 * decoding (instances stored before the check existed).
 */

/** Default ceiling on Rows × Columns (MAX_FRAME_PIXELS): 2^28, e.g. 16384 × 16384. */
export const DEFAULT_MAX_FRAME_PIXELS = 2 ** 28;

export interface PixelGeometry {
  rows?: number;
  columns?: number;
  samplesPerPixel?: number;
  bitsAllocated?: number;
  numberOfFrames?: number;
  photometricInterpretation?: string;
}

/** Bytes one frame's samples take per pixel in native encoding (PS3.5 8.1.1, PS3.3 C.7.6.3.1.2). */
function samplesPerPixelStored(g: PixelGeometry): number {
  const photometric = g.photometricInterpretation?.trim().toUpperCase();
  // YBR_FULL_422 / YBR_PARTIAL_422 native: two luminance samples share one pair of chrominance
  // samples, so two samples per pixel on average, whatever Samples per Pixel (3) says.
  if (photometric === 'YBR_FULL_422' || photometric === 'YBR_PARTIAL_422') return 2;
  return g.samplesPerPixel !== undefined && g.samplesPerPixel > 0 ? g.samplesPerPixel : 1;
}

/** The bytes native pixel data needs for the claimed geometry (at least; a pad byte may follow). */
export function nativePixelBytes(g: PixelGeometry, element: PixelDataExtent['element'], bitsAllocated: number): number {
  const frames = g.numberOfFrames !== undefined && g.numberOfFrames > 0 ? g.numberOfFrames : 1;
  const bits = element === 'FloatPixelData' ? 32 : element === 'DoubleFloatPixelData' ? 64 : bitsAllocated;
  // Floating point: precision is enough to compare with a 32-bit length even when the product
  // passes 2^53 (then it is far larger than any value length anyway).
  const totalBits = (g.rows ?? 0) * (g.columns ?? 0) * samplesPerPixelStored(g) * frames * bits;
  // BitsAllocated 1: bits are packed, frames included, with no padding between frames.
  return Math.ceil(totalBits / 8);
}

/**
 * The problem with the geometry, or undefined when it fits. `pixelData` undefined: no pixel data
 * element (nothing to check) or its extent is unknown (deflated beyond the inflate limit): only
 * the claims themselves are checked then.
 */
export function pixelGeometryProblem(
  g: PixelGeometry,
  pixelData: PixelDataExtent | undefined,
  hasPixelData: boolean,
  maxFramePixels: number,
): string | undefined {
  if (!pixelData && !hasPixelData) return undefined;
  const rows = g.rows;
  const columns = g.columns;
  // ASCII only and the numbers first: a C-STORE ErrorComment keeps 64 characters.
  if (rows === undefined || columns === undefined) return 'pixel data without Rows (0028,0010) or Columns (0028,0011)';
  if (!(rows > 0) || !(columns > 0)) return `pixel data with Rows ${rows} x Columns ${columns} (both must be above 0)`;
  if (rows * columns > maxFramePixels) {
    return `frame of ${columns}x${rows} pixels over MAX_FRAME_PIXELS (${maxFramePixels}): ${rows * columns} pixels`;
  }
  if (!pixelData) return undefined;
  const frames = g.numberOfFrames !== undefined && g.numberOfFrames > 0 ? g.numberOfFrames : 1;
  if (pixelData.fragments !== undefined) {
    if (pixelData.fragments < frames) {
      return `encapsulated pixel data has ${pixelData.fragments} fragment(s) for ${frames} frame(s)`;
    }
    return undefined;
  }
  let bitsAllocated = g.bitsAllocated;
  if (pixelData.element === 'PixelData') {
    if (bitsAllocated === undefined) return 'native pixel data without Bits Allocated (0028,0100)';
    if (!(bitsAllocated >= 1 && bitsAllocated <= 64)) return `Bits Allocated ${bitsAllocated} is outside 1-64`;
  } else {
    bitsAllocated ??= pixelData.element === 'FloatPixelData' ? 32 : 64;
  }
  const need = nativePixelBytes(g, pixelData.element, bitsAllocated);
  const have = pixelData.length ?? 0;
  if (need > have) {
    const spp = samplesPerPixelStored(g);
    return (
      `pixel data too short: ${have} bytes of ${pixelData.element} for ${columns}x${rows} x ${spp} sample(s) ` +
      `x ${bitsAllocated} bits x ${frames} frame(s) = ${need} bytes`
    );
  }
  return undefined;
}
