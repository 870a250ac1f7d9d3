import type { Db } from '../db/connection.js';
import { searchPatients } from '../catalog/query/search.js';
import { ATTRIBUTES, findAttribute, type AttributeDef } from './attributes.js';
import type { AttributeMatch } from '../catalog/query/conditions.js';
import { parseMatch } from './match.js';
import type { AttributeMap } from './engine.js';

/**
 * Patient-level queries (C-FIND PATIENT level of the Patient Root model; QIDO-RS has no patient
 * resource, so runQuery does not serve this level). Same attribute table and the same matching
 * (parseMatch) as runQuery, over the patients table alone, one patient per row.
 */

export interface PatientQueryRequest {
  /** Keyword or tag → query value; only patient-level attributes are used. */
  filters: Record<string, string>;
  limit: number;
  offset?: number;
}

export interface PatientQueryResult {
  rows: AttributeMap[];
  truncated: boolean;
  attributes: AttributeDef[];
}

/** The patient-level attributes (the ones with a column or a constant). */
export const PATIENT_ATTRIBUTES: readonly AttributeDef[] = ATTRIBUTES.filter(
  (d) => d.level === 'patient' && (d.column !== undefined || d.constant !== undefined),
);

export async function runPatientQuery(db: Db, req: PatientQueryRequest): Promise<PatientQueryResult> {
  const keywords = new Set<string>();
  const where: AttributeMatch[] = [];
  for (const [key, value] of Object.entries(req.filters)) {
    const def = findAttribute(key);
    if (!def || def.level !== 'patient') continue;
    keywords.add(def.keyword);
    const f = parseMatch(def, value, { fuzzy: false });
    if (f) where.push(f);
  }
  const attributes = PATIENT_ATTRIBUTES.filter((d) => keywords.has(d.keyword));
  const columns = attributes.filter((d) => d.column).map((d) => ({ column: d.column!, as: d.keyword }));
  const raw = await searchPatients(db, { columns, where, limit: req.limit + 1, offset: req.offset ?? 0 });
  const rows = raw.slice(0, req.limit).map((r) => {
    const row: AttributeMap = {};
    for (const d of attributes) {
      if (d.constant !== undefined) row[d.keyword] = d.constant;
      else {
        const v = r[d.keyword];
        row[d.keyword] = v === null || v === undefined || v === '' ? null : String(v);
      }
    }
    return row;
  });
  return { rows, truncated: raw.length > req.limit, attributes };
}
