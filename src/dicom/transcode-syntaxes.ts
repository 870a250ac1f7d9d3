import { TS } from './uids.js';

/**
 * Which transfer syntaxes the node can transcode from and to (dcmjs-codecs, plus inflating
 * Deflated Explicit VR Little Endian itself).
 *
 * Targets are the uncompressed syntaxes and the lossless compressions only: turning an
 * original into a lossy one on request would silently change what a radiologist reads, so a
 * lossy syntax is served only when the instance is already stored in it.
 * Sources are what dcmjs-codecs decodes; JPEG Extended (12-bit, .51), JPEG lossless .57, MPEG/HEVC
 * video and Deflated Image Frame Compression (.8.1) cannot be decoded here.
 */

export const RLE_LOSSLESS = '1.2.840.10008.1.2.5';
export const JPEG_LOSSLESS_SV1 = '1.2.840.10008.1.2.4.70';
export const JPEG_LS_LOSSLESS = '1.2.840.10008.1.2.4.80';
export const JPEG_2000_LOSSLESS = '1.2.840.10008.1.2.4.90';
export const HTJ2K_LOSSLESS = '1.2.840.10008.1.2.4.201';

export const TRANSCODE_TARGETS: ReadonlySet<string> = new Set([
  TS.ImplicitVRLittleEndian,
  TS.ExplicitVRLittleEndian,
  RLE_LOSSLESS,
  JPEG_LOSSLESS_SV1,
  JPEG_LS_LOSSLESS,
  JPEG_2000_LOSSLESS,
  HTJ2K_LOSSLESS,
]);

export const TRANSCODE_SOURCES: ReadonlySet<string> = new Set([
  TS.ImplicitVRLittleEndian,
  TS.ExplicitVRLittleEndian,
  TS.ExplicitVRBigEndian,
  TS.DeflatedExplicitVRLittleEndian,
  RLE_LOSSLESS,
  '1.2.840.10008.1.2.4.50', // JPEG Baseline
  JPEG_LOSSLESS_SV1,
  JPEG_LS_LOSSLESS,
  '1.2.840.10008.1.2.4.81', // JPEG-LS near-lossless
  JPEG_2000_LOSSLESS,
  '1.2.840.10008.1.2.4.91', // JPEG 2000
  '1.2.840.10008.1.2.4.110', // JPEG XL lossless
  '1.2.840.10008.1.2.4.112', // JPEG XL
  HTJ2K_LOSSLESS,
  '1.2.840.10008.1.2.4.202', // HTJ2K RPCL lossless
  '1.2.840.10008.1.2.4.203', // HTJ2K
]);

/** Why `from` cannot become `to`, or undefined when it can (same syntax: nothing to do). */
export function whyNotTranscodable(from: string, to: string): string | undefined {
  if (from === to) return undefined;
  if (!TRANSCODE_TARGETS.has(to)) {
    return `${to} is not a syntax this node encodes to (uncompressed and lossless ones only: ${[...TRANSCODE_TARGETS].join(', ')})`;
  }
  if (!TRANSCODE_SOURCES.has(from)) return `pixel data stored as ${from} cannot be decoded by this node`;
  return undefined;
}
