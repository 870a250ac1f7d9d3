import type { RouteDeps } from '../src/http/deps.js';
import { HttpError } from '../src/http/errors.js';
import type { AppContext } from '../src/http/state.js';
import { returnedIdentifiers, AUDIT_LIST_MAX } from '../src/audit/audit.js';
import { patientIdsOfStudies } from '../src/catalog/catalog.js';
import { keyName, resolveKey } from '../src/query/attributes.js';
import { toDicomJson } from '../src/query/dicom-json.js';
import { runQuery, type AttributeMap, type QueryLevel } from '../src/query/engine.js';
import { isValidUid } from '../src/dicom/uids.js';
import { negotiateDicomModel, sendNativeXml } from './dicom-model.js';

/**
 * QIDO-RS, Search Transaction (PS3.18 §10.6): GET /studies, /studies/{study}/series, /series,
 * /studies/{study}/series/{series}/instances, /studies/{study}/instances, /instances, over the
 * shared query engine (src/query/).
 *
 * Decisions (also in dicomweb/README.md):
 * - No match is `200 []` (never 204), also when the study/series in the path does not exist:
 *   a search below an unknown resource simply matches nothing.
 * - `limit`: default 1000, at most 10000 (a larger value is served as 10000); `limit=0` means the
 *   default; negative or non-numeric `limit`/`offset` is 400. When more results match than were
 *   returned, the answer carries `Warning: 299 {host}: "The number of results exceeded …"`.
 * - Unknown query keys are ignored (OHIF sends extra ones) unless the handler runs strict.
 * - Sequence keys `{sequence}.{item}` (PS3.18 §8.3.4) match on the items the index keeps
 *   (src/dicom/indexed-sequences.ts); other sequences are unknown keys like any other.
 * - Answers `application/dicom+json` (or `application/json` when only that is accepted), or
 *   multipart/related; type="application/dicom+xml" (dicom-model.ts); any other Accept is 406. A malformed UID in the path, a malformed date/time/number value is 400.
 */

export const QIDO_DEFAULT_LIMIT = 1000;
export const QIDO_MAX_LIMIT = 10000;

const RESERVED = new Set(['limit', 'offset', 'fuzzymatching', 'includefield']);

export interface QidoOptions {
  /** Unknown query keys / includefields are 400 instead of ignored. TODO: QIDO_STRICT config var. */
  strict?: boolean;
}

export interface ParsedQido {
  filters: Record<string, string>;
  includeFields: string[];
  fuzzy: boolean;
  limit: number;
  offset: number;
}

function nonNegativeInt(name: string, v: string): number {
  if (!/^\d{1,9}$/.test(v.trim())) throw new HttpError(400, 'invalid_query', `${name} must be a non-negative integer`);
  return Number(v.trim());
}

/** The query string of a QIDO-RS request: match keys (by keyword or tag) and the reserved ones. */
export function parseQidoQuery(querystring: string, strict = false): ParsedQido {
  const params = new URLSearchParams(querystring);
  const filters: Record<string, string> = {};
  const includeFields: string[] = [];
  let fuzzy = false;
  let limit = QIDO_DEFAULT_LIMIT;
  let offset = 0;
  for (const [rawKey, value] of params) {
    const key = rawKey.trim();
    const lower = key.toLowerCase();
    if (RESERVED.has(lower)) {
      switch (lower) {
        case 'limit': {
          const n = nonNegativeInt('limit', value);
          limit = n === 0 ? QIDO_DEFAULT_LIMIT : Math.min(n, QIDO_MAX_LIMIT);
          break;
        }
        case 'offset':
          offset = nonNegativeInt('offset', value);
          break;
        case 'fuzzymatching': {
          const v = value.trim().toLowerCase();
          if (v !== 'true' && v !== 'false') throw new HttpError(400, 'invalid_query', 'fuzzymatching must be true or false');
          fuzzy = v === 'true';
          break;
        }
        case 'includefield':
          includeFields.push(
            ...value
              .split(',')
              .map((s) => s.trim())
              .filter(Boolean),
          );
          break;
      }
      continue;
    }
    if (key === '') continue;
    // One attribute named two ways (keyword and tag) or repeated: its values form a list.
    const path = resolveKey(key);
    const name = path ? keyName(path) : key;
    filters[name] = name in filters ? `${filters[name]}\\${value}` : value;
  }
  if (strict) {
    for (const k of Object.keys(filters)) {
      if (!resolveKey(k)) throw new HttpError(400, 'invalid_query', `unknown or unindexed query key ${JSON.stringify(k.slice(0, 64))}`);
    }
  }
  return { filters, includeFields, fuzzy, limit, offset };
}

function retrieveUrl(base: string, level: QueryLevel, row: AttributeMap): string | null {
  const study = row.StudyInstanceUID;
  if (typeof study !== 'string') return null;
  const s = `${base}/studies/${study}`;
  if (level === 'study') return s;
  const series = row.SeriesInstanceUID;
  if (typeof series !== 'string') return null;
  if (level === 'series') return `${s}/series/${series}`;
  const sop = row.SOPInstanceUID;
  return typeof sop === 'string' ? `${s}/series/${series}/instances/${sop}` : null;
}

