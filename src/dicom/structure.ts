import type { FileHandle } from 'node:fs/promises';
import zlib from 'node:zlib';
import { TS } from './transfer-syntax.js';

/**
 * A structural check of a Part 10 file: walk every element header from the start of the data set
 * to the end of the file, skipping values by their lengths, and make sure the encoding closes
 * exactly at end of file. This is what catches a truncated file (pixel data cut short, a length
 * that runs past EOF, a sequence never closed) that a header parser happily reads, and it costs
 * a few small reads: values are skipped, never read. On the way it notes the extent of the
 * top-level pixel data, which ingest and rendering hold against the image geometry.
 */

const UNDEFINED = 0xffffffff;
/** VRs with a 2-byte reserved field and a 4-byte length in explicit VR (PS3.5 7.1.2). */
export const LONG_VRS: ReadonlySet<string> = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);

/** Random access to an object's bytes: a local file or a stored blob read by byte ranges. */
export interface ByteSource {
  readonly size: number;
  bytes(pos: number, n: number): Promise<Buffer>;
}
const MAX_DEPTH = 64;
const DEFLATED = TS.DeflatedExplicitVRLittleEndian;
/** A deflated data set is inflated (in memory) to be walked only up to this size. */
export const MAX_INFLATED_CHECK_BYTES = 128 * 1024 * 1024;

/** The top-level (7FE0,0010) Pixel Data, (7FE0,0008) Float or (7FE0,0009) Double Float Pixel Data. */
export interface PixelDataExtent {
  element: 'PixelData' | 'FloatPixelData' | 'DoubleFloatPixelData';
  /** Native: the value length in bytes. */
  length?: number;
  /** Encapsulated: the fragments after the Basic Offset Table item. */
  fragments?: number;
}

export interface StructureInfo {
  pixelData?: PixelDataExtent;
  /** Why the pixel data extent is not known although the file may have pixel data. */
  unchecked?: string;
}

const PIXEL_ELEMENTS: Record<number, PixelDataExtent['element']> = {
  0x0010: 'PixelData',
  0x0008: 'FloatPixelData',
  0x0009: 'DoubleFloatPixelData',
};

class Reader {
  private winStart = 0;
  private win: Buffer;

  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
    prefix: Buffer,
  ) {
    this.win = prefix;
  }

  async bytes(pos: number, n: number): Promise<Buffer> {
    if (pos + n > this.size) throw new StructureError(`unexpected end of file at byte ${pos} (truncated)`);
    if (pos >= this.winStart && pos + n <= this.winStart + this.win.length) {
      return this.win.subarray(pos - this.winStart, pos - this.winStart + n);
    }
    const len = Math.min(Math.max(n, 64 * 1024), this.size - pos);
    const buf = Buffer.allocUnsafe(len);
    const { bytesRead } = await this.fh.read(buf, 0, len, pos);
    if (bytesRead < n) throw new StructureError(`unexpected end of file at byte ${pos} (truncated)`);
    this.win = buf.subarray(0, bytesRead);
    this.winStart = pos;
    return this.win.subarray(0, n);
  }
}

export class StructureError extends Error {}

interface Container {
  /** 'seq': until (FFFE,E0DD); 'item': until (FFFE,E00D). */
  kind: 'seq' | 'item';
  /** Inside an undefined-length UN sequence, items are implicit VR little endian (PS3.5 6.2.2). */
  implicit: boolean;
  littleEndian: boolean;
  /** The top-level encapsulated pixel data: its items are counted. */
  pixels?: { items: number };
}

function hex(n: number): string {
  return n.toString(16).padStart(4, '0').toUpperCase();
}

/** Offset of the first data set byte: after the meta group. */
export async function datasetOffset(r: ByteSource): Promise<number> {
  let pos = 132;
  for (;;) {
    if (pos + 8 > r.size) return pos;
    const h = await r.bytes(pos, 8);
    if (h.readUInt16LE(0) !== 0x0002) return pos;
    const vr = h.toString('latin1', 4, 6);
    if (LONG_VRS.has(vr)) {
      const len = (await r.bytes(pos + 8, 4)).readUInt32LE(0);
      pos += 12 + len;
    } else {
      pos += 8 + h.readUInt16LE(6);
    }
  }
}

