import type { ReportContent, ReportFinding, ReportState } from '../content.js';

/** Display forms of report values: DICOM and model vocabularies become what a reader expects. */

/**
 * Drops C0/C1 control characters (kept: line breaks) that free text from a model or a modality
 * may carry; they have no glyph and would show as boxes or break line wrapping.
 */
export function clean(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .replace(/\t/g, ' ')
    .replace(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g, '')
    .trim();
}

/**
 * DICOM PN (PS3.5 6.2.1) "Family^Given^Middle^Prefix^Suffix", possibly with ideographic and
 * phonetic groups after "=", as "Family, Prefix Given Middle, Suffix". The alphabetic group is
 * shown; the others only when it is empty (DejaVu Sans has no CJK glyphs).
 */
export function personName(pn: string | null): string {
  if (!pn) return '—';
  const groups = pn.split('=').map((g) => g.trim());
  const group = groups.find((g) => g.replace(/\^/g, '').trim() !== '') ?? '';
  const [family = '', given = '', middle = '', prefix = '', suffix = ''] = group.split('^').map((c) => clean(c));
  const first = [prefix, given, middle].filter(Boolean).join(' ');
  let out = [family, first].filter(Boolean).join(', ');
  if (suffix) out += `, ${suffix}`;
  return out || '—';
}

/** DA "YYYYMMDD" as "YYYY-MM-DD"; anything else as given (a reader should still see it). */
export function dicomDate(da: string | null): string {
  if (!da) return '—';
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(da.trim());
  return m ? `${m[1]}-${m[2]}-${m[3]}` : clean(da);
}

/** TM "HHMMSS.FFFFFF" (any prefix of it) as "HH:MM". */
export function dicomTime(tm: string | null): string {
  if (!tm) return '';
  const m = /^(\d{2}):?(\d{2})?/.exec(tm.trim());
  return m ? `${m[1]}:${m[2] ?? '00'}` : clean(tm);
}

/** ISO 8601 instant in UTC to the minute, so the PDF reads the same wherever it was rendered. */
export function instant(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return clean(iso);
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

export function sex(s: string | null): string {
  switch (s?.trim().toUpperCase()) {
    case 'M':
      return 'Male';
    case 'F':
      return 'Female';
    case 'O':
      return 'Other';
    case undefined:
    case '':
      return '—';
    default:
      return clean(s!);
  }
}

/** Model confidence 0–1 as a whole percentage; null means a radiologist wrote the finding. */
export function confidence(c: number | null): string {
  if (c === null) return 'written by radiologist';
  if (!Number.isFinite(c) || c < 0 || c > 1) return 'model confidence unknown';
  return `model confidence ${Math.round(c * 100)}%`;
}

const SUPERSCRIPT: Record<string, string> = { '2': '²', '3': '³' };
const UCUM_DISPLAY: Record<string, string> = {
  "[hnsf'U]": 'HU',
  '1': '',
  '{ratio}': '',
  cm3: 'cm³',
  mm3: 'mm³',
  ml: 'mL',
  mL: 'mL',
  Cel: '°C',
  deg: '°',
};

/** UCUM code as printed: HU for Hounsfield units, superscript powers for areas and volumes. */
export function unit(ucum: string): string {
  const u = clean(ucum);
  if (u in UCUM_DISPLAY) return UCUM_DISPLAY[u]!;
  return u.replace(/^([a-zA-Z]+)([23])$/, (_m, base: string, p: string) => `${base}${SUPERSCRIPT[p]}`);
}

/** Measurement values keep what precision matters: two decimals, three significant digits below 1. */
export function measurementValue(v: number): string {
  if (!Number.isFinite(v)) return '—';
  if (v !== 0 && Math.abs(v) < 1) return String(Number(v.toPrecision(3)));
  return String(Math.round(v * 100) / 100);
}

export function laterality(l: ReportFinding['laterality']): string | null {
  if (!l || l === 'not_applicable') return null;
  return l.charAt(0).toUpperCase() + l.slice(1);
}

export function capitalised(s: string | null): string | null {
  return s ? s.charAt(0).toUpperCase() + s.slice(1) : null;
}

/** The first 12 hex digits identify a model file for a reader; the SR carries the full hash. */
export function shortSha(sha: string | null): string {
  return sha ? sha.slice(0, 12) : 'unknown';
}

/** The signer as a reader sees the name: "Jane Doe, MD" where known, else the PN shown as a name. */
export function signerName(s: NonNullable<ReportContent['signer']>): string {
  return s.display ? clean(s.display) : personName(s.name);
}

export function isSigned(state: ReportState): boolean {
  return state === 'final' || state === 'amended';
}

export const AI_DRAFT_BANNER = 'AI DRAFT — not reviewed — not for diagnostic use';

/** Title shared by the PDF metadata and the DICOM Document Title. */
export function documentTitle(c: ReportContent): string {
  const kind = isSigned(c.state) ? 'AI-assisted radiology report' : 'AI draft radiology report';
  return `${kind}: ${clean(c.procedure)}`;
}
