import dcmjs from 'dcmjs';
import { decodeText, unknownCharacterSets } from './charset.js';
import type { ParsedDataset, ParsedElement } from './dicom-json.js';
import { vrOf } from './dictionary.js';
import { fileMetaPrefix } from './part10.js';
import { TS } from './transfer-syntax.js';
import { readLegacyValue, withoutPadding } from './vr-values.js';

/**
 * The one dcmjs parse of a Part 10 file (header worker and WADO-RS metadata alike), with values
 * read the way the node serves and indexes them:
 *
 * - text (SH, LO, ST, LT, UT, UC, PN) decoded per Specific Character Set by charset.ts, which
 *   knows the ISO 2022 code extensions; dcmjs's own decoding cannot (one TextDecoder per data
 *   set, no escapes, and the text of defined-length sequence items read as Latin-1). dcmjs is
 *   therefore made to hand over text as ISO 8859-1, i.e. byte for byte, and the bytes are decoded
 *   here; each sequence item in the (0008,0005) of its own or its parent's;
 * - padding removed per VR (vr-values.ts withoutPadding): trailing NUL/space everywhere,
 *   leading spaces where PS3.5 Table 6.2-1 says they are not significant;
 * - legacy forms normalised where unambiguous: ACR-NEMA DA "1997.04.24" and TM "10:22:33".
 *
 * - OL, OV, SV and UV, which dcmjs 0.51 reads as UN, get their own VR back (from the dictionary):
 *   OL/OV as little-endian bytes, SV/UV as 64-bit integers (BigInt).
 *
 * (0008,0005) itself keeps what dcmjs makes of it (ISO_IR 192): the values are now UTF-8.
 */

export interface ReadOptions {
  untilTag: string;
  includeUntilTagValue: boolean;
  ignoreErrors: boolean;
  noCopy: boolean;
}

export interface ReadResult {
  meta: ParsedDataset;
  dict: ParsedDataset;
  /** Terms of (0008,0005) not known to the decoder (read as the default repertoire). */
  unknownCharacterSets: string[];
}

const SPECIFIC_CHARACTER_SET = '00080005';
const TEXT_VRS = new Set(['SH', 'LO', 'ST', 'LT', 'UT', 'UC', 'PN']);
/** Text VRs holding one value, in which a backslash is text (PS3.5 6.2). */
const SINGLE_VALUED = new Set(['ST', 'LT', 'UT']);
const STRING_VRS = new Set(['AE', 'AS', 'CS', 'DA', 'DT', 'TM', 'UR']);

dcmjs.log.setLevel('silent');
dcmjs.log.getLogger('validation.dcmjs').setLevel('silent');

interface StreamProto {
  setDecoder(d: unknown): void;
}
const streamProto = (dcmjs.data as unknown as { ReadBufferStream: { prototype: StreamProto } }).ReadBufferStream.prototype;
const switchDecoder = streamProto.setDecoder;

/**
 * dcmjs's readFile with text kept as bytes: its streams start with a Latin-1 decoder (byte for
 * byte in Node) and switch on (0008,0005); the switch is held off for this synchronous call only.
 */
function readKeepingBytes(buf: ArrayBuffer, opts: ReadOptions): { meta: ParsedDataset; dict: ParsedDataset } {
  streamProto.setDecoder = () => {};
  try {
    return (dcmjs.data.DicomMessage.readFile as (b: ArrayBuffer, o: ReadOptions) => { meta: ParsedDataset; dict: ParsedDataset })(
      buf,
      opts,
    );
  } finally {
    streamProto.setDecoder = switchDecoder;
  }
}

export function readPart10(buf: ArrayBuffer, opts: ReadOptions): ReadResult {
  let parsed: { meta: ParsedDataset; dict: ParsedDataset };
  try {
    parsed = readKeepingBytes(buf, opts);
  } catch (err) {
    // dcmjs refuses a (0008,0005) with several values or a term it does not map, although it
    // decodes no text here: read again past that; decodeText handles every term itself.
    if (!/character set/i.test(err instanceof Error ? err.message : String(err))) throw err;
    parsed = readKeepingBytes(buf, { ...opts, ignoreErrors: true });
  }
  const unknown = new Set<string>();
  const bigEndian = firstString(parsed.meta['00020010']) === TS.ExplicitVRBigEndian;
  normalizeDataset(parsed.dict, [], unknown, bigEndian);
  return { meta: parsed.meta, dict: parsed.dict, unknownCharacterSets: [...unknown] };
}

/**
 * A bare data set (a DIMSE identifier: no preamble, no file meta) in `transferSyntaxUid`, read as
 * readPart10 reads a file, naturalized (keyword names): the one decoding of text per Specific
 * Character Set for what arrives over the network too. `characterSets` are the terms of its
 * (0008,0005) as sent (the naturalized value says ISO_IR 192: the text is now Unicode).
 */