/** A file read in 64 KB windows, its first `prefix` bytes already in memory. */
export function fileSource(fh: FileHandle, size: number, prefix: Buffer): ByteSource {
  return new Reader(fh, size, prefix);
}

export async function checkStructure(r: ByteSource, transferSyntaxUid: string): Promise<StructureInfo> {
  const start = await datasetOffset(r);
  if (transferSyntaxUid === DEFLATED) return checkDeflated(r, start);
  return walkStructure(r, start, transferSyntaxUid);
}

/**
 * A deflated data set can only be walked inflated: that is done in memory when it stays under
 * MAX_INFLATED_CHECK_BYTES (the header parse has inflated it already); beyond that the file is
 * taken as the header parse saw it and its pixel data extent is reported unknown.
 */
async function checkDeflated(r: ByteSource, start: number): Promise<StructureInfo> {
  const unchecked = `deflated data set larger than ${MAX_INFLATED_CHECK_BYTES} bytes: structure and pixel data length not checked`;
  if (r.size - start > MAX_INFLATED_CHECK_BYTES) return { unchecked };
  let inflated: Buffer;
  try {
    inflated = zlib.inflateRawSync(await r.bytes(start, r.size - start), { maxOutputLength: MAX_INFLATED_CHECK_BYTES });
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') return { unchecked };
    throw new StructureError(`deflated data set cannot be inflated: ${(err as Error).message}`);
  }
  return walkStructure(bufferSource(inflated), 0, TS.ExplicitVRLittleEndian);
}

/** A ByteSource over bytes in memory. */
export function bufferSource(buf: Buffer): ByteSource {
  return {
    size: buf.length,
    bytes: async (pos, n) => {
      if (pos + n > buf.length) throw new StructureError(`unexpected end of data at byte ${pos} (truncated)`);
      return buf.subarray(pos, pos + n);
    },
  };
}

/** Walks the data set from `pos` to the end of `r`, encoded in `transferSyntaxUid` (not deflated). */
export async function walkStructure(r: ByteSource, start: number, transferSyntaxUid: string): Promise<StructureInfo> {
  const size = r.size;
  const baseImplicit = transferSyntaxUid === TS.ImplicitVRLittleEndian;
  const baseLittle = transferSyntaxUid !== TS.ExplicitVRBigEndian;
  const stack: Container[] = [];
  const info: StructureInfo = {};
  let encapsulated: { element: PixelDataExtent['element']; counted: { items: number } } | undefined;
  let pos = start;

  while (pos < size) {
    const ctx = stack[stack.length - 1];
    const implicit = ctx ? ctx.implicit : baseImplicit;
    const little = ctx ? ctx.littleEndian : baseLittle;
    const h = await r.bytes(pos, 8);
    const group = little ? h.readUInt16LE(0) : h.readUInt16BE(0);
    const elem = little ? h.readUInt16LE(2) : h.readUInt16BE(2);

    if (group === 0xfffe) {
      const len = little ? h.readUInt32LE(4) : h.readUInt32BE(4);
      pos += 8;
      if (elem === 0xe000) {
        if (!ctx || ctx.kind !== 'seq') throw new StructureError(`item outside a sequence at byte ${pos - 8}`);
        if (ctx.pixels) ctx.pixels.items++;
        if (len === UNDEFINED) {
          if (stack.length >= MAX_DEPTH) throw new StructureError(`sequences nested deeper than ${MAX_DEPTH} levels`);
          stack.push({ kind: 'item', implicit, littleEndian: little });
        } else {
          if (pos + len > size) throw new StructureError(`item at byte ${pos - 8} runs past end of file (truncated)`);
          pos += len;
        }
      } else if (elem === 0xe00d) {
        if (ctx?.kind !== 'item') throw new StructureError(`stray item delimiter at byte ${pos - 8}`);
        stack.pop();
      } else if (elem === 0xe0dd) {
        if (ctx?.kind !== 'seq') throw new StructureError(`stray sequence delimiter at byte ${pos - 8}`);
        stack.pop();
      } else {
        throw new StructureError(`invalid tag (FFFE,${hex(elem)}) at byte ${pos - 8}`);
      }
      continue;
    }

    let vr = '';
    let len: number;
    let headerLen: number;
    if (implicit) {
      len = little ? h.readUInt32LE(4) : h.readUInt32BE(4);
      headerLen = 8;
    } else {
      vr = h.toString('latin1', 4, 6);
      if (!/^[A-Z]{2}$/.test(vr)) throw new StructureError(`invalid VR at (${hex(group)},${hex(elem)}), byte ${pos}`);
      if (LONG_VRS.has(vr)) {
        const l = await r.bytes(pos + 8, 4);
        len = little ? l.readUInt32LE(0) : l.readUInt32BE(0);
        headerLen = 12;
      } else {
        len = little ? h.readUInt16LE(6) : h.readUInt16BE(6);
        headerLen = 8;
      }
    }
    pos += headerLen;
    const pixelElement = !ctx && group === 0x7fe0 ? PIXEL_ELEMENTS[elem] : undefined;
    if (len === UNDEFINED) {
      if (stack.length >= MAX_DEPTH) throw new StructureError(`sequences nested deeper than ${MAX_DEPTH} levels`);
      // Undefined-length SQ, encapsulated Pixel Data (fragments are items), or UN holding a
      // sequence encoded in implicit VR little endian.
      const asImplicitUn = vr === 'UN';
      const container: Container = { kind: 'seq', implicit: asImplicitUn ? true : implicit, littleEndian: asImplicitUn ? true : little };
      if (pixelElement) {
        container.pixels = { items: 0 };
        encapsulated = { element: pixelElement, counted: container.pixels };
      }
      stack.push(container);
      continue;
    }
    if (pos + len > size) {
      throw new StructureError(
        `(${hex(group)},${hex(elem)}) declares ${len} bytes at byte ${pos}, past the end of the ${size}-byte file (truncated)`,
      );
    }
    if (pixelElement) info.pixelData = { element: pixelElement, length: len };
    pos += len;
  }
  if (stack.length > 0) throw new StructureError('file ends inside an undefined-length sequence (truncated)');
  if (encapsulated) {
    // The first item is the Basic Offset Table (PS3.5 A.4), possibly empty.
    info.pixelData = { element: encapsulated.element, fragments: Math.max(0, encapsulated.counted.items - 1) };
  }
  return info;
}

