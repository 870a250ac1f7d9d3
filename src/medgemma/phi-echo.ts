/**
 * The study's own patient identifiers echoed by the model (pure): where the patient's name, ID or
 * birth date occurs in a text, and the text with them replaced by "[redacted]".
 *
 * - Name (DICOM PN, "Family^Given^Middle^Prefix^Suffix", alphabetic group only): all of its
 *   family/given/middle components of 2+ letters, adjacent in any order and case ("John Doe",
 *   "DOE, JOHN", "doe^john"); a single component when a title or "patient"/"name" precedes it
 *   ("Mr Doe", "patient Doe"), or, for components of 3+ letters, when it is written as a name
 *   (Capitalised or CAPITALS) and does not open a sentence: a patient called White does not turn
 *   "white matter" into PHI, nor a patient called Li "LI-RADS".
 * - ID: the Patient ID as written (any case), 4+ characters, not inside a longer word or number.
 * - Birth date (DICOM DA, YYYYMMDD): as YYYYMMDD, YYYY-MM-DD, YYYY/MM/DD, YYYY.MM.DD, DD/MM/YYYY,
 *   MM/DD/YYYY (also with - or .), with or without leading zeros, and "12 March 1956",
 *   "March 12, 1956", "12 Mar 1956" forms.
 */

export interface PhiContext {
  /** DICOM PN, e.g. "DOE^JOHN". */
  patientName?: string | null;
  patientId?: string | null;
  /** DICOM DA, YYYYMMDD. */
  birthDate?: string | null;
}

export type PhiKind = 'patient_name' | 'patient_id' | 'birth_date';

export interface PhiHit {
  kind: PhiKind;
  start: number;
  end: number;
}

export const REDACTED = '[redacted]';

const MONTHS = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The name's components worth matching: family, given and middle names of 2+ letters. */
export function nameComponents(pn: string): string[] {
  const alphabetic = pn.split('=')[0] ?? '';
  return [
    ...new Set(
      alphabetic
        .split('^')
        .slice(0, 3)
        .flatMap((c) => c.split(/[\s,]+/))
        .map((c) => c.trim())
        .filter((c) => c.replace(/[^\p{L}]/gu, '').length >= 2),
    ),
  ];
}

/** The spellings of a YYYYMMDD date a text may carry. */
export function dateSpellings(da: string): string[] {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(da.trim());
  if (!m) return [];
  const [, y, mm, dd] = m as unknown as [string, string, string, string];
  const month = Number(mm);
  const day = Number(dd);
  if (month < 1 || month > 12 || day < 1 || day > 31) return [];
  const out = new Set<string>([`${y}${mm}${dd}`]);
  for (const sep of ['-', '/', '.']) {
    out.add(`${y}${sep}${mm}${sep}${dd}`);
    for (const [d, mo] of [
      [dd, mm],
      [String(day), String(month)],
    ] as const) {
      out.add(`${d}${sep}${mo}${sep}${y}`);
      out.add(`${mo}${sep}${d}${sep}${y}`);
    }
  }
  const name = MONTHS[month - 1]!;
  for (const mon of [name, name.slice(0, 3)])
    for (const d of [String(day), dd]) {
      out.add(`${d} ${mon} ${y}`);
      out.add(`${mon} ${d}, ${y}`);
      out.add(`${mon} ${d} ${y}`);
    }
  return [...out];
}

function addMatches(out: PhiHit[], text: string, kind: PhiKind, re: RegExp, accept?: (start: number, match: string) => boolean): void {
  for (const m of text.matchAll(re)) {
    // The first group, when there is one, is the part to redact (a title before it stays).
    const start = m[1] !== undefined ? m.index + m[0].indexOf(m[1]) : m.index;
    const phrase = m[1] ?? m[0];
    if (!accept || accept(start, phrase)) out.push({ kind, start, end: start + phrase.length });
  }
}

/** Whether a word at `start` opens a sentence (nothing but blanks since a . ! ? newline or the start). */
function opensSentence(text: string, start: number): boolean {
  for (let i = start - 1; i >= 0; i--) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '"') continue;
    return c === '.' || c === '!' || c === '?' || c === '\n' || c === ':';
  }
  return true;
}

const writtenAsName = (s: string) => /^\p{Lu}/u.test(s);

/** Where the patient's identifiers occur in the text, without overlaps, in text order. */
export function findPhi(text: string, phi: PhiContext): PhiHit[] {
  const hits: PhiHit[] = [];
  const letterEdge = (body: string) => new RegExp(`(?<![\\p{L}\\p{N}])${body}(?![\\p{L}\\p{N}])`, 'giu');
  const components = phi.patientName ? nameComponents(phi.patientName) : [];
  if (components.length) {
    const any = components.map(escape).join('|');
    if (components.length >= 2) {
      const sequence = `(?:${any})(?:[\\s,^]+(?:${any})){${components.length - 1}}`;
      addMatches(hits, text, 'patient_name', letterEdge(sequence));
    }
    const title = `(?:mr|mrs|ms|miss|mx|dr|patient|name)\\.?:?\\s+`;
    addMatches(hits, text, 'patient_name', letterEdge(`${title}(${any})`));
    const alone = components.filter((c) => c.length >= 3);
    if (alone.length)
      addMatches(
        hits,
        text,
        'patient_name',
        letterEdge(`(?:${alone.map(escape).join('|')})`),
        (start, s) => writtenAsName(s) && !opensSentence(text, start),
      );
  }
  const id = phi.patientId?.trim();
  if (id && id.length >= 4) addMatches(hits, text, 'patient_id', letterEdge(escape(id)));
  if (phi.birthDate) {
    const spellings = dateSpellings(phi.birthDate).sort((a, b) => b.length - a.length);
    if (spellings.length) addMatches(hits, text, 'birth_date', letterEdge(`(?:${spellings.map(escape).join('|')})`));
  }
  hits.sort((a, b) => a.start - b.start || b.end - a.end);
  const kept: PhiHit[] = [];
  for (const h of hits) {
    const last = kept[kept.length - 1];
    if (last && h.start < last.end) last.end = Math.max(last.end, h.end);
    else kept.push({ ...h });
  }
  return kept;
}

/** The text with the hits replaced by "[redacted]". */
export function redact(text: string, hits: readonly PhiHit[]): string {
  let out = '';
  let at = 0;
  for (const h of hits) {
    out += text.slice(at, h.start) + REDACTED;
    at = h.end;
  }
  return out + text.slice(at);
}
