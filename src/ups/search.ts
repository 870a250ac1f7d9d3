import type { AttributeMatch, ValueMatch } from '../catalog/query/conditions.js';
import { WORKITEM_ALIAS } from '../catalog/workitems.js';
import { tag } from '../dicom/dictionary.js';
import type { AttributeDef } from '../query/attributes.js';
import { parseMatch, QueryError } from '../query/match.js';

/**
 * Search for workitems (PS3.18 §11.9): QIDO-style matching keys on the attributes the worklist
 * indexes, parsed by the one query engine's matching (src/query/match.ts: single value,
 * wildcards, lists, PN case-insensitive and fuzzy) into conditions the index writes as SQL.
 * DT ranges (Scheduled Procedure Step Start DateTime) are matched here: the engine knows DA and TM.
 */

const col = (c: string) => `${WORKITEM_ALIAS}.${c}`;
const def = (keyword: string, kind: AttributeDef['kind'], column: string, normColumn?: string): AttributeDef => ({
  keyword,
  tag: tag(keyword),
  vr: 'CS',
  level: 'study',
  kind,
  column: col(column),
  normColumn: normColumn && col(normColumn),
});

const KEYS: readonly AttributeDef[] = [
  def('SOPInstanceUID', 'uid', 'sop_instance_uid'),
  def('ProcedureStepState', 'string', 'state'),
  def('PatientID', 'string', 'patient_id'),
  def('PatientName', 'pn', 'patient_name', 'patient_name_upper'),
  def('StudyInstanceUID', 'uid', 'study_instance_uid'),
  def('ScheduledProcedureStepPriority', 'string', 'priority'),
  def('ProcedureStepLabel', 'string', 'label'),
  def('WorklistLabel', 'string', 'worklist_label'),
];
const START = tag('ScheduledProcedureStepStartDateTime');

export interface WorkitemQuery {
  /** Matching keys by keyword or tag (`ProcedureStepState`, `00741000`), as QIDO-RS takes them. */
  filters: Array<[string, string]>;
  fuzzy: boolean;
  limit: number;
  offset: number;
}

/**
 * A DT bound: digits, optional fraction. An upper bound covers every value it is a prefix of: it is
 * padded with 9s (digits only, so the comparison is the same under any collation, PostgreSQL's too).
 */
function dtBound(v: string, upper: boolean): string {
  if (!/^\d{4,14}(\.\d{1,6})?$/.test(v)) throw new QueryError(`"${v}" is not a DT value (YYYYMMDDHHMMSS)`);
  if (!upper) return v;
  const [whole, frac] = v.split('.');
  return `${whole!.padEnd(14, '9')}.${(frac ?? '').padEnd(6, '9')}`;
}

function dtMatch(value: string): ValueMatch | undefined {
  const v = value.trim();
  if (v === '' || v === '*') return undefined;
  const m = /^([^-]*)-([^-]*)$/.exec(v);
  if (!m) return { op: 'range', from: dtBound(v, false), to: dtBound(v, true) };
  if (!m[1] && !m[2]) throw new QueryError('a DT range needs at least one bound');
  return { op: 'range', from: m[1] ? dtBound(m[1], false) : undefined, to: m[2] ? dtBound(m[2], true) : undefined };
}

function keyOf(key: string): AttributeDef | 'start' | undefined {
  const k = key.toUpperCase();
  if (key === 'ScheduledProcedureStepStartDateTime' || k === START) return 'start';
  return KEYS.find((d) => d.keyword === key || d.tag === k);
}

/** The index conditions of a search; QueryError (400) for a key the worklist cannot match on. */
export function searchConditions(q: WorkitemQuery): AttributeMatch[] {
  const out: AttributeMatch[] = [];
  for (const [key, value] of q.filters) {
    const d = keyOf(key);
    if (!d) throw new QueryError(`workitems cannot be searched by ${key}`);
    if (d === 'start') {
      const match = dtMatch(value);
      if (match) out.push({ kind: 'attribute', column: col('scheduled_start'), upper: false, match });
      continue;
    }
    const m = parseMatch(d, value, { fuzzy: q.fuzzy });
    if (m) out.push(m);
  }
  return out;
}
