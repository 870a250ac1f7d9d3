import type { Db, QueryBuilder, RawBinding } from '../../db/connection.js';
import { attributeMatchSql, dialectOf, type AttributeMatch, type IndexCondition, type SqlFragment } from './conditions.js';
import { sequenceItemCondition } from './sequence-items.js';

/**
 * The index side of the query engine (src/query): the SELECT over patients, studies, series and
 * instances that QIDO-RS and C-FIND answer from. src/query decides what a DICOM query means
 * (attributes, matching rules) and hands over the columns to return and the conditions it parsed
 * (conditions.ts); this module writes them as SQL, joins the tables, orders the rows stably and
 * pages them.
 */

export type SearchLevel = 'study' | 'series' | 'instance';

/** A column to return and the name of its value in the answer rows. */
export interface AnswerColumn {
  column: string;
  as: string;
}

const selectList = (columns: AnswerColumn[]): string[] => columns.map((c) => `${c.column} as ${c.as}`);

export interface IndexSearch {
  level: SearchLevel;
  /** Qualified columns (`st.study_date`; aliases p, st, se, i) with the name each answers under (`StudyDate`). */
  columns: AnswerColumn[];
  /** Also return the owners' keys (`__study_pk`, and `__series_pk` below study level) for sequence items. */
  ownerKeys: boolean;
  where: IndexCondition[];
  scope?: { studyInstanceUid?: string; seriesInstanceUid?: string };
  /** At most this many rows (the caller asks one more than it shows, to know there are more). */
  limit: number;
  offset: number;
}

function baseQuery(db: Db, level: SearchLevel): QueryBuilder {
  switch (level) {
    case 'study':
      return db('studies as st').join('patients as p', 'p.id', 'st.patient_pk');
    case 'series':
      return db('series as se').join('studies as st', 'st.id', 'se.study_pk').join('patients as p', 'p.id', 'st.patient_pk');
    case 'instance':
      return db('instances as i')
        .join('series as se', 'se.id', 'i.series_pk')
        .join('studies as st', 'st.id', 'se.study_pk')
        .join('patients as p', 'p.id', 'st.patient_pk');
  }
}

type Order = { column: string; order: 'asc' | 'desc'; nulls?: 'first' | 'last' };

/** A stable order (ends on a primary key): newest studies first, series and instances by number. */
function ordering(s: IndexSearch): Order[] {
  const study: Order[] = [
    { column: 'st.study_date', order: 'desc', nulls: 'last' },
    { column: 'st.study_time', order: 'desc', nulls: 'last' },
    { column: 'st.id', order: 'desc' },
  ];
  const series: Order[] = [
    { column: 'se.series_number', order: 'asc', nulls: 'last' },
    { column: 'se.id', order: 'asc' },
  ];
  const instance: Order[] = [
    { column: 'i.instance_number', order: 'asc', nulls: 'last' },
    { column: 'i.id', order: 'asc' },
  ];
  if (s.level === 'study') return study;
  const head = s.scope?.studyInstanceUid ? [] : study;
  if (s.level === 'series') return [...head, ...series];
  return [...head, ...(s.scope?.seriesInstanceUid ? [] : series), ...instance];
}

/** The WHERE fragments of the conditions, on this database's dialect; sequence subqueries aliased sq0_, sq1_... */
function whereOf(db: Db, where: IndexCondition[]): SqlFragment[] {
  const dialect = dialectOf(db);
  const out: SqlFragment[] = [];
  let n = 0;
  for (const c of where) {
    const f = c.kind === 'attribute' ? attributeMatchSql(c, dialect) : sequenceItemCondition(c, `sq${n++}_`, dialect);
    if (f) out.push(f);
  }
  return out;
}

/** One SELECT: the rows of `s.level` matching every condition, in the stable order, one page. */
export async function searchIndex(db: Db, s: IndexSearch): Promise<Array<Record<string, unknown>>> {
  const q = baseQuery(db, s.level);
  const columns = selectList(s.columns);
  if (s.ownerKeys) {
    columns.push('st.id as __study_pk');
    if (s.level !== 'study') columns.push('se.id as __series_pk');
  }
  q.select(columns);
  for (const f of whereOf(db, s.where)) q.whereRaw(f.sql, f.bindings as RawBinding[]);
  if (s.scope?.studyInstanceUid) q.where('st.study_instance_uid', s.scope.studyInstanceUid);
  if (s.scope?.seriesInstanceUid) q.where('se.series_instance_uid', s.scope.seriesInstanceUid);
  // NULLS LAST spelled out: knex's sqlite3 compiler drops the column itself for `nulls`.
  for (const o of ordering(s)) {
    if (o.nulls) q.orderByRaw(`(?? IS NULL) ${o.nulls === 'last' ? 'ASC' : 'DESC'}`, [o.column]);
    q.orderBy(o.column, o.order);
  }
  q.limit(s.limit).offset(s.offset);
  return (await q) as Array<Record<string, unknown>>;
}

/** Patient-level search (C-FIND PATIENT level): the patients table alone, `p.id as _pk` first, by id. */
export async function searchPatients(
  db: Db,
  s: { columns: AnswerColumn[]; where: AttributeMatch[]; limit: number; offset: number },
): Promise<Array<Record<string, unknown>>> {
  const q = db('patients as p');
  for (const f of whereOf(db, s.where)) q.whereRaw(f.sql, f.bindings as RawBinding[]);
  q.select(['p.id as _pk', ...selectList(s.columns)])
    .orderBy('p.id', 'asc')
    .limit(s.limit)
    .offset(s.offset);
  return (await q) as Array<Record<string, unknown>>;
}
