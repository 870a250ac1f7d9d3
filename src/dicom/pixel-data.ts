import { Readable } from 'node:stream';
import { RadiantError } from '../errors.js';
import { tagNumber } from './dictionary.js';
import { datasetOffset, LONG_VRS, type ByteSource } from './structure.js';
import { isVideo, TS } from './transfer-syntax.js';

/**
 * Finds things inside a stored Part 10 instance without loading it: the top-level elements of
 * the data set (their value offsets and lengths), the image attributes frames need, and the
 * byte ranges of each frame of Pixel Data (7FE0,0010), native or encapsulated. Everything is
 * read through storage (RangeStore.get) with byte ranges, in windows of WINDOW bytes: a few small reads
 * for the header, one small read per fragment item header, never the pixel values.
 */

const WINDOW = 64 * 1024;
const UNDEFINED = 0xffffffff;
const MAX_DEPTH = 64;

export const PIXEL_DATA = tagNumber('PixelData');
const DEFLATED: readonly string[] = [TS.DeflatedExplicitVRLittleEndian, TS.DeflatedImageFrameCompression];

/** Inclusive byte range, as in an HTTP Range header (structurally storage's ByteRange). */
export interface ByteRange {
  start: number;
  /** Inclusive; omitted means "to the end". */
  end?: number;
}

/** What this module needs of blob storage (BlobStorage satisfies it): ranged reads and sizes. */
export interface RangeStore {
  get(key: string, range?: ByteRange): Promise<Readable>;
  stat(key: string): Promise<{ size: number } | undefined>;
}

/**
 * Why there are no frames to give: the instance has no pixel data ('not-found') or they cannot be
 * cut out of this encoding here ('not-implemented'). Protocols map the reason to their status.
 */
export class PixelDataUnavailable extends RadiantError {
  constructor(
    override readonly reason: 'not-found' | 'not-implemented',
    message: string,
  ) {
    super(reason === 'not-found' ? 'not-found' : 'unsupported', message);
    this.name = 'PixelDataUnavailable';
  }
}

/** The stored transfer syntaxes this module cannot look inside (yet). */
export function unsupportedStorage(ts: string): string | undefined {
  if (DEFLATED.includes(ts)) {
    return `the instance is stored deflated (${ts}); frames and bulk data of deflated instances are not implemented yet (retrieve the instance)`;
  }
  if (ts === TS.ExplicitVRBigEndian) {
    return `the instance is stored in explicit VR big endian (${ts}); frames and bulk data need byte swapping, which is not implemented yet (retrieve the instance)`;
  }
  return undefined;
}

/** Uncompressed and not deflated: frames are byte ranges of the Pixel Data value. */
export function isNative(ts: string): boolean {
  return ts === TS.ImplicitVRLittleEndian || ts === TS.ExplicitVRLittleEndian || ts === TS.ExplicitVRBigEndian;
}

/** Reads an object (or a window of it) through storage byte ranges. */
export class RangeReader implements ByteSource {
  private winStart = 0;
  private win: Buffer = Buffer.alloc(0);

  constructor(
    private readonly storage: RangeStore,
    private readonly key: string,
    readonly size: number,
  ) {}

  async bytes(pos: number, n: number): Promise<Buffer> {
    if (pos < 0 || pos + n > this.size) throw new CorruptError(`unexpected end of object at byte ${pos}`);
    if (pos >= this.winStart && pos + n <= this.winStart + this.win.length) {
      return this.win.subarray(pos - this.winStart, pos - this.winStart + n);
    }
    const len = Math.min(Math.max(n, WINDOW), this.size - pos);
    this.win = await readRange(this.storage, this.key, { start: pos, end: pos + len - 1 });
    this.winStart = pos;
    if (this.win.length < n) throw new CorruptError(`short read at byte ${pos}`);
    return this.win.subarray(0, n);
  }
}

/** A damaged stored object: the node's own store holds it, so its own failure (a 500). */
export class CorruptError extends RadiantError {
  constructor(message: string) {
    super('internal', message);
    this.name = 'CorruptError';
  }
}

