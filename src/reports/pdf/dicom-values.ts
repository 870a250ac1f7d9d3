/** Dates and times of the Encapsulated PDF (its other values: ../dicom/vr.ts). */

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** DA, TM and DT of an instant, in UTC (DT says so with its offset). */
export function dicomDateTime(d: Date): { da: string; tm: string; dt: string } {
  const da = `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}`;
  const tm = `${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}`;
  return { da, tm, dt: `${da}${tm}.${pad(d.getUTCMilliseconds(), 3)}+0000` };
}
