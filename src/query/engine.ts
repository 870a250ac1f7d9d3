import type { Db } from '../db/connection.js';
import { searchIndex } from '../catalog/query/search.js';
import { ATTRIBUTES, REQUIRED_RETURN, availableAt, resolveKey, type AttributeDef, type KeyPath, type Level } from './attributes.js';
import type { IndexCondition } from '../catalog/query/conditions.js';
import { parseMatch, QueryError } from './match.js';
import { parseSequenceMatch, loadSequenceItems, ownerKey, type ItemCondition } from './sequence-match.js';

/**
 * The one query engine over the index, for QIDO-RS and (later) C-FIND: filters in as a map of
 * keyword (or tag) → DICOM query value, rows out as plain attribute maps (keyword → value), so
 * neither the HTTP nor the DIMSE side leaks into it. Each query is one SELECT of the index
 * (src/catalog/query/search.ts) with the conditions parsed here, every value a bound parameter.
 */

export type QueryLevel = Exclude<Level, 'patient'>;

/** A value; a sequence is its items, each an attribute map of the item attributes. */
export type AttributeValue = string | number | null | AttributeMap[];
export interface AttributeMap {
  [keyword: string]: AttributeValue;
}

export interface QueryRequest {
  level: QueryLevel;
  /** Keyword or tag → query value (`\` separates list values; '' is universal matching). */
  filters: Record<string, string>;
  /** Extra attributes to return: keywords or tags, or 'all'. */
  includeFields?: string[];
  /** Fuzzy person-name matching (prefix match of each name component). */
  fuzzy?: boolean;
  limit: number;
  offset?: number;
  /** The resource the query runs under (QIDO-RS /studies/{study}/series, C-FIND's key UIDs). */
  scope?: { studyInstanceUid?: string; seriesInstanceUid?: string };
  /** Unknown or inapplicable keys are errors (QueryError) instead of being ignored. */
  strict?: boolean;
}

export interface QueryResult {
  /** One map per match; holds every keyword of `attributes` (null when the index has no value). */
  rows: AttributeMap[];
  /** More rows matched than `limit` (from `offset`). */
  truncated: boolean;
  /** What each row returns, in tag order. RetrieveURL is left null for the caller to fill. */
  attributes: AttributeDef[];
}

export { QueryError };

function byKey(key: string, strict: boolean, what: string): KeyPath | undefined {
  const path = resolveKey(key);
  if (!path && strict) throw new QueryError(`unknown or unindexed ${what} ${JSON.stringify(key.slice(0, 64))}`);
  return path;
}

/** The attributes a query at `level` returns (required ones, matched ones, included ones). */
export function returnedAttributes(req: QueryRequest): AttributeDef[] {
  const strict = req.strict ?? false;
  const keywords = new Set<string>(REQUIRED_RETURN[req.level]);
  // Without the parent in the target, the parent levels' attributes come along (PS3.18 Table
  // 10.6.3-2): /series returns study attributes, /instances study and series attributes.
  if (req.level !== 'study' && !req.scope?.studyInstanceUid) REQUIRED_RETURN.study.forEach((kw) => keywords.add(kw));
  if (req.level === 'instance' && !req.scope?.seriesInstanceUid) REQUIRED_RETURN.series.forEach((kw) => keywords.add(kw));
  for (const key of Object.keys(req.filters)) {
    const def = byKey(key, strict, 'query key')?.def;
    if (def && availableAt(def, req.level)) keywords.add(def.keyword);
  }
  for (const f of req.includeFields ?? []) {
    if (f.toLowerCase() === 'all') {
      ATTRIBUTES.filter((d) => availableAt(d, req.level)).forEach((d) => keywords.add(d.keyword));
      continue;
    }
    // A sequence item (`Sequence.Item`) returns the sequence with the items the index keeps.
    const def = byKey(f, strict, 'includefield')?.def;
    if (!def) continue;
    if (!availableAt(def, req.level)) {
      if (strict) throw new QueryError(`${def.keyword} is not an attribute of the ${req.level} level`);
      continue;
    }
    keywords.add(def.keyword);
  }
  return ATTRIBUTES.filter((d) => keywords.has(d.keyword)).sort((a, b) => (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0));
}

/** The conditions of the filters on the index, attributes first, then sequences. */
function parseFilters(req: QueryRequest): IndexCondition[] {
  const strict = req.strict ?? false;
  const opts = { fuzzy: req.fuzzy ?? false };
  const out: IndexCondition[] = [];
  // Item keys grouped by sequence: one item must match all keys of its sequence (C.2.2.2.6).
  const sequences = new Map<AttributeDef, ItemCondition[]>();
  for (const [key, value] of Object.entries(req.filters)) {
    const path = byKey(key, strict, 'query key');
    if (!path) continue;
    const { def, item } = path;
    if (!availableAt(def, req.level)) {
      if (strict) throw new QueryError(`${def.keyword} is not an attribute of the ${req.level} level`);
      continue;
    }
    if (def.kind === 'sequence') {
      if (!item) {
        // The sequence itself takes only universal matching (return it); values go on its items.
        if (value.trim() !== '')
          throw new QueryError(`${def.keyword} is a sequence: match on its items (${def.keyword}.{attribute}=value)`);
        continue;
      }
      const conds = sequences.get(def) ?? [];
      conds.push({ item, value });
      sequences.set(def, conds);
      continue;
    }
    const f = parseMatch(def, value, opts);
    if (f) out.push(f);
  }
  for (const [def, conds] of sequences) {
    const f = parseSequenceMatch(def, conds, opts);
    if (f) out.push(f);
  }
  return out;
}

/** Runs the query: at most `limit` rows from `offset`, `truncated` when more matched. */
export async function runQuery(db: Db, req: QueryRequest): Promise<QueryResult> {
  if (!Number.isInteger(req.limit) || req.limit < 0) throw new QueryError('limit must be a non-negative integer');
  const offset = req.offset ?? 0;
  if (!Number.isInteger(offset) || offset < 0) throw new QueryError('offset must be a non-negative integer');
  const attributes = returnedAttributes(req);
  const where = parseFilters(req);

  const columns = attributes.filter((d) => d.column).map((d) => ({ column: d.column!, as: d.keyword }));
  // Sequences are read afterwards from sequence_items, for the returned rows' study and series.
  const sequences = attributes.filter((d) => d.kind === 'sequence');
  const raw = await searchIndex(db, {
    level: req.level,
    columns,
    ownerKeys: sequences.length > 0,
    where,
    scope: req.scope,
    limit: req.limit + 1,
    offset,
  });
  const truncated = raw.length > req.limit;
  const page = raw.slice(0, req.limit);
  const items = sequences.length
    ? await loadSequenceItems(
        db,
        sequences,
        [...new Set(page.map((r) => Number(r.__study_pk)))],
        req.level === 'study' ? [] : [...new Set(page.map((r) => Number(r.__series_pk)))],
      )
    : undefined;
  const rows = page.map((r) => {
    const row: AttributeMap = {};
    for (const d of attributes) {
      if (d.kind === 'sequence') row[d.keyword] = items?.get(ownerKey(d, r.__study_pk, r.__series_pk)) ?? [];
      else if (d.constant !== undefined) row[d.keyword] = d.constant;
      else if (!d.column) row[d.keyword] = null;
      else {
        const v = r[d.keyword];
        row[d.keyword] = v === null || v === undefined || v === '' ? null : d.kind === 'int' ? Number(v) : String(v);
      }
    }
    return row;
  });
  return { rows, truncated, attributes };
}