/** Longest query value kept in an audit row. */
const AUDIT_VALUE_MAX = 64;

/** Query values kept as sent: identifiers, codes, dates and numbers; free text (LO, PN...) is masked. */
const AUDITED_VRS = new Set(['UI', 'CS', 'DA', 'TM', 'DT', 'IS', 'SH', 'AE']);
const AUDITED_KEYWORDS = new Set(['PatientID', 'IssuerOfPatientID']);

/**
 * The query keys of a search for its audit row (PS3.15 A.5.3.2 records the query): identifier
 * values as sent (clipped); names and free text masked, as PHI the row does not need (the
 * Patient IDs matched are recorded from the results).
 */
export function auditedQueryKeys(filters: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(filters).slice(0, AUDIT_LIST_MAX)) {
    const path = resolveKey(key);
    const def = path ? (path.item ?? path.def) : undefined;
    // Unknown keys are ignored by the search; their values could be anything, so they are masked too.
    const kept = def !== undefined && (AUDITED_VRS.has(def.vr) || AUDITED_KEYWORDS.has(def.keyword));
    out[key.slice(0, AUDIT_VALUE_MAX)] = kept ? value.slice(0, AUDIT_VALUE_MAX) : '(masked)';
  }
  return out;
}

/** The studies a search returned and their patients (series and instance rows carry no PatientID). */
async function returnedStudies(db: RouteDeps['db'], rows: AttributeMap[]): Promise<ReturnType<typeof returnedIdentifiers>> {
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const listed = rows.map((r) => ({ studyInstanceUid: str(r.StudyInstanceUID), patientId: str(r.PatientID) }));
  const missing = [...new Set(listed.filter((r) => r.studyInstanceUid && !r.patientId).map((r) => r.studyInstanceUid!))];
  if (missing.length) {
    // Bounded: the row lists AUDIT_LIST_MAX studies at most; their patients are what it names.
    const found = await patientIdsOfStudies(db, missing.slice(0, AUDIT_LIST_MAX));
    for (const r of listed) r.patientId ??= r.studyInstanceUid ? found.get(r.studyInstanceUid) : undefined;
  }
  return returnedIdentifiers(listed);
}

export function qidoHandler(deps: RouteDeps, level: QueryLevel, opts: QidoOptions = {}) {
  // Searches read beside ingest, never queued behind its index transactions (createReadDb).
  const db = deps.readDb ?? deps.db;
  return async (ctx: AppContext): Promise<void> => {
    const study = ctx.params.study;
    const series = ctx.params.series;
    if (study !== undefined && !isValidUid(study)) {
      throw new HttpError(400, 'invalid_uid', 'the Study Instance UID in the path is not a valid UID');
    }
    if (series !== undefined && !isValidUid(series)) {
      throw new HttpError(400, 'invalid_uid', 'the Series Instance UID in the path is not a valid UID');
    }
    ctx.state.audit = { studyInstanceUid: study, details: { level } };

    const responseType = negotiateDicomModel(ctx.get('accept') || undefined);
    if (!responseType) {
      throw new HttpError(
        406,
        'not_acceptable',
        'QIDO-RS answers with application/dicom+json (or application/json) or multipart/related; type="application/dicom+xml"',
      );
    }

    const q = parseQidoQuery(ctx.querystring, opts.strict);
    const query = auditedQueryKeys(q.filters);
    ctx.state.audit = { studyInstanceUid: study, details: { level, query } };
    // A QueryError (a value the VR cannot hold) answers 400 invalid_query through the error table.
    const result = await runQuery(db, {
      level,
      filters: q.filters,
      includeFields: q.includeFields,
      fuzzy: q.fuzzy,
      limit: q.limit,
      offset: q.offset,
      scope: { studyInstanceUid: study, seriesInstanceUid: series },
      strict: opts.strict,
    });

    const base = `${ctx.state.baseUrl}/dicom-web`;
    const body = result.rows.map((row) => {
      if ('RetrieveURL' in row) row.RetrieveURL = retrieveUrl(base, level, row);
      return toDicomJson(row, result.attributes);
    });
    const returned = await returnedStudies(db, result.rows);
    ctx.state.audit = {
      studyInstanceUid: study ?? returned.studyInstanceUid,
      patientId: returned.patientId,
      details: { level, query, count: body.length, truncated: result.truncated, ...returned.details },
    };
    if (result.truncated) {
      ctx.set(
        'Warning',
        `299 ${ctx.host}: "The number of results exceeded the maximum supported by the server. Additional results can be requested."`,
      );
    }
    if (responseType === 'application/dicom+xml') {
      sendNativeXml(ctx, body);
      return;
    }
    ctx.status = 200;
    ctx.type = responseType;
    ctx.body = JSON.stringify(body);
  };
}
