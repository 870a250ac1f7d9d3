import { isPostgres, type Db } from '../../db/connection.js';

/**
 * The conditions a query puts on the index, as the query engine (src/query/match.ts) parses them
 * from DICOM query values (PS3.4 C.2.2.2), and the SQL they become here, with bound parameters:
 * values never become SQL text. Identifiers go through knex's `??` binding (quoted by the
 * dialect), values through `?`.
 *
 * - Wildcards `*` and `?`: PostgreSQL LIKE with `%`/`_`/`\` escaped (ESCAPE '\'); SQLite GLOB
 *   with `*`/`?`/`[` escaped as `[*]`/`[?]`/`[[]` — SQLite's LIKE ignores ASCII case, GLOB does
 *   not, and DICOM wildcard matching is case-sensitive except for PN (which is matched on the
 *   upper-cased column, so both stay exact there).
 * - Ranges (DA/TM) are string comparisons: the index keeps DA as YYYYMMDD, TM as HHMMSS.FFFFFF.
 */

/** A SQL boolean expression with its bindings: identifiers as `??`, values as `?`, never SQL text. */
export interface SqlFragment {
  sql: string;
  bindings: unknown[];
}

export type Dialect = 'pg' | 'sqlite';

export function dialectOf(db: Db): Dialect {
  return isPostgres(db) ? 'pg' : 'sqlite';
}

/** A piece of a wildcard pattern: literal text, `*` (any run of characters) or `?` (one character). */
export type WildcardToken = { lit: string } | '*' | '?';

/** What a stored value must be for a query value to match it; no column, no database. */
export type ValueMatch =
  | { op: 'equals'; value: string | number }
  | { op: 'oneOf'; values: Array<string | number> }
  | { op: 'pattern'; tokens: WildcardToken[] }
  /** A DA/TM range; at least one bound, each inclusive. */
  | { op: 'range'; from?: string; to?: string }
  /** Any of them; none: matches nothing. */
  | { op: 'any'; of: ValueMatch[] }
  | { op: 'all'; of: ValueMatch[] };

/** One attribute's condition on its column (qualified: `p.patient_name`); `upper`: on upper(column). */
export interface AttributeMatch {
  kind: 'attribute';
  column: string;
  upper: boolean;
  match: ValueMatch;
}

/** Sequence Matching: one stored item of the sequence matches every item attribute's condition. */
export interface SequenceMatch {
  kind: 'sequence';
  /** The sequence's tag and the level that owns it (a series-level one has a series_pk). */
  sequence: { tag: string; level: 'study' | 'series' };
  items: Array<{ tag: string; match: ValueMatch }>;
}

export type IndexCondition = AttributeMatch | SequenceMatch;

const FALSE: SqlFragment = { sql: '1 = 0', bindings: [] };

function or(parts: SqlFragment[]): SqlFragment {
  if (parts.length === 0) return FALSE;
  if (parts.length === 1) return parts[0]!;
  return { sql: `(${parts.map((p) => p.sql).join(' OR ')})`, bindings: parts.flatMap((p) => p.bindings) };
}

function and(parts: SqlFragment[]): SqlFragment {
  if (parts.length === 1) return parts[0]!;
  return { sql: `(${parts.map((p) => p.sql).join(' AND ')})`, bindings: parts.flatMap((p) => p.bindings) };
}

function render(toks: WildcardToken[], dialect: Dialect): string {
  return toks
    .map((t) => {
      if (t === '*') return dialect === 'pg' ? '%' : '*';
      if (t === '?') return dialect === 'pg' ? '_' : '?';
      return dialect === 'pg' ? t.lit.replace(/[\\%_]/g, (c) => `\\${c}`) : t.lit.replace(/[*?[]/g, (c) => `[${c}]`);
    })
    .join('');
}

/** The column expression matched on, `??` bound to the column. */
type Target = SqlFragment;

function valueSql(t: Target, m: ValueMatch, dialect: Dialect): SqlFragment {
  switch (m.op) {
    case 'equals':
      return { sql: `${t.sql} = ?`, bindings: [...t.bindings, m.value] };
    case 'oneOf':
      return { sql: `${t.sql} IN (${m.values.map(() => '?').join(', ')})`, bindings: [...t.bindings, ...m.values] };
    case 'pattern': {
      const p = render(m.tokens, dialect);
      return dialect === 'pg'
        ? { sql: `${t.sql} LIKE ? ESCAPE '\\'`, bindings: [...t.bindings, p] }
        : { sql: `${t.sql} GLOB ?`, bindings: [...t.bindings, p] };
    }
    case 'range': {
      const parts: SqlFragment[] = [];
      if (m.from !== undefined) parts.push({ sql: `${t.sql} >= ?`, bindings: [...t.bindings, m.from] });
      if (m.to !== undefined) parts.push({ sql: `${t.sql} <= ?`, bindings: [...t.bindings, m.to] });
      return and(parts);
    }
    case 'any':
      return or(m.of.map((x) => valueSql(t, x, dialect)));
    case 'all':
      return and(m.of.map((x) => valueSql(t, x, dialect)));
  }
}

/** A value condition on a plain column (a sequence item's `alias.value`). */
export function columnMatchSql(column: string, m: ValueMatch, dialect: Dialect): SqlFragment {
  return valueSql({ sql: '??', bindings: [column] }, m, dialect);
}

/** One attribute's condition as SQL. */
export function attributeMatchSql(m: AttributeMatch, dialect: Dialect): SqlFragment {
  return valueSql({ sql: m.upper ? 'upper(??)' : '??', bindings: [m.column] }, m.match, dialect);
}