export function readDataSet(bytes: Uint8Array, transferSyntaxUid: string): { elements: Record<string, unknown>; characterSets: string[] } {
  const file = Buffer.concat([fileMetaPrefix({ sopClassUid: '', sopInstanceUid: '', transferSyntaxUid }), bytes]);
  const read = readPart10(file.buffer.slice(file.byteOffset, file.byteOffset + file.length) as ArrayBuffer, {
    untilTag: '',
    includeUntilTagValue: false,
    ignoreErrors: false,
    noCopy: false,
  });
  const characterSets = characterSetsOf(read.dict[SPECIFIC_CHARACTER_SET]) ?? [];
  return { elements: dcmjs.data.DicomMetaDictionary.naturalizeDataset(read.dict as never) as Record<string, unknown>, characterSets };
}

function asArray(v: unknown): unknown[] {
  return v === undefined || v === null ? [] : Array.isArray(v) ? v : [v];
}

function characterSetsOf(e: ParsedElement | undefined): string[] | undefined {
  if (!e) return undefined;
  return asArray(e._rawValue ?? e.Value).map((v) => String(v ?? '').trim());
}

function firstString(e: ParsedElement | undefined): string | undefined {
  const v = asArray(e?._rawValue ?? e?.Value)[0];
  return typeof v === 'string' ? v.replace(/[\0 ]+$/, '') : undefined;
}

/** VRs dcmjs 0.51 does not know and reads as UN (it does know UV, but reads it only when so labelled). */
const WIDE_BINARY: Record<string, number> = { OL: 4, OV: 8, SV: 8, UV: 8 };

function bytesOf(v: unknown): Buffer {
  return Buffer.concat(
    asArray(v).flatMap((p) =>
      p instanceof ArrayBuffer ? [Buffer.from(p)] : ArrayBuffer.isView(p) ? [Buffer.from(p.buffer, p.byteOffset, p.byteLength)] : [],
    ),
  );
}

/** An element dcmjs read as UN whose dictionary VR is OL, OV, SV or UV gets that VR and its value back. */
function restoreWideBinary(tag: string, e: ParsedElement, bigEndian: boolean): void {
  const vr = vrOf(tag);
  const width = vr ? WIDE_BINARY[vr] : undefined;
  if (!vr || !width) return;
  const bytes = Buffer.from(bytesOf(e.Value));
  if (bigEndian) for (let i = 0; i + width <= bytes.length; i += width) bytes.subarray(i, i + width).reverse();
  e.vr = vr;
  if (vr === 'OL' || vr === 'OV') {
    e.Value = [bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)];
    return;
  }
  const values: bigint[] = [];
  for (let i = 0; i + 8 <= bytes.length; i += 8) values.push(vr === 'SV' ? bytes.readBigInt64LE(i) : bytes.readBigUInt64LE(i));
  e.Value = values;
}

function normalizeDataset(dict: ParsedDataset, inherited: string[], unknown: Set<string>, bigEndian: boolean): void {
  const terms = characterSetsOf(dict[SPECIFIC_CHARACTER_SET]) ?? inherited;
  for (const t of unknownCharacterSets(terms)) unknown.add(t);
  for (const [tag, e] of Object.entries(dict)) {
    if (!e || !e.vr || tag === SPECIFIC_CHARACTER_SET) continue;
    if (e.vr === 'SQ') {
      for (const item of asArray(e.Value)) {
        if (item && typeof item === 'object') normalizeDataset(item as ParsedDataset, terms, unknown, bigEndian);
      }
    } else if (e.vr === 'UN') {
      restoreWideBinary(tag, e, bigEndian);
    } else if (TEXT_VRS.has(e.vr)) {
      decodeElement(e, e.vr, terms);
    } else if (STRING_VRS.has(e.vr)) {
      e.Value = asArray(e.Value).map((v) => (typeof v === 'string' ? readLegacyValue(e.vr!, withoutPadding(e.vr!, v)) : v));
    }
  }
}

/** The element's bytes as dcmjs read them (its values, split at backslashes, joined back). */
function rawText(e: ParsedElement): string {
  const raw = e._rawValue ?? e.Value;
  return asArray(raw)
    .map((v) => (typeof v === 'string' ? v : ''))
    .join('\\');
}

function decodeElement(e: ParsedElement, vr: string, terms: string[]): void {
  const text = decodeText(Buffer.from(rawText(e), 'latin1'), terms, vr === 'PN');
  if (SINGLE_VALUED.has(vr)) {
    const v = withoutPadding(vr, text);
    e.Value = v === '' ? [] : [v];
    return;
  }
  const values = text.split('\\').map((v) => withoutPadding(vr, v));
  if (values.length === 1 && values[0] === '') {
    e.Value = [];
    return;
  }
  e.Value = vr === 'PN' ? values.map(personName) : values;
}

/** A PN value to its DICOM JSON object: component groups Alphabetic=Ideographic=Phonetic. */
function personName(v: string): Record<string, string> {
  const [Alphabetic, Ideographic, Phonetic] = v.split('=').map((g) => withoutPadding('PN', g));
  const out: Record<string, string> = {};
  if (Alphabetic) out.Alphabetic = Alphabetic;
  if (Ideographic) out.Ideographic = Ideographic;
  if (Phonetic) out.Phonetic = Phonetic;
  return out;
}
