/**
 * Text values made safe for their VR (PS3.5 6.2). Report text is data, never markup: nothing is
 * escaped or stripped beyond what the VR forbids, so `<script>` and non-ASCII names reach the
 * file unchanged. What a VR forbids is repaired rather than rejected, because a report must
 * always be publishable:
 * - a backslash in a multi-valued-capable VR (CS, SH, LO, PN) would split the value in two;
 * - control characters are not allowed in the short string VRs (ESC aside, which dcmjs never
 *   needs since it writes UTF-8);
 * - lengths are in characters.
 */

const CONTROL = /[\u0000-\u001f\u007f]/g;

function shortString(value: string, max: number): string {
  const cleaned = value.replace(/\\/g, '/').replace(CONTROL, ' ').trim();
  return Array.from(cleaned).slice(0, max).join('');
}

/** Long String (64 characters). */
export function lo(value: string): string {
  return shortString(value, 64);
}

/** Short Text (1024 characters): as the short strings, for titles. */
export function st(value: string): string {
  return shortString(value, 1024);
}

/** Short String (16 characters). */
export function sh(value: string): string {
  return shortString(value, 16);
}

/** Code String: upper case letters, digits, space and underscore (16 characters). */
export function cs(value: string): string {
  return shortString(value.toUpperCase().replace(/[^A-Z0-9 _]/g, '_'), 16);
}

/**
 * Person Name: kept as stored (its ^ and = separators are structure), each component group at
 * most 64 characters. Only backslashes and control characters are replaced.
 */
export function pn(value: string): string {
  return value
    .replace(/\\/g, '/')
    .replace(CONTROL, ' ')
    .split('=')
    .slice(0, 3)
    .map((group) => Array.from(group).slice(0, 64).join(''))
    .join('=');
}

/**
 * Unlimited Text: anything goes except that trailing spaces are insignificant and may be dropped
 * by readers, so a value is written as given; only NUL is replaced (it ends strings in C readers).
 */
export function ut(value: string): string {
  return value.replace(/\u0000/g, ' ');
}

/** A Decimal String (16 characters) keeping as much precision as fits. */
export function ds(n: number): string {
  if (!Number.isFinite(n)) throw new RangeError(`DS value must be finite: ${n}`);
  for (let digits = 15; digits > 0; digits--) {
    const s = String(Number(n.toPrecision(digits)));
    if (s.length <= 16) return s;
  }
  throw new RangeError(`cannot encode ${n} as DS`);
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** DA from a Date, in UTC (the file says so with TimezoneOffsetFromUTC +0000). */
export function da(d: Date): string {
  return `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}`;
}

/** TM from a Date, in UTC, to the millisecond. */
export function tm(d: Date): string {
  return `${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}`;
}

/** DT from a Date, in UTC with an explicit offset so readers need no TimezoneOffsetFromUTC. */
export function dt(d: Date): string {
  return `${da(d)}${tm(d)}+0000`;
}

/** A DA as stored in the index ("YYYYMMDD" or "YYYY-MM-DD"); anything else is dropped. */
export function daFromStored(value: string | null): string {
  if (!value) return '';
  const digits = value.replace(/-/g, '');
  return /^\d{8}$/.test(digits) ? digits : '';
}

/** A TM as stored ("HHMMSS.frac" or "HH:MM:SS"); anything else is dropped. */
export function tmFromStored(value: string | null): string {
  if (!value) return '';
  const s = value.replace(/:/g, '');
  return /^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$/.test(s) ? s : '';
}

/** True when a value has any character outside 7-bit ASCII. */
export function isNonAscii(value: string): boolean {
  return /[^\u0000-\u007f]/.test(value);
}

/** VRs whose leading spaces are not significant either (PS3.5 Table 6.2-1). */
const LEADING_SPACES_INSIGNIFICANT = new Set(['AE', 'AS', 'CS', 'DA', 'DS', 'DT', 'IS', 'LO', 'PN', 'SH', 'TM']);

/**
 * A string value as read, without its padding (PS3.5 6.2): trailing spaces and NULs for every
 * string VR (NUL is UI's pad byte, and writers pad other VRs with it too), and leading spaces
 * where they are not significant. ST, LT, UT, UC and UR keep leading spaces: there they are text.
 */
export function withoutPadding(vr: string, value: string): string {
  const trailing = value.replace(/[\0 ]+$/, '');
  return LEADING_SPACES_INSIGNIFICANT.has(vr) ? trailing.replace(/^[\0 ]+/, '') : trailing;
}

/**
 * Legacy forms a reader meets in old files, normalised where the meaning is unambiguous: the
 * ACR-NEMA DA "YYYY.MM.DD" (PS3.5 before 1993) and TM "HH:MM:SS[.frac]". Anything else is kept as
 * written: DICOM JSON (PS3.18 F.2) carries the value, not a guess at what it meant.
 */
export function readLegacyValue(vr: string, value: string): string {
  if (vr === 'DA' && /^\d{4}\.\d{2}\.\d{2}$/.test(value)) return value.replace(/\./g, '');
  if (vr === 'TM' && /^\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?$/.test(value)) return value.replace(/:/g, '');
  return value;
}
