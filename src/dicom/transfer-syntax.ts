/**
 * The one transfer-syntax table (PS3.6 Annex A, PS3.5 §10): every syntax the node names, with how
 * its data set and pixel data are encoded, and the PS3.18 media type of its compressed frames.
 * Video (MPEG/HEVC) and SMPTE syntaxes are recognised by isVideo / isStorableTransferSyntax
 * (uids.ts) without being listed one by one.
 */

export interface TransferSyntaxInfo {
  uid: string;
  /** Explicit VR (false: implicit VR, PS3.5 7.1.3). */
  explicitVr: boolean;
  littleEndian: boolean;
  /** The data set is deflated (PS3.5 A.5). */
  deflated: boolean;
  /** Pixel data is encapsulated in fragments (PS3.5 A.4). */
  encapsulated: boolean;
  /** The compression may lose information. */
  lossy: boolean;
  /** Media type of a frame in this syntax (PS3.18 Table 8.7.3-6), for compressed syntaxes. */
  mediaType?: string;
}

type Flags = Omit<TransferSyntaxInfo, 'uid'>;
const native = (explicitVr: boolean, littleEndian: boolean, deflated = false): Flags => ({
  explicitVr,
  littleEndian,
  deflated,
  encapsulated: false,
  lossy: false,
});
const compressed = (lossy: boolean, mediaType?: string): Flags => ({
  explicitVr: true,
  littleEndian: true,
  deflated: false,
  encapsulated: true,
  lossy,
  ...(mediaType ? { mediaType } : {}),
});

const table = {
  ImplicitVRLittleEndian: { uid: '1.2.840.10008.1.2', ...native(false, true) },
  ExplicitVRLittleEndian: { uid: '1.2.840.10008.1.2.1', ...native(true, true) },
  EncapsulatedUncompressedExplicitVRLittleEndian: { uid: '1.2.840.10008.1.2.1.98', ...compressed(false) },
  DeflatedExplicitVRLittleEndian: { uid: '1.2.840.10008.1.2.1.99', ...native(true, true, true) },
  ExplicitVRBigEndian: { uid: '1.2.840.10008.1.2.2', ...native(true, false) },
  JPEGBaseline8Bit: { uid: '1.2.840.10008.1.2.4.50', ...compressed(true, 'image/jpeg') },
  JPEGExtended12Bit: { uid: '1.2.840.10008.1.2.4.51', ...compressed(true, 'image/jpeg') },
  JPEGLossless: { uid: '1.2.840.10008.1.2.4.57', ...compressed(false, 'image/jpeg') },
  JPEGLosslessSV1: { uid: '1.2.840.10008.1.2.4.70', ...compressed(false, 'image/jpeg') },
  JPEGLSLossless: { uid: '1.2.840.10008.1.2.4.80', ...compressed(false, 'image/jls') },
  JPEGLSNearLossless: { uid: '1.2.840.10008.1.2.4.81', ...compressed(true, 'image/jls') },
  JPEG2000Lossless: { uid: '1.2.840.10008.1.2.4.90', ...compressed(false, 'image/jp2') },
  JPEG2000: { uid: '1.2.840.10008.1.2.4.91', ...compressed(true, 'image/jp2') },
  JPEG2000MCLossless: { uid: '1.2.840.10008.1.2.4.92', ...compressed(false, 'image/jpx') },
  JPEG2000MC: { uid: '1.2.840.10008.1.2.4.93', ...compressed(true, 'image/jpx') },
  JPEGXLLossless: { uid: '1.2.840.10008.1.2.4.110', ...compressed(false) },
  JPEGXLJPEGRecompression: { uid: '1.2.840.10008.1.2.4.111', ...compressed(false) },
  JPEGXL: { uid: '1.2.840.10008.1.2.4.112', ...compressed(true) },
  HTJ2KLossless: { uid: '1.2.840.10008.1.2.4.201', ...compressed(false, 'image/jphc') },
  HTJ2KLosslessRPCL: { uid: '1.2.840.10008.1.2.4.202', ...compressed(false, 'image/jphc') },
  HTJ2K: { uid: '1.2.840.10008.1.2.4.203', ...compressed(true, 'image/jphc') },
  RLELossless: { uid: '1.2.840.10008.1.2.5', ...compressed(false, 'image/dicom-rle') },
  DeflatedImageFrameCompression: { uid: '1.2.840.10008.1.2.8.1', ...compressed(false) },
} as const satisfies Record<string, TransferSyntaxInfo>;

export type TransferSyntaxName = keyof typeof table;

/** Transfer syntax UIDs by name: TS.ExplicitVRLittleEndian === '1.2.840.10008.1.2.1'. */
export const TS = Object.fromEntries(Object.entries(table).map(([k, v]) => [k, v.uid])) as {
  readonly [K in TransferSyntaxName]: (typeof table)[K]['uid'];
};

const byUid = new Map<string, TransferSyntaxInfo>(Object.values(table).map((e) => [e.uid, e]));

/** What the table knows of a UID, or undefined for one it does not list. */
export function transferSyntax(uid: string): TransferSyntaxInfo | undefined {
  return byUid.get(uid);
}

/** Media type of a frame stored in this syntax (PS3.18 Table 8.7.3-6), or undefined. */
export function compressedMediaType(uid: string): string | undefined {
  return byUid.get(uid)?.mediaType;
}

/** Pixel data is a value, not fragments: the four uncompressed syntaxes (deflated included). */
export function isNativePixelEncoding(uid: string): boolean {
  const e = byUid.get(uid);
  return e !== undefined && !e.encapsulated;
}

/** MPEG / HEVC video transfer syntaxes: their pixel data is a stream, not frames. */
export function isVideo(uid: string): boolean {
  return /^1\.2\.840\.10008\.1\.2\.4\.10[0-9]$/.test(uid);
}
