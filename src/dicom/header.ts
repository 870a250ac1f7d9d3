import fs from 'node:fs/promises';
import dcmjs from 'dcmjs';
import type { DicomJsonAttribute, ParsedElement } from './dicom-json.js';
import type { DicomHeader, ParseOutcome } from './header-types.js';
import type { ByteSource } from './structure.js';
import { INDEXED_SEQUENCES, ITEMS_MAX, type SequenceItems } from './indexed-sequences.js';
import { readPart10 } from './read-dataset.js';
import { bufferSource, checkStructure, fileSource, metaTransferSyntax, StructureError } from './structure.js';

/**
 * Reads the Part 10 meta and the index attributes of a file without reading its pixel data:
 * parsing stops at (7FE0,0010). Only as much of the file as the header needs is read — a prefix
 * that grows until the header parses — so a 1 GB multi-frame costs a few hundred KB here.
 *
 * Runs inside a worker thread (see parse-pool.ts), because a hostile file can make any parser
 * recurse deeply or allocate a lot; the worker's resource limits contain that.
 */

const PIXEL_DATA = '7FE00010';
// Headers before Pixel Data are a few KB; a bigger first read only costs time on every instance.
const FIRST_READ = 64 * 1024;

/** dcmjs's parse (ParsedElement) with Value always an array, as readFile gives it. */
type JsonElement = DicomJsonAttribute & Pick<ParsedElement, '_rawValue'>;
type JsonDict = Record<string, JsonElement | undefined>;

interface DicomDictLike {
  meta: JsonDict;
  dict: JsonDict;
}

const readOptions = { untilTag: PIXEL_DATA, includeUntilTagValue: false, ignoreErrors: false, noCopy: true };

function str(d: JsonDict, tag: string): string | undefined {
  const v = d[tag]?.Value?.[0];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'object') return personName(v as Record<string, unknown>);
  const s = String(v).trim();
  return s === '' ? undefined : s;
}

/** DICOM JSON PN object back to its string form: Alphabetic=Ideographic=Phonetic. */
function personName(pn: Record<string, unknown>): string | undefined {
  const groups = [pn.Alphabetic, pn.Ideographic, pn.Phonetic].map((g) => (typeof g === 'string' ? g : ''));
  while (groups.length > 1 && groups[groups.length - 1] === '') groups.pop();
  const s = groups.join('=').trim();
  return s === '' ? undefined : s;
}

/**
 * A UID as encoded. dcmjs formats UI values by deleting every character but digits and dots, so
 * `1.2.3ZZZ` would read as `1.2.3`, a different (and maybe existing) instance: the raw value is
 * taken instead, only its trailing padding removed, and left for validation to refuse.
 */
function uid(d: JsonDict, tag: string): string | undefined {
  const e = d[tag];
  if (!e) return undefined;
  const raw = e._rawValue ?? e.Value;
  const values = Array.isArray(raw) ? raw : raw === undefined || raw === null ? [] : [raw];
  // More than one value (a backslash in the element) stays visible as one invalid UID.
  const s = values
    .map((v) => String(v ?? ''))
    .join('\\')
    .replace(/[\0 ]+$/, '');
  return s === '' ? undefined : s;
}

function int(d: JsonDict, tag: string): number | undefined {
  const v = d[tag]?.Value?.[0];
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'number' ? v : Number.parseInt(String(v).trim(), 10);
  return Number.isFinite(n) && Number.isSafeInteger(n) ? n : undefined;
}

function multi(d: JsonDict, tag: string): string | undefined {
  const vals = d[tag]?.Value;
  if (!vals || vals.length === 0) return undefined;
  return vals.map((v) => String(v ?? '').trim()).join('\\');
}

