/**
 * CSV answers (RFC 4180) for exports opened in spreadsheets: the audit trail, finding decisions.
 * Cells that a spreadsheet would run as a formula (= + - @ first) are prefixed with a quote
 * mark, since their text comes from users and the model.
 */

function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  let s = typeof v === 'object' ? JSON.stringify(v) : String(v);
  if (/^[=+\-@\t\r]/.test(s) && !/^-?\d+(\.\d+)?(e-?\d+)?$/i.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The header line and one line per row, CRLF-terminated. */
export function toCsv<T>(columns: ReadonlyArray<keyof T & string>, rows: Iterable<T>): string {
  const lines = [columns.join(',')];
  for (const r of rows) lines.push(columns.map((c) => cell(r[c])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}
