import type { Readable } from 'node:stream';
import type { DicomJsonAttribute, DicomJsonDataset, ParsedDataset, ParsedElement } from './dicom-json.js';
import { tag } from './dictionary.js';
import { readPart10 } from './read-dataset.js';
import { isNativePixelEncoding } from './transfer-syntax.js';

/**
 * A stored Part 10 instance to its DICOM JSON (PS3.18 Annex F.2), as WADO-RS metadata serves it:
 *
 * - PN as {Alphabetic, Ideographic, Phonetic}; IS/DS (and the binary numeric VRs) as numbers;
 *   AT as "GGGGEEEE"; sequences nested; an empty value as {"vr": …} without Value; an empty
 *   component of a multi-valued attribute as null.
 * - OB/OW/OF/OD/OL/OV/UN values of at most 1 KiB inline (InlineBinary, base64); larger ones as a
 *   BulkDataURI `<instance URL>/bulkdata/<tag path>`.
 * - Pixel Data (7FE0,0010) has no value here: its BulkDataURI is `<instance URL>/bulkdata/7FE00010`,
 *   which answers application/octet-stream (single part or multipart, with ranges) as every
 *   BulkDataURI must (PS3.18 §10.4.1.1.5). Attributes after Pixel Data (rare trailing padding)
 *   are not read.
 * - Text is decoded per (0008,0005), ISO 2022 code extensions included, and served as UTF-8, so
 *   (0008,0005) reads ISO_IR 192 (DCMTK's dcm2json does the same); padding is removed per VR and
 *   legacy DA/TM forms normalised (read-dataset.ts).
 * - OL/OV inline or as bulk data like the other binary VRs; SV/UV as numbers, or as strings beyond
 *   ±(2^53−1) where a JSON number would lose digits (PS3.18 F.2.3).
 *
 * Headers are read through the storage back end (local, S3, Azure) as a prefix that grows until
 * the parse reaches Pixel Data, and parsed with dcmjs in the main thread. That is acceptable only
 * because every stored file was parsed and structure-checked in the header worker at ingest;
 * moving this into the parse pool is a TODO.
 */

const PIXEL_DATA = tag('PixelData');
const BITS_ALLOCATED = tag('BitsAllocated');
const FIRST_READ = 64 * 1024;
/** A header (or a file without Pixel Data) larger than this is not served as metadata. */
const MAX_HEADER_READ = 64 * 1024 * 1024;
const INLINE_MAX = 1024;

const BINARY = new Set(['OB', 'OW', 'OF', 'OD', 'OL', 'OV', 'UN']);
const NUMERIC = new Set(['IS', 'DS', 'US', 'SS', 'UL', 'SL', 'FL', 'FD', 'UV', 'SV']);

type DcmElement = ParsedElement;
type DcmDict = ParsedDataset;
type JsonAttribute = DicomJsonAttribute;
type JsonDataset = DicomJsonDataset;

/** Where a stored instance's object lies, and its size (a catalog row satisfies it). */
export interface StoredObjectRef {
  storage_key: string;
  size_bytes: number;
  sop_instance_uid: string;
}

/** What reading a header needs of blob storage (BlobStorage satisfies it). */
export interface PrefixStore {
  get(key: string, range?: { start: number; end?: number }): Promise<Readable>;
}

async function readPrefix(storage: PrefixStore, key: string, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const s = await storage.get(key, { start: 0, end: n - 1 });
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** The data set up to Pixel Data of a stored instance. */
export async function readStoredHeader(storage: PrefixStore, inst: StoredObjectRef): Promise<DcmDict> {
  const size = inst.size_bytes;
  let want = Math.min(size, FIRST_READ);
  for (;;) {
    const buf = await readPrefix(storage, inst.storage_key, want);
    const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length) as ArrayBuffer;
    const complete = buf.length >= size;
    try {
      const parsed = readPart10(ab, { untilTag: PIXEL_DATA, includeUntilTagValue: false, ignoreErrors: true, noCopy: false });
      // A prefix is trusted only when the parse reached Pixel Data (header.ts does the same).
      if (complete || PIXEL_DATA in parsed.dict) return parsed.dict;
    } catch (err) {
      if (complete) throw err;
    }
    if (want >= MAX_HEADER_READ) throw new Error(`header of ${inst.sop_instance_uid} larger than ${MAX_HEADER_READ} bytes`);
    want = Math.min(size, want * 4, MAX_HEADER_READ);
  }
}

