import { RadiantError } from '../errors.js';
import type { AttributeMatch, ValueMatch, WildcardToken } from '../catalog/query/conditions.js';
import type { AttributeDef } from './attributes.js';

/**
 * PS3.4 C.2.2.2 attribute matching: a query value parsed into what the stored value must be (a
 * ValueMatch on the attribute's column), which the index (src/catalog/query/conditions.ts) writes
 * as SQL with bound parameters.
 *
 * - Universal matching: an empty value (or only `*`) adds no condition.
 * - Single value: equality (PN: case-insensitive, on the upper-cased column).
 * - Wildcards `*` and `?` on string VRs: a pattern, case-sensitive except for PN (matched on the
 *   upper-cased column).
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

export interface MatchOptions {
  fuzzy: boolean;
}

type Token = WildcardToken;

/** Any of the parts; one part is itself. */
function or(parts: ValueMatch[]): ValueMatch {
  return parts.length === 1 ? parts[0]! : { op: 'any', of: parts };
}

function and(parts: ValueMatch[]): ValueMatch {
  return parts.length === 1 ? parts[0]! : { op: 'all', of: parts };
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

function pattern(toks: Token[]): ValueMatch {
  return { op: 'pattern', tokens: toks };
}

function equals(v: string | number): ValueMatch {
  return { op: 'equals', value: v };
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

function rangeMatch(value: string, parse: (s: string) => string, upper: (s: string) => string): ValueMatch {
  const dash = value.indexOf('-');
  if (dash < 0) return equals(parse(value));
  if (value.indexOf('-', dash + 1) >= 0) throw new QueryError('a range has one "-"');
  const lo = value.slice(0, dash).trim();
  const hi = value.slice(dash + 1).trim();
  if (!lo && !hi) throw new QueryError('a range needs at least one bound');
  const range: ValueMatch = { op: 'range' };
  if (lo) range.from = parse(lo);
  if (hi) range.to = upper(parse(hi));
  return range;
}

function stringMatch(v: string): ValueMatch {
  return hasWildcard(v) ? pattern(tokens(v)) : equals(v);
}

/** Fuzzy PN: every query component prefix-matches some component of the stored name. */
function fuzzyName(v: string): ValueMatch | undefined {
  const comps = v.split(/[\^=\s]+/).filter((c) => c && !isUniversal(c));
  if (!comps.length) return undefined;
  return and(
    comps.map((c) => {
      const toks: Token[] = [...tokens(c), '*'];
      return or([
        pattern(toks),
        pattern(['*', { lit: '^' }, ...toks]),
        pattern(['*', { lit: ' ' }, ...toks]),
        pattern(['*', { lit: '=' }, ...toks]),
      ]);
    }),
  );
}

/** "Contains one of": one element of a `\`-joined column matches the value. */
function containsMatch(v: string): ValueMatch {
  const toks = tokens(v);
  const sep = { lit: '\\' };
  return or([
    hasWildcard(v) ? pattern(toks) : equals(v),
    pattern([...toks, sep, '*']),
    pattern(['*', sep, ...toks]),
    pattern(['*', sep, ...toks, sep, '*']),
  ]);
}

/**
 * What a stored value must be for one attribute's query value, whatever column holds it (a
 * sequence item's value too), or undefined for universal matching (no condition). Throws
 * QueryError for a value the VR cannot hold (a malformed date or number).
 */
export function parseValueMatch(def: AttributeDef, rawValue: string, opts: MatchOptions): ValueMatch | undefined {
  if (def.kind === 'none') return undefined;
  const value = rawValue.trim();
  if (isUniversal(value)) return undefined;
  const values = listOf(value).filter((v) => v !== '');
  if (!values.length) return undefined;
  switch (def.kind) {
    case 'uid':
      // No wildcards on UI (PS3.4 C.2.2.2.4): `*` and `?` are just characters that never match.
      return values.length === 1 ? equals(values[0]!) : { op: 'oneOf', values };
    case 'int': {
      const nums = values.map((v) => {
        if (!/^[+-]?\d{1,10}$/.test(v) || Math.abs(Number(v)) > 2147483647) {
          throw new QueryError(`${def.keyword} takes an integer`);
        }
        return Number(v);
      });
      return nums.length === 1 ? equals(nums[0]!) : { op: 'oneOf', values: nums };
    }
    case 'date':
      return or(values.map((v) => rangeMatch(v, parseDate, (s) => s)));
    case 'time':
      return or(values.map((v) => rangeMatch(v, parseTime, timeUpper)));
    case 'multi':
      if (values.some(isUniversal)) return undefined;
      return or(values.map(containsMatch));
    case 'pn': {
      if (values.some(isUniversal)) return undefined;
      const upper = values.map((v) => v.toUpperCase());
      if (opts.fuzzy) {
        const parts = upper.map(fuzzyName);
        return parts.some((p) => p === undefined) ? undefined : or(parts as ValueMatch[]);
      }
      return or(upper.map(stringMatch));
    }
    case 'string':
      if (values.some(isUniversal)) return undefined;
      return or(values.map(stringMatch));
    case 'sequence':
      // Matched through its items (sequence-match.ts), never as a column.
      return undefined;
  }
}

/**
 * The condition for one attribute and its query value on the attribute's column (PN: on the
 * upper-cased one), or undefined for universal matching or an attribute the index has no column for.
 */
export function parseMatch(def: AttributeDef, rawValue: string, opts: MatchOptions): AttributeMatch | undefined {
  if (def.kind === 'none' || !def.column) return undefined;
  const match = parseValueMatch(def, rawValue, opts);
  if (!match) return undefined;
  if (def.kind === 'pn' && def.normColumn === 'upper') return { kind: 'attribute', column: def.column, upper: true, match };
  const column = def.kind === 'pn' ? (def.normColumn ?? def.column) : def.column;
  return { kind: 'attribute', column, upper: false, match };
}