/** The items of the indexed sequences (indexed-sequences.ts): only their listed attributes. */
function sequenceItems(d: JsonDict): SequenceItems {
  const out: SequenceItems = {};
  for (const seq of INDEXED_SEQUENCES) {
    const items = d[seq.tag]?.Value;
    if (!Array.isArray(items)) continue;
    const kept: Array<Record<string, string>> = [];
    for (const item of items.slice(0, ITEMS_MAX)) {
      if (!item || typeof item !== 'object') continue;
      const values: Record<string, string> = {};
      for (const a of seq.items) {
        const v = str(item as JsonDict, a.tag);
        if (v !== undefined) values[a.tag] = v;
      }
      kept.push(values);
    }
    if (kept.length) out[seq.tag] = kept;
  }
  return out;
}

export function headerFromDict(parsed: DicomDictLike, warnings: string[]): DicomHeader {
  const m = parsed.meta;
  const d = parsed.dict;
  return {
    transferSyntaxUid: uid(m, '00020010') ?? '',
    mediaStorageSopClassUid: uid(m, '00020002'),
    mediaStorageSopInstanceUid: uid(m, '00020003'),
    sopClassUid: uid(d, '00080016'),
    sopInstanceUid: uid(d, '00080018'),
    studyInstanceUid: uid(d, '0020000D'),
    seriesInstanceUid: uid(d, '0020000E'),
    specificCharacterSet: multi(d, '00080005'),
    patientName: str(d, '00100010'),
    patientId: str(d, '00100020'),
    issuerOfPatientId: str(d, '00100021'),
    patientBirthDate: str(d, '00100030'),
    patientSex: str(d, '00100040'),
    studyDate: str(d, '00080020'),
    studyTime: str(d, '00080030'),
    accessionNumber: str(d, '00080050'),
    referringPhysicianName: str(d, '00080090'),
    studyDescription: str(d, '00081030'),
    studyId: str(d, '00200010'),
    timezoneOffsetFromUtc: str(d, '00080201'),
    modality: str(d, '00080060'),
    seriesNumber: int(d, '00200011'),
    seriesDescription: str(d, '0008103E'),
    bodyPartExamined: str(d, '00180015'),
    performedProcedureStepStartDate: str(d, '00400244'),
    performedProcedureStepStartTime: str(d, '00400245'),
    instanceNumber: int(d, '00200013'),
    rows: int(d, '00280010'),
    columns: int(d, '00280011'),
    numberOfFrames: int(d, '00280008'),
    samplesPerPixel: int(d, '00280002'),
    bitsAllocated: int(d, '00280100'),
    photometricInterpretation: str(d, '00280004'),
    sequences: sequenceItems(d),
    hasPixelData: PIXEL_DATA in d,
    warnings,
  };
}

/** The data set up to Pixel Data, its values decoded and normalised (read-dataset.ts). */
function parseBuffer(buf: ArrayBuffer, warnings: string[]): DicomDictLike {
  const read = readPart10(buf, readOptions);
  // A character set the decoder does not know must not cost the image: its text is indexed in
  // the default repertoire, and the warning says so.
  if (read.unknownCharacterSets.length) {
    warnings.push(`text decoded as default character set: unsupported character set ${read.unknownCharacterSets.join('\\')}`);
  }
  return read as unknown as DicomDictLike;
}

/**
 * The data set's elements before Pixel Data, naturalized by dcmjs (keyword names, numbers, arrays
 * of items): what the render pipeline's decoder reads of an instance (frame-decoder.ts).
 */
export function headerElements(file: Buffer): Record<string, unknown> {
  const whole = file.byteOffset === 0 && file.length === file.buffer.byteLength;
  const ab = (whole ? file.buffer : file.buffer.slice(file.byteOffset, file.byteOffset + file.length)) as ArrayBuffer;
  const parsed = parseBuffer(ab, []);
  return dcmjs.data.DicomMetaDictionary.naturalizeDataset(parsed.dict as never) as Record<string, unknown>;
}

