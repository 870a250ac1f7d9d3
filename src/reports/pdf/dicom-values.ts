/**
 * Values copied from the report into DICOM attributes, made valid for their VR (PS3.5 6.2): the
 * report content holds what the index kept, which is usually but not always conformant.
 */

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** DA, TM and DT of an instant, in UTC (DT says so with its offset). */
export function dicomDateTime(d: Date): { da: string; tm: string; dt: string } {
  const da = `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}`;
  const tm = `${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}`;
  return { da, tm, dt: `${da}${tm}.${pad(d.getUTCMilliseconds(), 3)}+0000` };
}

/** A DA value, or empty (type 2) when the stored one is not a date. */
export function daOrEmpty(v: string | null): string {
  return v && /^\d{8}$/.test(v.trim()) ? v.trim() : '';
}

/** A TM value, or empty (type 2) when the stored one is not a time. */
export function tmOrEmpty(v: string | null): string {
  return v && /^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$/.test(v.trim()) ? v.trim() : '';
}

/** Patient's Sex is an enumerated value (PS3.3 C.7.1.1): M, F or O, else empty. */
export function sexOrEmpty(v: string | null): string {
  const s = v?.trim().toUpperCase() ?? '';
  return s === 'M' || s === 'F' || s === 'O' ? s : '';
}

/**
 * Single-valued text: a backslash would split the value (VM > 1) and control characters are not
 * allowed in SH/LO/PN; values are clipped to the VR's maximum length in characters.
 */
export function text(v: string | null, max: number): string {
  if (!v) return '';
  return [...v.replace(/\\/g, '/').replace(/[\u0000-\u001f\u007f]/g, ' ').trim()].slice(0, max).join('');
}
