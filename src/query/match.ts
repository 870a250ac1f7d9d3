import { RadiantError } from '../errors.js';
import type { SqlFragment } from '../catalog/query/search.js';
import type { AttributeDef } from './attributes.js';

/**
 * PS3.4 C.2.2.2 attribute matching, compiled to SQL fragments with bound parameters: values never
 * become SQL text. Identifiers go through knex's `??` binding (quoted by the dialect), values
 * through `?`.
 *
 * - Universal matching: an empty value (or only `*`) adds no condition.
 * - Single value: equality (PN: case-insensitive, on the upper-cased column).
 * - Wildcards `*` and `?` on string VRs: PostgreSQL LIKE with `%`/`_`/`\` escaped (ESCAPE '\');
 *   SQLite GLOB with `*`/`?`/`[` escaped as `[*]`/`[?]`/`[[]` — SQLite's LIKE ignores ASCII
 *   case, GLOB does not, and DICOM wildcard matching is case-sensitive except for PN (which is
 *   matched on the upper-cased column, so both stay exact there).
 * - Range on DA/TM: `A-B`, `A-`, `-B` as string comparisons (the index keeps DA as YYYYMMDD).
 * - List: values separated by `\` (or a repeated key, joined by the caller) match any of them.
 * - Fuzzy PN (fuzzymatching=true): each component of the query (split on `^`, `=` and spaces)
 *   must prefix-match a component of the stored name.
 */

export class QueryError extends RadiantError {
  constructor(message: string) {
    super('invalid-input', message, { code: 'invalid_query' });
    this.name = 'QueryError';
  }
}

export type Dialect = 'pg' | 'sqlite';

export interface MatchOptions {
  dialect: Dialect;
  fuzzy: boolean;
}

/** A SQL boolean expression with its bindings (the index's type: src/catalog runs it). */
export type Fragment = SqlFragment;

type Token = { lit: string } | '*' | '?';

const FALSE: Fragment = { sql: '1 = 0', bindings: [] };

function or(parts: Fragment[]): Fragment {
  if (parts.length === 0) return FALSE;
  if (parts.length === 1) return parts[0]!;
  return { sql: `(${parts.map((p) => p.sql).join(' OR ')})`, bindings: parts.flatMap((p) => p.bindings) };
}

export function and(parts: Fragment[]): Fragment {
  if (parts.length === 1) return parts[0]!;
  return { sql: `(${parts.map((p) => p.sql).join(' AND ')})`, bindings: parts.flatMap((p) => p.bindings) };
}

function hasWildcard(v: string): boolean {
  return v.includes('*') || v.includes('?');
}

function tokens(v: string): Token[] {
  const out: Token[] = [];
  let lit = '';
  for (const ch of v) {
    if (ch === '*' || ch === '?') {
      if (lit) out.push({ lit });
      lit = '';
      // `**` is the same as `*`.
      if (!(ch === '*' && out[out.length - 1] === '*')) out.push(ch);
    } else lit += ch;
  }
  if (lit) out.push({ lit });
  return out;
}

