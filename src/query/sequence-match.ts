import type { Db } from '../db/connection.js';
import type { AttributeDef } from './attributes.js';
import { compileMatch, type Fragment, type MatchOptions } from './match.js';

/**
 * Sequence Matching (PS3.4 C.2.2.2.6) over the sequence_items table (migration 004): a query
 * with item keys of one sequence matches when one item of the stored sequence matches all of
 * them, each with the usual rules for its VR (single value, wildcard, list, universal). Every
 * item key with a non-universal value becomes a row of that same item (same owner, sequence and
 * item_index) that must exist; values are bound parameters, as everywhere in the engine.
 */

export interface ItemCondition {
  item: AttributeDef;
  value: string;
}

/** Same owner as the head row: the same series (series-level sequences) or study. */
function ownerOf(seq: AttributeDef, alias: string, outer: { series: string; study: string }): Fragment {
  return seq.level === 'series'
    ? { sql: '?? = ??', bindings: [`${alias}.series_pk`, outer.series] }
    : { sql: '?? = ?? AND ?? IS NULL', bindings: [`${alias}.study_pk`, outer.study, `${alias}.series_pk`] };
}

/** The condition for the item keys of one sequence, or undefined when all are universal. */
export function compileSequenceMatch(seq: AttributeDef, conds: ItemCondition[], opts: MatchOptions, prefix: string): Fragment | undefined {
  const parts: Array<{ alias: string; tag: string; match: Fragment }> = [];
  for (const c of conds) {
    const alias = `${prefix}${parts.length}`;
    const match = compileMatch({ ...c.item, column: `${alias}.value` }, c.value, opts);
    if (match) parts.push({ alias, tag: c.item.tag, match });
  }
  if (!parts.length) return undefined;
  const [first, ...rest] = parts;
  const head = first!.alias;
  const row = (p: { alias: string; tag: string; match: Fragment }, owner: Fragment): Fragment => ({
    sql: `${owner.sql} AND ?? = ? AND ?? = ? AND ${p.match.sql}`,
    bindings: [...owner.bindings, `${p.alias}.sequence_tag`, seq.tag, `${p.alias}.item_tag`, p.tag, ...p.match.bindings],
  });
  const inner = rest.map((p) => {
    // The same item as the head row: same owner, sequence and item number.
    const same = ownerOf(seq, p.alias, { series: `${head}.series_pk`, study: `${head}.study_pk` });
    const r = row(p, same);
    return {
      sql: `EXISTS (SELECT 1 FROM sequence_items AS ${p.alias} WHERE ${r.sql} AND ?? = ??)`,
      bindings: [...r.bindings, `${p.alias}.item_index`, `${head}.item_index`],
    };
  });
  // `owner IN (uncorrelated subquery)` rather than a correlated EXISTS: the item table is
  // searched once through its value index and the owners are then looked up by primary key,
  // instead of one probe per series or study row of the outer query.
  const own = seq.level === 'series' ? { column: 'se.id', pk: `${head}.series_pk`, extra: '' } : { column: 'st.id', pk: `${head}.study_pk`, extra: ` AND ?? IS NULL` };
  const headRow = {
    sql: `?? = ? AND ?? = ? AND ${first!.match.sql}${own.extra}`,
    bindings: [`${head}.sequence_tag`, seq.tag, `${head}.item_tag`, first!.tag, ...first!.match.bindings, ...(own.extra ? [`${head}.series_pk`] : [])],
  };
  return {
    sql: `?? IN (SELECT ?? FROM sequence_items AS ${head} WHERE ${[headRow.sql, ...inner.map((f) => f.sql)].join(' AND ')})`,
    bindings: [own.column, own.pk, ...headRow.bindings, ...inner.flatMap((f) => f.bindings)],
  };
}

/** One stored item: item keyword → value. */
export type StoredItem = Record<string, string>;

interface ItemRow {
  study_pk: number | string;
  series_pk: number | string | null;
  sequence_tag: string;
  item_index: number | string;
  item_tag: string;
  value: string;
}

/** Lookup key of one owner's sequence. */
export function ownerKey(seq: AttributeDef, studyPk: unknown, seriesPk: unknown): string {
  return `${seq.tag}:${seq.level === 'series' ? `se${String(seriesPk)}` : `st${String(studyPk)}`}`;
}

const CHUNK = 500;

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
  const rows: ItemRow[] = [];
  const columns = ['study_pk', 'series_pk', 'sequence_tag', 'item_index', 'item_tag', 'value'];
  if (studyTags.length) {
    for (let at = 0; at < studyPks.length; at += CHUNK) {
      rows.push(
        ...((await db('sequence_items')
          .select(columns)
          .whereIn('study_pk', studyPks.slice(at, at + CHUNK))
          .whereNull('series_pk')
          .whereIn('sequence_tag', studyTags)) as ItemRow[]),
      );
    }
  }
  if (seriesTags.length) {
    for (let at = 0; at < seriesPks.length; at += CHUNK) {
      rows.push(
        ...((await db('sequence_items')
          .select(columns)
          .whereIn('series_pk', seriesPks.slice(at, at + CHUNK))
          .whereIn('sequence_tag', seriesTags)) as ItemRow[]),
      );
    }
  }
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
  for (const [key, items] of grouped) out.set(key, [...items.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => v));
  return out;
}
