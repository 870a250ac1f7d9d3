import type { Db } from '../../db/connection.js';
import { columnMatchSql, type Dialect, type SequenceMatch, type SqlFragment } from './conditions.js';

/**
 * The index side of Sequence Matching (PS3.4 C.2.2.2.6) over the sequence_items table (migration
 * 004): src/query/sequence-match.ts says which item attributes must match and how (a
 * SequenceMatch, conditions.ts); this module writes the subquery that finds the owners (series or
 * study) with one item matching them all, and reads the stored items back for the answers.
 */

type IndexedSequenceRef = SequenceMatch['sequence'];

/** Same owner as the head row: the same series (series-level sequences) or study. */
function ownerOf(seq: IndexedSequenceRef, alias: string, outer: { series: string; study: string }): SqlFragment {
  return seq.level === 'series'
    ? { sql: '?? = ??', bindings: [`${alias}.series_pk`, outer.series] }
    : { sql: '?? = ?? AND ?? IS NULL', bindings: [`${alias}.study_pk`, outer.study, `${alias}.series_pk`] };
}

/**
 * The condition on the outer query's series (`se.id`) or study (`st.id`) for the item keys of one
 * sequence, or undefined when it has no item condition. Every item key with a condition becomes a row of that same item (same owner, sequence and item_index) that must exist.
 */
export function sequenceItemCondition(m: SequenceMatch, prefix: string, dialect: Dialect): SqlFragment | undefined {
  const seq = m.sequence;
  const parts: Array<{ alias: string; tag: string; match: SqlFragment }> = [];
  for (const c of m.items) {
    const alias = `${prefix}${parts.length}`;
    parts.push({ alias, tag: c.tag, match: columnMatchSql(`${alias}.value`, c.match, dialect) });
  }
  if (!parts.length) return undefined;
  const [first, ...rest] = parts;
  const head = first!.alias;
  const row = (p: { alias: string; tag: string; match: SqlFragment }, owner: SqlFragment): SqlFragment => ({
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
  const own =
    seq.level === 'series'
      ? { column: 'se.id', pk: `${head}.series_pk`, extra: '' }
      : { column: 'st.id', pk: `${head}.study_pk`, extra: ` AND ?? IS NULL` };
  const headRow = {
    sql: `?? = ? AND ?? = ? AND ${first!.match.sql}${own.extra}`,
    bindings: [
      `${head}.sequence_tag`,
      seq.tag,
      `${head}.item_tag`,
      first!.tag,
      ...first!.match.bindings,
      ...(own.extra ? [`${head}.series_pk`] : []),
    ],
  };
  return {
    sql: `?? IN (SELECT ?? FROM sequence_items AS ${head} WHERE ${[headRow.sql, ...inner.map((f) => f.sql)].join(' AND ')})`,
    bindings: [own.column, own.pk, ...headRow.bindings, ...inner.flatMap((f) => f.bindings)],
  };
}

/** One stored item attribute, as sequence_items holds it. */
export interface SequenceItemRow {
  study_pk: number | string;
  series_pk: number | string | null;
  sequence_tag: string;
  item_index: number | string;
  item_tag: string;
  value: string;
}

const CHUNK = 500;

/**
 * The stored item rows of the study-level sequences `studyTags` of `studyPks` and the series-level
 * ones `seriesTags` of `seriesPks`. One query per 500 owners, never one per row.
 */
export async function readSequenceItems(
  db: Db,
  studyTags: string[],
  seriesTags: string[],
  studyPks: number[],
  seriesPks: number[],
): Promise<SequenceItemRow[]> {
  const rows: SequenceItemRow[] = [];
  const columns = ['study_pk', 'series_pk', 'sequence_tag', 'item_index', 'item_tag', 'value'];
  if (studyTags.length) {
    for (let at = 0; at < studyPks.length; at += CHUNK) {
      rows.push(
        ...((await db('sequence_items')
          .select(columns)
          .whereIn('study_pk', studyPks.slice(at, at + CHUNK))
          .whereNull('series_pk')
          .whereIn('sequence_tag', studyTags)) as SequenceItemRow[]),
      );
    }
  }
  if (seriesTags.length) {
    for (let at = 0; at < seriesPks.length; at += CHUNK) {
      rows.push(
        ...((await db('sequence_items')
          .select(columns)
          .whereIn('series_pk', seriesPks.slice(at, at + CHUNK))
          .whereIn('sequence_tag', seriesTags)) as SequenceItemRow[]),
      );
    }
  }
  return rows;
}