function toBase64(v: unknown): Buffer | undefined {
  const parts = Array.isArray(v) ? v : [v];
  const bufs: Buffer[] = [];
  for (const p of parts) {
    if (p instanceof ArrayBuffer) bufs.push(Buffer.from(p));
    else if (ArrayBuffer.isView(p)) bufs.push(Buffer.from(p.buffer, p.byteOffset, p.byteLength));
    else if (p === null || p === undefined) continue;
    else return undefined;
  }
  return Buffer.concat(bufs);
}

function number(v: unknown): unknown {
  if (v === null || v === undefined || v === '') return null;
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  const n = Number(String(v).trim());
  // Not a number in the file: kept as written rather than invented.
  return Number.isFinite(n) && String(v).trim() !== '' ? n : String(v);
}

function personName(v: unknown): unknown {
  if (v === null || v === undefined || v === '') return null;
  const src: Record<string, unknown> =
    typeof v === 'object'
      ? (v as Record<string, unknown>)
      : (() => {
          const [Alphabetic, Ideographic, Phonetic] = String(v).split('=');
          return { Alphabetic, Ideographic, Phonetic };
        })();
  const out: Record<string, string> = {};
  for (const k of ['Alphabetic', 'Ideographic', 'Phonetic']) {
    const s = src[k];
    if (typeof s === 'string' && s !== '') out[k] = s;
  }
  return Object.keys(out).length ? out : null;
}

function attributeTag(v: unknown): unknown {
  if (typeof v === 'number') return (v >>> 0).toString(16).toUpperCase().padStart(8, '0');
  if (typeof v === 'string' && v !== '') return v.replace(/[(),\s]/g, '').toUpperCase();
  return null;
}

function valuesOf(e: DcmElement): unknown[] {
  const v = e.Value;
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : [v];
}

/** Values with only nulls are no value at all. */
function withValues(vr: string, values: unknown[]): JsonAttribute {
  return values.some((x) => x !== null) ? { vr, Value: values } : { vr };
}

/**
 * dcmjs's parsed dictionary to PS3.18 F.2 DICOM JSON. `uri` is the instance URL (relative,
 * `/studies/…`) and `path` the tag path of the enclosing sequences, for BulkDataURIs.
 */
export function toDicomJsonDataset(dict: DcmDict, ctx: { uri: string; pixelVr: string }, path: string[] = []): JsonDataset {
  const out: JsonDataset = {};
  for (const tag of Object.keys(dict).sort()) {
    const e = dict[tag];
    if (!e || !/^[0-9A-F]{8}$/i.test(tag)) continue;
    const T = tag.toUpperCase();
    if (T.endsWith('0000') || T.startsWith('0002')) continue; // group lengths, File Meta
    if (T === PIXEL_DATA && path.length === 0) {
      out[T] = { vr: e.vr && BINARY.has(e.vr) ? e.vr : ctx.pixelVr, BulkDataURI: `${ctx.uri}/bulkdata/${T}` };
      continue;
    }
    const vr = e.vr ?? 'UN';
    if (vr === 'SQ') {
      const items = valuesOf(e).map((item, i) => toDicomJsonDataset((item ?? {}) as DcmDict, ctx, [...path, T, String(i)]));
      out[T] = items.length ? { vr, Value: items } : { vr };
    } else if (BINARY.has(vr)) {
      const buf = toBase64(e.Value);
      if (!buf || buf.length === 0) out[T] = { vr };
      else if (buf.length <= INLINE_MAX) out[T] = { vr, InlineBinary: buf.toString('base64') };
      else out[T] = { vr, BulkDataURI: `${ctx.uri}/bulkdata/${[...path, T].join('/')}` };
    } else if (vr === 'PN') {
      out[T] = withValues(vr, valuesOf(e).map(personName));
    } else if (NUMERIC.has(vr)) {
      out[T] = withValues(vr, valuesOf(e).map(number));
    } else if (vr === 'AT') {
      out[T] = withValues(vr, valuesOf(e).map(attributeTag));
    } else {
      const values = valuesOf(e).map((x) => (x === null || x === undefined || x === '' ? null : typeof x === 'string' ? x : String(x)));
      out[T] = withValues(vr, values);
    }
  }
  return out;
}

/** The VR Pixel Data is given in the metadata: OB when encapsulated, OW above 8 bits allocated. */
export function pixelVrFor(dict: DcmDict, transferSyntax: string): string {
  if (!isNativePixelEncoding(transferSyntax)) return 'OB';
  const bits = Number(valuesOf(dict[BITS_ALLOCATED] ?? {})[0]);
  return bits > 8 ? 'OW' : 'OB';
}
