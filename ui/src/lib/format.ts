/** Display forms of DICOM values for the screens. Pure, no DOM. */

/** A DICOM person name ("DOE^JOHN^^DR") as people read it: "DOE, JOHN". */
export function personName(pn: string | null | undefined): string {
  if (!pn) return '';
  const [family = '', given = '', middle = ''] = (pn.split('=')[0] ?? '').split('^');
  const rest = [given, middle].filter(Boolean).join(' ');
  return family && rest ? `${family}, ${rest}` : family || rest;
}

/** An ISO timestamp as local date and time, minutes precision. */
export function dateTime(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** A report's state as the worklist says it. */
export function reportLabel(status: string | null | undefined): string {
  switch (status) {
    case 'final':
      return 'signed';
    case 'amended':
      return 'signed (amended)';
    case 'draft':
      return 'AI draft';
    case 'preliminary':
      return 'draft (edited)';
    default:
      return 'none';
  }
}
