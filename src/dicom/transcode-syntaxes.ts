import { TS } from './transfer-syntax.js';

/**
 * Which transfer syntaxes the node can transcode from and to (dcmjs-codecs, plus inflating
 * Deflated Explicit VR Little Endian itself).
 *
 * Targets are the uncompressed syntaxes, the lossless compressions, and three lossy ones a client
 * may ask for by name (PS3.18 §8.7.3.5; never chosen by default): JPEG Baseline (8-bit samples
 * only), JPEG-LS near-lossless and JPEG 2000. A lossy result is a derived image (PS3.3
 * C.7.6.1.1.5): transcode-worker.ts sets Lossy Image Compression, appends its ratio and method,
 * makes Image Type DERIVED and gives it a new SOP Instance UID.
 * Sources are what dcmjs-codecs decodes; JPEG Extended (12-bit, .51), JPEG lossless .57, MPEG/HEVC
 * video and Deflated Image Frame Compression (.8.1) cannot be decoded here.
 */

export const TRANSCODE_TARGETS: ReadonlySet<string> = new Set([
  TS.ImplicitVRLittleEndian,
  TS.ExplicitVRLittleEndian,
  TS.RLELossless,
  TS.JPEGLosslessSV1,
  TS.JPEGLSLossless,
  TS.JPEG2000Lossless,
  TS.HTJ2KLossless,
  TS.JPEGBaseline8Bit,
  TS.JPEGLSNearLossless,
  TS.JPEG2000,
]);

export const TRANSCODE_SOURCES: ReadonlySet<string> = new Set([
  TS.ImplicitVRLittleEndian,
  TS.ExplicitVRLittleEndian,
  TS.ExplicitVRBigEndian,
  TS.DeflatedExplicitVRLittleEndian,
  TS.RLELossless,
  TS.JPEGBaseline8Bit,
  TS.JPEGLosslessSV1,
  TS.JPEGLSLossless,
  TS.JPEGLSNearLossless,
  TS.JPEG2000Lossless,
  TS.JPEG2000,
  TS.JPEGXLLossless,
  TS.JPEGXL,
  TS.HTJ2KLossless,
  TS.HTJ2KLosslessRPCL,
  TS.HTJ2K,
]);

/** Why `from` cannot become `to`, or undefined when it can (same syntax: nothing to do). */
export function whyNotTranscodable(from: string, to: string): string | undefined {
  if (from === to) return undefined;
  if (!TRANSCODE_TARGETS.has(to)) {
    return `${to} is not a syntax this node encodes to (${[...TRANSCODE_TARGETS].join(', ')})`;
  }
  if (!TRANSCODE_SOURCES.has(from)) return `pixel data stored as ${from} cannot be decoded by this node`;
  return undefined;
}