function render(toks: Token[], dialect: Dialect): string {
  return toks
    .map((t) => {
      if (t === '*') return dialect === 'pg' ? '%' : '*';
      if (t === '?') return dialect === 'pg' ? '_' : '?';
      return dialect === 'pg' ? t.lit.replace(/[\\%_]/g, (c) => `\\${c}`) : t.lit.replace(/[*?[]/g, (c) => `[${c}]`);
    })
    .join('');
}

/** The column expression to match on: a plain column, or the upper-cased one for PN. */
interface Target {
  sql: string;
  bindings: unknown[];
}

function target(def: AttributeDef): Target {
  if (def.kind === 'pn') {
    if (def.normColumn === 'upper') return { sql: 'upper(??)', bindings: [def.column] };
    return { sql: '??', bindings: [def.normColumn ?? def.column] };
  }
  return { sql: '??', bindings: [def.column] };
}

function pattern(t: Target, toks: Token[], dialect: Dialect): Fragment {
  const p = render(toks, dialect);
  return dialect === 'pg'
    ? { sql: `${t.sql} LIKE ? ESCAPE '\\'`, bindings: [...t.bindings, p] }
    : { sql: `${t.sql} GLOB ?`, bindings: [...t.bindings, p] };
}

function equals(t: Target, v: unknown): Fragment {
  return { sql: `${t.sql} = ?`, bindings: [...t.bindings, v] };
}

function isUniversal(v: string): boolean {
  return v === '' || /^\*+$/.test(v);
}

/** The values of a `\` list, trimmed of the padding spaces DICOM allows. */
function listOf(v: string): string[] {
  return v.split('\\').map((s) => s.trim());
}

const DA = /^\d{8}$/;
const TM = /^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$/;

function parseDate(s: string): string {
  const v = s.replace(/\./g, '');
  if (!DA.test(v)) throw new QueryError(`not a DA value (YYYYMMDD): ${JSON.stringify(s.slice(0, 40))}`);
  return v;
}

function parseTime(s: string): string {
  const v = s.replace(/:/g, '');
  if (!TM.test(v)) throw new QueryError(`not a TM value (HHMMSS.FFFFFF): ${JSON.stringify(s.slice(0, 40))}`);
  return v;
}

/** The largest TM string a value of lower precision stands for ("12" → "125959.999999"-ish). */
function timeUpper(v: string): string {
  const [hms, frac] = v.split('.');
  return `${hms!.padEnd(6, '9')}.${(frac ?? '').padEnd(6, '9')}`;
}

function rangeMatch(t: Target, value: string, parse: (s: string) => string, upper: (s: string) => string): Fragment {
  const dash = value.indexOf('-');
  if (dash < 0) return equals(t, parse(value));
  if (value.indexOf('-', dash + 1) >= 0) throw new QueryError('a range has one "-"');
  const lo = value.slice(0, dash).trim();
  const hi = value.slice(dash + 1).trim();
  if (!lo && !hi) throw new QueryError('a range needs at least one bound');
  const parts: Fragment[] = [];
  if (lo) parts.push({ sql: `${t.sql} >= ?`, bindings: [...t.bindings, parse(lo)] });
  if (hi) parts.push({ sql: `${t.sql} <= ?`, bindings: [...t.bindings, upper(parse(hi))] });
  return and(parts);
}

function stringMatch(t: Target, v: string, dialect: Dialect): Fragment {
  return hasWildcard(v) ? pattern(t, tokens(v), dialect) : equals(t, v);
}

/** Fuzzy PN: every query component prefix-matches some component of the stored name. */
function fuzzyName(t: Target, v: string, dialect: Dialect): Fragment | undefined {
  const comps = v.split(/[\^=\s]+/).filter((c) => c && !isUniversal(c));
  if (!comps.length) return undefined;
  return and(
    comps.map((c) => {
      const toks: Token[] = [...tokens(c), '*'];
      return or([
        pattern(t, toks, dialect),
        pattern(t, ['*', { lit: '^' }, ...toks], dialect),
        pattern(t, ['*', { lit: ' ' }, ...toks], dialect),
        pattern(t, ['*', { lit: '=' }, ...toks], dialect),
      ]);
    }),
  );
}

/** "Contains one of": one element of a `\`-joined column matches the value. */
function containsMatch(t: Target, v: string, dialect: Dialect): Fragment {
  const toks = tokens(v);
  const sep = { lit: '\\' };
  return or([
    hasWildcard(v) ? pattern(t, toks, dialect) : equals(t, v),
    pattern(t, [...toks, sep, '*'], dialect),
    pattern(t, ['*', sep, ...toks], dialect),
    pattern(t, ['*', sep, ...toks, sep, '*'], dialect),
  ]);
}

/**
 * The condition for one attribute and its query value, or undefined for universal matching
 * (no condition). Throws QueryError for a value the VR cannot hold (a malformed date or number).
 */
export function compileMatch(def: AttributeDef, rawValue: string, opts: MatchOptions): Fragment | undefined {
  if (def.kind === 'none' || !def.column) return undefined;
  const value = rawValue.trim();
  if (isUniversal(value)) return undefined;
  const t = target(def);
  const values = listOf(value).filter((v) => v !== '');
  if (!values.length) return undefined;
  switch (def.kind) {
    case 'uid':
      // No wildcards on UI (PS3.4 C.2.2.2.4): `*` and `?` are just characters that never match.
      return values.length === 1
        ? equals(t, values[0])
        : { sql: `${t.sql} IN (${values.map(() => '?').join(', ')})`, bindings: [...t.bindings, ...values] };
    case 'int': {
      const nums = values.map((v) => {
        if (!/^[+-]?\d{1,10}$/.test(v) || Math.abs(Number(v)) > 2147483647) {
          throw new QueryError(`${def.keyword} takes an integer`);
        }
        return Number(v);
      });
      return nums.length === 1
        ? equals(t, nums[0])
        : { sql: `${t.sql} IN (${nums.map(() => '?').join(', ')})`, bindings: [...t.bindings, ...nums] };
    }
    case 'date':
      return or(values.map((v) => rangeMatch(t, v, parseDate, (s) => s)));
    case 'time':
      return or(values.map((v) => rangeMatch(t, v, parseTime, timeUpper)));
    case 'multi':
      if (values.some(isUniversal)) return undefined;
      return or(values.map((v) => containsMatch(t, v, opts.dialect)));
    case 'pn': {
      if (values.some(isUniversal)) return undefined;
      const upper = values.map((v) => v.toUpperCase());
      if (opts.fuzzy) {
        const parts = upper.map((v) => fuzzyName(t, v, opts.dialect));
        return parts.some((p) => p === undefined) ? undefined : or(parts as Fragment[]);
      }
      return or(upper.map((v) => stringMatch(t, v, opts.dialect)));
    }
    case 'string':
      if (values.some(isUniversal)) return undefined;
      return or(values.map((v) => stringMatch(t, v, opts.dialect)));
    case 'sequence':
      // Matched through its items (sequence-match.ts), never as a column.
      return undefined;
  }
}