export async function readRange(storage: RangeStore, key: string, range: ByteRange): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await storage.get(key, range)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** One top-level element of the data set. */
export interface ElementRef {
  tag: number;
  /** Explicit VR, or '' for implicit VR. */
  vr: string;
  /** Absolute offset of the first value byte. */
  valueOffset: number;
  /** Value length, or undefined for an undefined length (SQ, encapsulated Pixel Data). */
  length: number | undefined;
  /** Whether this element was encoded in implicit VR (UN content is). */
  implicit: boolean;
}

/** Offset of the first data set byte (after the File Meta group). */
async function datasetStart(r: ByteSource): Promise<number> {
  if (r.size < 132 || (await r.bytes(128, 4)).toString('latin1') !== 'DICM') throw new CorruptError('not a Part 10 file');
  return datasetOffset(r);
}

/**
 * Walks the elements of one data set level from `start`, in order, yielding each one; nested
 * sequences are walked (to skip them) but not yielded. The level ends at `limit`, or at an item
 * delimiter (FFFE,E00D) at this level (the end of an undefined-length item). Returns the position
 * after the level. The consumer may stop early.
 */
async function* walkLevel(r: ByteSource, start: number, limit: number, baseImplicit: boolean): AsyncGenerator<ElementRef, number> {
  // Each entry: 'seq' waits for (FFFE,E0DD), 'item' for (FFFE,E00D); implicit for UN content.
  const stack: Array<{ kind: 'seq' | 'item'; implicit: boolean }> = [];
  let pos = start;
  while (pos + 8 <= limit) {
    const ctx = stack[stack.length - 1];
    const implicit = ctx ? ctx.implicit : baseImplicit;
    const h = await r.bytes(pos, 8);
    const group = h.readUInt16LE(0);
    const elem = h.readUInt16LE(2);
    if (group === 0xfffe) {
      const len = h.readUInt32LE(4);
      pos += 8;
      if (elem === 0xe000) {
        if (ctx?.kind !== 'seq') throw new CorruptError(`item outside a sequence at byte ${pos - 8}`);
        if (len === UNDEFINED) {
          if (stack.length >= MAX_DEPTH) throw new CorruptError('sequences nested too deep');
          stack.push({ kind: 'item', implicit });
        } else pos += len;
      } else if (elem === 0xe00d && !ctx) return pos;
      else if (elem === 0xe00d && ctx?.kind === 'item') stack.pop();
      else if (elem === 0xe0dd && ctx?.kind === 'seq') stack.pop();
      else throw new CorruptError(`unexpected delimiter at byte ${pos - 8}`);
      continue;
    }
    let vr = '';
    let len: number;
    let headerLen = 8;
    if (implicit) len = h.readUInt32LE(4);
    else {
      vr = h.toString('latin1', 4, 6);
      if (!/^[A-Z]{2}$/.test(vr)) throw new CorruptError(`invalid VR at byte ${pos}`);
      if (LONG_VRS.has(vr)) {
        len = (await r.bytes(pos + 8, 4)).readUInt32LE(0);
        headerLen = 12;
      } else len = h.readUInt16LE(6);
    }
    const tag = ((group << 16) | elem) >>> 0;
    const valueOffset = pos + headerLen;
    if (stack.length === 0) yield { tag, vr, valueOffset, length: len === UNDEFINED ? undefined : len, implicit };
    if (len === UNDEFINED) {
      if (stack.length >= MAX_DEPTH) throw new CorruptError('sequences nested too deep');
      stack.push({ kind: 'seq', implicit: vr === 'UN' ? true : implicit });
      pos = valueOffset;
      continue;
    }
    if (valueOffset + len > r.size) throw new CorruptError(`element at byte ${pos} runs past the end of the object`);
    pos = valueOffset + len;
  }
  return pos;
}

/** The top-level elements of a little-endian data set. */
export async function* topLevelElements(r: ByteSource, ts: string): AsyncGenerator<ElementRef> {
  yield* walkLevel(r, await datasetStart(r), r.size, ts === TS.ImplicitVRLittleEndian);
}

