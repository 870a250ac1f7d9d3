import dcmjs from 'dcmjs';

/**
 * The one tag dictionary (PS3.6): keywords ↔ tags ↔ VR, wrapped from dcmjs's own dictionary
 * (DicomMetaDictionary.nameMap) rather than written again, as dcm4che generates its Tag/Keyword
 * classes from the standard. Code outside src/dicom names attributes by keyword through this module
 * and writes no hex tag of its own.
 *
 * Tags are the DICOM JSON form, 8 upper-case hex digits ('00100020'); tagNumber gives the
 * (group << 16 | element) number binary walkers compare with. Repeating-group entries (60xx, 50xx)
 * are not in the keyword map: they name no single tag.
 */

interface Entry {
  keyword: string;
  tag: string;
  vr: string;
}

const byKeyword = new Map<string, Entry>();
const byTag = new Map<string, Entry>();
for (const [name, e] of Object.entries(dcmjs.data.DicomMetaDictionary.nameMap)) {
  const t = e.tag.replace(/[(),]/g, '').toUpperCase();
  if (!/^[0-9A-F]{8}$/.test(t)) continue;
  const entry = { keyword: name, tag: t, vr: e.vr };
  byKeyword.set(name, entry);
  if (!byTag.has(t)) byTag.set(t, entry);
}

function entryOf(keyword: string): Entry {
  const e = byKeyword.get(keyword);
  // A misspelt keyword is a programming error: fail where the constant is declared (module load).
  if (!e) throw new Error(`unknown DICOM keyword ${keyword}`);
  return e;
}

/** The DICOM JSON tag of a keyword: tag('PatientID') === '00100020'. Throws on an unknown keyword. */
export function tag(keyword: string): string {
  return entryOf(keyword).tag;
}

/** The tag of a keyword as a number: tagNumber('PixelData') === 0x7fe00010. */
export function tagNumber(keyword: string): number {
  return Number.parseInt(entryOf(keyword).tag, 16);
}

/** '00100020' (or 0x00100020) back to 'PatientID'; undefined for private and unknown tags. */
export function keyword(t: string | number): string | undefined {
  return byTag.get(normalize(t))?.keyword;
}

/**
 * The dictionary VR of a tag, undefined when unknown. Ambiguous VRs keep dcmjs's spelling
 * ('ox' for OB or OW, 'xs' for US or SS): the encoding decides, not the dictionary.
 */
export function vrOf(t: string | number): string | undefined {
  return byTag.get(normalize(t))?.vr;
}

function normalize(t: string | number): string {
  return typeof t === 'number' ? (t >>> 0).toString(16).toUpperCase().padStart(8, '0') : t.replace(/[(),\s]/g, '').toUpperCase();
}

/**
 * Tags by keyword for a module's own table: tags('Rows', 'Columns') gives { Rows: '00280010',
 * Columns: '00280011' }. Unknown keywords throw when the module loads.
 */
export function tags<const K extends string>(...keywords: K[]): Readonly<Record<K, string>> {
  return Object.fromEntries(keywords.map((k) => [k, tag(k)])) as Record<K, string>;
}
