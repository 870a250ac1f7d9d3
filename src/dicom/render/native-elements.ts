import { tagNumber } from '../dictionary.js';
import { fileMeta, LONG_VRS } from '../structure.js';
import { TS } from '../transfer-syntax.js';

/**
 * A fast path for the common case, native little-endian pixel data in a classic image object:
 * walk the top-level elements once, keep the dozen image attributes the preparation needs and a
 * view of Pixel Data (no copy). dcmjs parses and naturalizes every element instead, which was
 * most of the per-slice decode time. Anything this walk does not handle (another syntax,
 * encapsulated or missing pixel data, functional groups, VOI/Modality LUT sequences, a malformed
 * length) answers undefined and the caller takes the general dcmjs-codecs path.
 */

const UNDEFINED = 0xffffffff;
/** Explicit VR with a 2-byte reserved field and a 4-byte length (PS3.5 7.1.2). */

const tag = (group: number, element: number): number => group * 0x10000 + element;

/** Attributes read as US (binary) and as text (IS/DS/CS), by tag → naturalized keyword. */
const US_ATTRS = new Map<number, string>(
  [
    'SamplesPerPixel',
    'PlanarConfiguration',
    'Rows',
    'Columns',
    'BitsAllocated',
    'BitsStored',
    'PixelRepresentation',
    // US or SS: read as US, decode-frame.ts sign-extends them as it does the pixels.
    'SmallestImagePixelValue',
    'LargestImagePixelValue',
    'PixelPaddingValue',
  ].map((k) => [tagNumber(k), k]),
);
const TEXT_ATTRS = new Map<number, string>(
  [
    'PhotometricInterpretation',
    'NumberOfFrames',
    'PixelSpacing',
    'ImagerPixelSpacing',
    'PixelAspectRatio',
    'WindowCenter',
    'WindowWidth',
    'VOILUTFunction',
    'RescaleIntercept',
    'RescaleSlope',
  ].map((k) => [tagNumber(k), k]),
);
/** Present → the general path (their contents change the pixel values or geometry per frame). */
const BAIL = new Set(
  [
    'SharedFunctionalGroupsSequence',
    'PerFrameFunctionalGroupsSequence',
    'ModalityLUTSequence',
    'VOILUTSequence',
    'FloatPixelData',
    'DoubleFloatPixelData',
    'RedPaletteColorLookupTableDescriptor',
    'SegmentedRedPaletteColorLookupTableData',
  ].map(tagNumber),
);
const PIXEL_DATA = tagNumber('PixelData');
const ITEM = tagNumber('Item');
const SEQ_DELIM = tagNumber('SequenceDelimitationItem');

class Bail extends Error {}

/** Skips an undefined-length value (a sequence or UN) from `pos`; returns the position after its delimiter. */
function skipUndefined(b: Buffer, pos: number, explicit: boolean, depth: number): number {
  if (depth > 32) throw new Bail();
  while (pos + 8 <= b.length) {
    const t = tag(b.readUInt16LE(pos), b.readUInt16LE(pos + 2));
    const len = b.readUInt32LE(pos + 4);
    pos += 8;
    if (t === SEQ_DELIM) return pos;
    if (t !== ITEM) throw new Bail();
    if (len !== UNDEFINED) {
      pos += len;
      continue;
    }
    pos = skipItemElements(b, pos, explicit, depth + 1);
  }
  throw new Bail();
}

/** The elements of an undefined-length item, up to and past its Item Delimitation Item. */
function skipItemElements(b: Buffer, pos: number, explicit: boolean, depth: number): number {
  for (;;) {
    if (pos + 8 > b.length) throw new Bail();
    // Item Delimitation Item (FFFE,E00D), length 0.
    if (b.readUInt16LE(pos) === 0xfffe) return pos + 8;
    const h = header(b, pos, explicit);
    pos = h.length === UNDEFINED ? skipUndefined(b, h.value, explicit && h.vr !== 'UN', depth + 1) : h.value + h.length;
  }
}

function header(b: Buffer, pos: number, explicit: boolean): { vr: string; length: number; value: number } {
  if (!explicit) return { vr: '', length: b.readUInt32LE(pos + 4), value: pos + 8 };
  const vr = b.toString('latin1', pos + 4, pos + 6);
  if (LONG_VRS.has(vr)) return { vr, length: b.readUInt32LE(pos + 8), value: pos + 12 };
  return { vr, length: b.readUInt16LE(pos + 6), value: pos + 8 };
}

/** Elements in the shape decodeFrame reads (dcmjs naturalized names), or undefined. */
export function nativeElements(b: Buffer, transferSyntaxUid: string): Record<string, unknown> | undefined {
  const explicit = transferSyntaxUid === TS.ExplicitVRLittleEndian;
  if (!explicit && transferSyntaxUid !== TS.ImplicitVRLittleEndian) return undefined;
  if (b.length < 132 || b.toString('latin1', 128, 132) !== 'DICM') return undefined;
  try {
    const meta = fileMeta(b);
    if (meta.elements.some((e) => e.length === UNDEFINED)) return undefined;
    let pos = meta.end;
    const out: Record<string, unknown> = {};
    while (pos + 8 <= b.length) {
      const t = tag(b.readUInt16LE(pos), b.readUInt16LE(pos + 2));
      if (BAIL.has(t)) return undefined;
      const h = header(b, pos, explicit);
      if (t === PIXEL_DATA) {
        if (h.length === UNDEFINED || h.value + h.length > b.length) return undefined;
        out.PixelData = [new Uint8Array(b.buffer, b.byteOffset + h.value, h.length)];
        return out;
      }
      if (h.length === UNDEFINED) {
        // An undefined-length UN holds implicit VR little endian (PS3.5 6.2.2).
        pos = skipUndefined(b, h.value, explicit && h.vr !== 'UN', 0);
        continue;
      }
      if (h.value + h.length > b.length) return undefined;
      const us = US_ATTRS.get(t);
      if (us && h.length >= 2) out[us] = b.readUInt16LE(h.value);
      const txt = TEXT_ATTRS.get(t);
      if (txt) {
        const parts = b
          .toString('latin1', h.value, h.value + h.length)
          .replace(/[\0 ]+$/, '')
          .split('\\')
          .map((s) => s.trim());
        out[txt] = parts.length === 1 ? parts[0] : parts;
      }
      pos = h.value + h.length;
    }
    return undefined;
  } catch (err) {
    if (err instanceof Bail || err instanceof RangeError) return undefined;
    throw err;
  }
}