/** The element with this tag at one level, or undefined. Stops walking once past it. */
async function findAtLevel(level: AsyncGenerator<ElementRef, number>, tag: number): Promise<ElementRef | undefined> {
  for await (const e of level) {
    if (e.tag === tag) return e;
    if (e.tag > tag) return undefined;
  }
  return undefined;
}

/** The top-level element with this tag, or undefined. */
export async function findElement(r: ByteSource, ts: string, tag: number): Promise<ElementRef | undefined> {
  return findAtLevel(topLevelElements(r, ts), tag);
}

/** Item `index` (0-based) of a sequence element: where its data set starts and may end. */
async function sequenceItem(
  r: ByteSource,
  sq: ElementRef,
  index: number,
): Promise<{ start: number; limit: number; implicit: boolean } | undefined> {
  const implicit = sq.vr === 'UN' && sq.length === undefined ? true : sq.implicit;
  const limit = sq.length === undefined ? r.size : sq.valueOffset + sq.length;
  let pos = sq.valueOffset;
  for (let i = 0; pos + 8 <= limit; i++) {
    const h = await r.bytes(pos, 8);
    if (h.readUInt16LE(0) !== 0xfffe) throw new CorruptError(`expected an item at byte ${pos}`);
    const elem = h.readUInt16LE(2);
    const len = h.readUInt32LE(4);
    if (elem === 0xe0dd) return undefined;
    if (elem !== 0xe000) throw new CorruptError(`expected an item at byte ${pos}`);
    if (len !== UNDEFINED) {
      if (i === index) return { start: pos + 8, limit: pos + 8 + len, implicit };
      pos += 8 + len;
      continue;
    }
    if (i === index) return { start: pos + 8, limit: r.size, implicit };
    const it = walkLevel(r, pos + 8, r.size, implicit);
    let step = await it.next();
    while (!step.done) step = await it.next();
    pos = step.value;
  }
  return undefined;
}

/**
 * The element a tag path names: `[tag]` at the top level, or `[sq, item, sq, item, …, tag]`
 * through sequences (item indexes 0-based, as the metadata's BulkDataURIs write them).
 */
export async function findByPath(r: ByteSource, ts: string, path: Array<number>): Promise<ElementRef | undefined> {
  let level: AsyncGenerator<ElementRef, number> = topLevelElements(r, ts) as AsyncGenerator<ElementRef, number>;
  for (let i = 0; i < path.length; i += 2) {
    const e = await findAtLevel(level, path[i]!);
    if (!e || i === path.length - 1) return e;
    const item = await sequenceItem(r, e, path[i + 1]!);
    if (!item) return undefined;
    level = walkLevel(r, item.start, item.limit, item.implicit);
  }
  return undefined;
}

export interface PixelDataLayout {
  transferSyntaxUid: string;
  encapsulated: boolean;
  numberOfFrames: number;
  rows: number;
  columns: number;
  samplesPerPixel: number;
  bitsAllocated: number;
  /** The Pixel Data element itself. */
  element: ElementRef;
  /** Byte ranges of each frame (0-based index); one range for native, fragments when encapsulated. */
  frames: ByteRange[][];
  /** How encapsulated frames were mapped to fragments. */
  mapping?: 'single-frame' | 'one-fragment-per-frame' | 'basic-offset-table' | 'frame-start-markers';
}

const ROWS = tagNumber('Rows');
const COLUMNS = tagNumber('Columns');
const SAMPLES = tagNumber('SamplesPerPixel');
const BITS_ALLOCATED = tagNumber('BitsAllocated');
const NUMBER_OF_FRAMES = tagNumber('NumberOfFrames');
const PHOTOMETRIC = tagNumber('PhotometricInterpretation');

/**
 * The frame layout of an instance's Pixel Data. Throws PixelDataUnavailable 'not-found' when it
 * has none, 'not-implemented' for storage encodings not handled here (deflated, big endian, video)
 * or frames that cannot be told apart, CorruptError for a damaged object.
 */
