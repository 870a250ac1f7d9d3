import type { DicomJsonAttribute as JsonAttribute, DicomJsonDataset as JsonDataset } from '../dicom/dicom-json.js';

/**
 * Typed reads of a DICOM JSON data set (PS3.18 F.2). Values come from our own metadata builder,
 * which keeps a DS/IS that is not a number as the string written in the file, so every numeric
 * read goes through Number() and drops what is not finite instead of trusting the JSON type.
 */

function attr(ds: JsonDataset, tag: string): JsonAttribute | undefined {
  const a: unknown = ds[tag];
  return a && typeof a === 'object' ? (a as JsonAttribute) : undefined;
}

export function values(ds: JsonDataset, tag: string): unknown[] {
  const v = attr(ds, tag)?.Value;
  return Array.isArray(v) ? v : [];
}

export function str(ds: JsonDataset, tag: string): string | undefined {
  const v = values(ds, tag)[0];
  if (typeof v === 'string') return v.trim() === '' ? undefined : v.trim();
  if (typeof v === 'number') return String(v);
  return undefined;
}

export function strs(ds: JsonDataset, tag: string): string[] {
  return values(ds, tag)
    .map((v) => (typeof v === 'string' ? v.trim() : typeof v === 'number' ? String(v) : ''))
    .filter((s) => s !== '');
}

function toNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v.trim());
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

export function num(ds: JsonDataset, tag: string): number | undefined {
  return toNumber(values(ds, tag)[0]);
}

/** All values as numbers, or undefined when any is missing or not a number, or the count is wrong. */
export function nums(ds: JsonDataset, tag: string, count: number): number[] | undefined {
  const vs = values(ds, tag).map(toNumber);
  if (vs.length !== count || vs.some((v) => v === undefined)) return undefined;
  return vs as number[];
}

export function items(ds: JsonDataset, tag: string): JsonDataset[] {
  return values(ds, tag).filter((v): v is JsonDataset => !!v && typeof v === 'object' && !Array.isArray(v));
}
