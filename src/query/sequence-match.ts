import type { Db } from '../db/connection.js';
import type { SequenceMatch } from '../catalog/query/conditions.js';
import { readSequenceItems } from '../catalog/query/sequence-items.js';
import type { AttributeDef } from './attributes.js';
import { parseValueMatch, type MatchOptions } from './match.js';

/**
 * Sequence Matching (PS3.4 C.2.2.2.6): a query with item keys of one sequence matches when one
 * item of the stored sequence matches all of them, each with the usual rules for its VR (single
 * value, wildcard, list, universal). The index (src/catalog/query/sequence-items.ts) writes the
 * subquery over sequence_items and reads the stored items; values are bound parameters, as
 * everywhere in the index.
 */

export interface ItemCondition {
  item: AttributeDef;
  value: string;
}

/** The condition for the item keys of one sequence, or undefined when all are universal. */
export function parseSequenceMatch(seq: AttributeDef, conds: ItemCondition[], opts: MatchOptions): SequenceMatch | undefined {
  const items: SequenceMatch['items'] = [];
  for (const c of conds) {
    const match = parseValueMatch(c.item, c.value, opts);
    if (match) items.push({ tag: c.item.tag, match });
  }
  if (!items.length) return undefined;
  return { kind: 'sequence', sequence: { tag: seq.tag, level: seq.level === 'series' ? 'series' : 'study' }, items };
}

/** One stored item: item keyword → value. */
export type StoredItem = Record<string, string>;

/** Lookup key of one owner's sequence. */
export function ownerKey(seq: AttributeDef, studyPk: unknown, seriesPk: unknown): string {
  return `${seq.tag}:${seq.level === 'series' ? `se${String(seriesPk)}` : `st${String(studyPk)}`}`;
}

/**
 * The stored items of `sequences` for the given studies and series, keyed by ownerKey, items in
 * their stored order. One query per 500 owners, never one per row.
 */
export async function loadSequenceItems(
  db: Db,
  sequences: AttributeDef[],
  studyPks: number[],
  seriesPks: number[],
): Promise<Map<string, StoredItem[]>> {
  const bySeqTag = new Map(sequences.map((s) => [s.tag, s]));
  const studyTags = sequences.filter((s) => s.level === 'study').map((s) => s.tag);
  const seriesTags = sequences.filter((s) => s.level === 'series').map((s) => s.tag);
  const rows = await readSequenceItems(db, studyTags, seriesTags, studyPks, seriesPks);
  const grouped = new Map<string, Map<number, StoredItem>>();
  for (const r of rows) {
    const seq = bySeqTag.get(r.sequence_tag);
    const item = seq?.items?.find((a) => a.tag === r.item_tag);
    if (!seq || !item) continue;
    const key = ownerKey(seq, r.study_pk, r.series_pk);
    let items = grouped.get(key);
    if (!items) grouped.set(key, (items = new Map()));
    const index = Number(r.item_index);
    let values = items.get(index);
    if (!values) items.set(index, (values = {}));
    values[item.keyword] = r.value;
  }
  const out = new Map<string, StoredItem[]>();
  for (const [key, items] of grouped)
    out.set(
      key,
      [...items.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => v),
    );
  return out;
}
