import type { DicomJsonAttribute, DicomJsonDataset } from './dicom-json.js';
import { keyword } from './dictionary.js';

/**
 * The DICOM JSON model (dicom-json.ts) written as the Native DICOM Model of PS3.19 §A.1, the
 * `application/dicom+xml` representation WADO-RS metadata and QIDO-RS answer in (PS3.18 §8.7.3.4,
 * Annex F.3 maps one to the other):
 *
 *   <NativeDicomModel xmlns="http://dicom.nema.org/PS3.19/models/NativeDICOM" xml:space="preserve">
 *     <DicomAttribute tag="00100010" vr="PN" keyword="PatientName">
 *       <PersonName number="1"><Alphabetic><FamilyName>Doe</FamilyName>…</Alphabetic></PersonName>
 *     </DicomAttribute>
 *     <DicomAttribute tag="00081140" vr="SQ" keyword="ReferencedImageSequence"><Item number="1">…</Item></DicomAttribute>
 *     <DicomAttribute tag="7FE00010" vr="OW" keyword="PixelData"><BulkData uri="…"/></DicomAttribute>
 *   </NativeDicomModel>
 *
 * Values are numbered from 1 in order; a null (empty) value of a multi-valued attribute keeps its
 * number with no content; an attribute without a value has no children. Private attributes get
 * `privateCreator` from their block's creator element when the data set holds it, and the tag
 * `gggg00ee` (as DCMTK's dcm2xml --native-format writes them). Text is UTF-8
 * (the JSON model is already decoded), so the declaration says so.
 */

const PN_COMPONENTS = ['FamilyName', 'GivenName', 'MiddleName', 'NamePrefix', 'NameSuffix'] as const;
const PN_GROUPS = ['Alphabetic', 'Ideographic', 'Phonetic'] as const;

/** Characters XML 1.0 cannot carry at all (C0 controls other than tab, LF, CR) are dropped. */
function esc(s: string): string {
  return s
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

function personName(v: unknown): string {
  if (!v || typeof v !== 'object') return '';
  const pn = v as Record<string, unknown>;
  let out = '';
  for (const g of PN_GROUPS) {
    const text = pn[g];
    if (typeof text !== 'string' || text === '') continue;
    const parts = text.split('^');
    let inner = '';
    PN_COMPONENTS.forEach((c, i) => {
      if (parts[i]) inner += `<${c}>${esc(parts[i]!)}</${c}>`;
    });
    out += `<${g}>${inner}</${g}>`;
  }
  return out;
}

function privateCreator(tag: string, ds: DicomJsonDataset): string | undefined {
  const group = Number.parseInt(tag.slice(0, 4), 16);
  const element = Number.parseInt(tag.slice(4), 16);
  if (group % 2 === 0 || element < 0x1000) return undefined;
  const creatorTag = `${tag.slice(0, 4)}00${tag.slice(4, 6)}`;
  const v = ds[creatorTag]?.Value?.[0];
  return typeof v === 'string' ? v : undefined;
}

function attribute(tag: string, a: DicomJsonAttribute, ds: DicomJsonDataset): string {
  const kw = keyword(tag);
  const creator = privateCreator(tag, ds);
  // PS3.19 §A.1.5: a private element is named by its creator and `gggg00ee` (the block dropped).
  let open = `<DicomAttribute tag="${creator ? `${tag.slice(0, 4)}00${tag.slice(6)}` : tag}" vr="${esc(a.vr)}"`;
  if (kw && !creator) open += ` keyword="${kw}"`;
  if (creator) open += ` privateCreator="${esc(creator)}"`;
  let body = '';
  if (a.BulkDataURI !== undefined) body = `<BulkData uri="${esc(a.BulkDataURI)}"/>`;
  else if (a.InlineBinary !== undefined) body = `<InlineBinary>${esc(a.InlineBinary)}</InlineBinary>`;
  else if (a.Value) {
    a.Value.forEach((v, i) => {
      const n = i + 1;
      if (a.vr === 'SQ') body += `<Item number="${n}">${datasetBody((v ?? {}) as DicomJsonDataset)}</Item>`;
      else if (v === null || v === undefined) body += `<Value number="${n}"/>`;
      else if (a.vr === 'PN') body += `<PersonName number="${n}">${personName(v)}</PersonName>`;
      else body += `<Value number="${n}">${esc(String(v))}</Value>`;
    });
  }
  return `${open}>${body}</DicomAttribute>`;
}

function datasetBody(ds: DicomJsonDataset): string {
  return Object.keys(ds)
    .sort()
    .map((t) => attribute(t, ds[t]!, ds))
    .join('');
}

/** One data set as a Native DICOM Model document. */
export function toNativeXml(ds: DicomJsonDataset): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<NativeDicomModel xmlns="http://dicom.nema.org/PS3.19/models/NativeDICOM" xml:space="preserve">${datasetBody(ds)}</NativeDicomModel>\n`;
}