/** The structural walk (structure.ts) over the whole file, and what it measured of the pixel data. */
async function addStructure(header: DicomHeader, source: ByteSource): Promise<void> {
  const info = await checkStructure(source, header.transferSyntaxUid);
  if (info.pixelData) header.pixelData = info.pixelData;
  if (info.unchecked) header.pixelDataUnchecked = info.unchecked;
}

/** As parseHeaderFile, for a whole Part 10 file already in memory (rendering holds the bytes). */
export async function parseHeaderBytes(file: Buffer): Promise<ParseOutcome> {
  if (file.length < 132 || file.toString('latin1', 128, 132) !== 'DICM') {
    return { ok: false, kind: 'unparseable', error: "not a DICOM Part 10 file: no 'DICM' prefix at byte 128" };
  }
  try {
    const warnings: string[] = [];
    // The bytes themselves when the Buffer spans its whole ArrayBuffer: a large file is not copied.
    const whole = file.byteOffset === 0 && file.length === file.buffer.byteLength;
    const ab = (whole ? file.buffer : file.buffer.slice(file.byteOffset, file.byteOffset + file.length)) as ArrayBuffer;
    const header = headerFromDict(parseBuffer(ab, warnings), warnings);
    await addStructure(header, bufferSource(file));
    return { ok: true, header };
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    const error = err instanceof StructureError ? `corrupt DICOM: ${msg}` : `cannot parse DICOM: ${msg}`;
    return { ok: false, kind: 'unparseable', error };
  }
}

export async function parseHeaderFile(path: string, maxHeaderBytes: number): Promise<ParseOutcome> {
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(path, 'r');
    const { size } = await fh.stat();
    if (size < 132) return { ok: false, kind: 'unparseable', error: `not a DICOM Part 10 file: only ${size} bytes` };
    let want = Math.min(size, FIRST_READ);
    const first = Buffer.allocUnsafe(want);
    await fh.read(first, 0, want, 0);
    if (first.toString('latin1', 128, 132) !== 'DICM') {
      return { ok: false, kind: 'unparseable', error: "not a DICOM Part 10 file: no 'DICM' prefix at byte 128" };
    }
    if (!metaTransferSyntax(first)) {
      return { ok: false, kind: 'unparseable', error: 'file meta has no (0002,0010) Transfer Syntax UID' };
    }
    for (;;) {
      const buf = want === first.length ? first : Buffer.allocUnsafe(want);
      const bytesRead = buf === first ? want : (await fh.read(buf, 0, want, 0)).bytesRead;
      const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + bytesRead);
      const warnings: string[] = [];
      try {
        const parsed = parseBuffer(ab as ArrayBuffer, warnings);
        // dcmjs does not always throw on a buffer cut short: a prefix is trusted only when the
        // parse reached Pixel Data; otherwise read more (or the whole file, which is then final).
        if (bytesRead < size && !(PIXEL_DATA in parsed.dict)) throw new Error('header continues past the bytes read');
        const header = headerFromDict(parsed, warnings);
        try {
          await addStructure(header, fileSource(fh, size, buf.subarray(0, bytesRead)));
        } catch (err) {
          if (!(err instanceof StructureError)) throw err;
          return { ok: false, kind: 'unparseable', error: `corrupt DICOM: ${err.message}` };
        }
        return { ok: true, header };
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        // A prefix can end mid-element; only the whole file failing means the file is bad.
        if (bytesRead < size && want < maxHeaderBytes) {
          want = Math.min(size, want * 4, maxHeaderBytes);
          continue;
        }
        if (bytesRead < size) {
          return { ok: false, kind: 'unparseable', error: `header larger than ${maxHeaderBytes} bytes or unparseable: ${msg}` };
        }
        return { ok: false, kind: 'unparseable', error: `cannot parse DICOM: ${msg}` };
      }
    }
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    return { ok: false, kind: 'unparseable', error: `cannot parse DICOM: ${msg}` };
  } finally {
    await fh?.close();
  }
}