/** One element of the File Meta group (group 0002). */
export interface MetaElement {
  /** The element number: 0x0010 is (0002,0010) Transfer Syntax UID. */
  element: number;
  vr: string;
  /** Offset of the first value byte in the buffer. */
  valueOffset: number;
  /** May be 0xFFFFFFFF or run past the buffer in a damaged file: callers check. */
  length: number;
}

/**
 * The one walk of the File Meta group (always explicit VR little endian, from byte 132): its
 * elements, and `end`, where the data set starts. Stops at the first element of another group or
 * at a header that does not fit in `buf`. Does not check the DICM preamble.
 */
export function fileMeta(buf: Buffer): { elements: MetaElement[]; end: number } {
  const elements: MetaElement[] = [];
  let pos = 132;
  while (pos + 8 <= buf.length && buf.readUInt16LE(pos) === 0x0002) {
    const element = buf.readUInt16LE(pos + 2);
    const vr = buf.toString('latin1', pos + 4, pos + 6);
    const long = LONG_VRS.has(vr);
    if (long && pos + 12 > buf.length) break;
    const length = long ? buf.readUInt32LE(pos + 8) : buf.readUInt16LE(pos + 6);
    const valueOffset = pos + (long ? 12 : 8);
    elements.push({ element, vr, valueOffset, length });
    pos = valueOffset + length;
  }
  return { elements, end: pos };
}

/** A meta element's value as text (as much of it as `buf` holds), padding trimmed. */
export function metaText(buf: Buffer, e: MetaElement): string {
  return buf.toString('latin1', e.valueOffset, Math.min(e.valueOffset + e.length, buf.length)).replace(/[\0 ]+$/, '');
}

/** The meta group's string values by element number (e.g. 0x0010 Transfer Syntax UID), padding trimmed. */
export function metaValues(prefix: Buffer): Map<number, string> {
  const out = new Map<number, string>();
  for (const e of fileMeta(prefix).elements) {
    if (e.vr === 'UI' || e.vr === 'AE' || e.vr === 'SH' || e.element === 0x0010) out.set(e.element, metaText(prefix, e));
  }
  return out;
}

/** The meta's (0002,0010) Transfer Syntax UID read straight from the bytes, or undefined. */
export function metaTransferSyntax(prefix: Buffer): string | undefined {
  return metaValues(prefix).get(0x0010);
}