export async function pixelDataLayout(storage: RangeStore, key: string, ts: string): Promise<PixelDataLayout> {
  const why = unsupportedStorage(ts);
  if (why) throw new PixelDataUnavailable('not-implemented', why);
  if (isVideo(ts))
    throw new PixelDataUnavailable(
      'not-implemented',
      `the instance is stored as video (${ts}); frames of video are not available (retrieve the instance)`,
    );
  const info = await storage.stat(key);
  if (!info) throw new PixelDataUnavailable('not-found', 'the instance object is missing from storage');
  const r = new RangeReader(storage, key, info.size);
  const attrs = new Map<number, Buffer>();
  let pixel: ElementRef | undefined;
  for await (const e of topLevelElements(r, ts)) {
    if (
      [ROWS, COLUMNS, SAMPLES, BITS_ALLOCATED, NUMBER_OF_FRAMES, PHOTOMETRIC].includes(e.tag) &&
      e.length !== undefined &&
      e.length <= 64
    ) {
      attrs.set(e.tag, Buffer.from(await r.bytes(e.valueOffset, e.length)));
    }
    if (e.tag === PIXEL_DATA) {
      pixel = e;
      break;
    }
    if (e.tag > PIXEL_DATA) break;
  }
  if (!pixel) throw new PixelDataUnavailable('not-found', 'the instance has no Pixel Data (7FE0,0010)');
  const us = (tag: number) => {
    const b = attrs.get(tag);
    return b && b.length >= 2 ? b.readUInt16LE(0) : undefined;
  };
  const nfText = attrs.get(NUMBER_OF_FRAMES)?.toString('latin1').replace(/[\0 ]/g, '');
  const nf = nfText ? Number.parseInt(nfText, 10) : 1;
  const layout: PixelDataLayout = {
    transferSyntaxUid: ts,
    encapsulated: pixel.length === undefined,
    numberOfFrames: Number.isSafeInteger(nf) && nf > 0 ? nf : 1,
    rows: us(ROWS) ?? 0,
    columns: us(COLUMNS) ?? 0,
    samplesPerPixel: us(SAMPLES) ?? 1,
    bitsAllocated: us(BITS_ALLOCATED) ?? 0,
    element: pixel,
    frames: [],
  };

  if (pixel.length !== undefined) {
    // YBR_FULL_422 native data holds 2 samples per pixel (PS3.3 C.7.6.3.1.2).
    const ybr422 = attrs.get(PHOTOMETRIC)?.toString('latin1').trim() === 'YBR_FULL_422' && layout.samplesPerPixel === 3;
    const bits = layout.rows * layout.columns * (ybr422 ? 2 : layout.samplesPerPixel) * layout.bitsAllocated;
    if (layout.numberOfFrames === 1) {
      // One frame: the whole value, whatever its size (odd-length padding included).
      layout.frames.push(pixel.length > 0 ? [{ start: pixel.valueOffset, end: pixel.valueOffset + pixel.length - 1 }] : []);
      return layout;
    }
    if (bits === 0) throw new PixelDataUnavailable('not-implemented', 'Rows, Columns or Bits Allocated missing: cannot size the frames');
    if (bits % 8 !== 0 && layout.numberOfFrames > 1) {
      throw new PixelDataUnavailable('not-implemented', 'frames of 1-bit pixel data that are not byte-aligned cannot be cut out yet');
    }
    const frameBytes = Math.ceil(bits / 8);
    const have = Math.min(layout.numberOfFrames, Math.floor(pixel.length / frameBytes));
    for (let k = 0; k < have; k++) {
      const start = pixel.valueOffset + k * frameBytes;
      layout.frames.push([{ start, end: start + frameBytes - 1 }]);
    }
    return layout;
  }

  // Encapsulated (PS3.5 A.4): Basic Offset Table item, then one item per fragment, then E0DD.
  let pos = pixel.valueOffset;
  let bot: number[] | undefined;
  const fragments: Array<{ itemOffset: number; start: number; length: number; head: Buffer }> = [];
  let firstFragmentItem = -1;
  for (let i = 0; ; i++) {
    const h = await r.bytes(pos, 8);
    const group = h.readUInt16LE(0);
    const elem = h.readUInt16LE(2);
    const len = h.readUInt32LE(4);
    if (group !== 0xfffe) throw new CorruptError(`expected an item in encapsulated Pixel Data at byte ${pos}`);
    if (elem === 0xe0dd) break;
    if (elem !== 0xe000 || len === UNDEFINED) throw new CorruptError(`bad item in encapsulated Pixel Data at byte ${pos}`);
    if (pos + 8 + len > r.size) throw new CorruptError('encapsulated Pixel Data runs past the end of the object');
    if (i === 0) {
      if (len > 0 && len % 4 === 0) {
        const b = await readRange(storage, key, { start: pos + 8, end: pos + 8 + len - 1 });
        bot = [];
        for (let o = 0; o < len; o += 4) bot.push(b.readUInt32LE(o));
      }
    } else {
      if (firstFragmentItem < 0) firstFragmentItem = pos;
      const head = len >= 4 ? Buffer.from(await r.bytes(pos + 8, 4)) : Buffer.alloc(0);
      fragments.push({ itemOffset: pos - firstFragmentItem, start: pos + 8, length: len, head });
    }
    pos += 8 + len;
  }
  const range = (f: (typeof fragments)[number]): ByteRange[] => (f.length > 0 ? [{ start: f.start, end: f.start + f.length - 1 }] : []);
  const nFrames = layout.numberOfFrames;
  if (fragments.length === 0) return layout;
  if (nFrames === 1) {
    layout.frames = [fragments.flatMap(range)];
    layout.mapping = 'single-frame';
  } else if (bot && bot.length === nFrames) {
    layout.frames = bot.map((off, k) => {
      const next = k + 1 < bot!.length ? bot![k + 1]! : Number.POSITIVE_INFINITY;
      return fragments.filter((f) => f.itemOffset >= off && f.itemOffset < next).flatMap(range);
    });
    layout.mapping = 'basic-offset-table';
  } else if (fragments.length === nFrames) {
    layout.frames = fragments.map(range);
    layout.mapping = 'one-fragment-per-frame';
  } else {
    // No usable offset table and more fragments than frames: a frame starts with a fragment
    // whose first bytes are a JPEG / JPEG-LS SOI (FFD8) or a JPEG 2000 / HTJ2K SOC+SIZ (FF4F FF51).
    const starts = fragments.map((f, i) => (isFrameStart(f.head) ? i : -1)).filter((i) => i >= 0);
    if (starts.length !== nFrames || starts[0] !== 0) {
      throw new PixelDataUnavailable(
        'not-implemented',
        `cannot tell the ${nFrames} frames apart: ${fragments.length} fragments, no usable Basic Offset Table and no frame start markers (Extended Offset Table not read yet)`,
      );
    }
    layout.frames = starts.map((s, k) => fragments.slice(s, starts[k + 1] ?? fragments.length).flatMap(range));
    layout.mapping = 'frame-start-markers';
  }
  return layout;
}

function isFrameStart(head: Buffer): boolean {
  if (head.length < 2) return false;
  if (head[0] === 0xff && head[1] === 0xd8) return true;
  return head.length >= 4 && head[0] === 0xff && head[1] === 0x4f && head[2] === 0xff && head[3] === 0x51;
}

/** Streams byte ranges of one object one after the other (a frame made of fragments). */
export function rangesStream(storage: RangeStore, key: string, ranges: ByteRange[]): Readable {
  return Readable.from(
    (async function* () {
      for (const range of ranges) {
        for await (const c of await storage.get(key, range)) yield c as Buffer;
      }
    })(),
    { objectMode: false },
  );
}

export function rangesLength(ranges: ByteRange[]): number {
  return ranges.reduce((n, r) => n + (r.end! - r.start + 1), 0);
}
