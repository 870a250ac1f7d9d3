import type { Db } from '../src/db/connection.js';
import dimse from 'dcmjs-dimse';
import type { AuditLog } from '../src/audit/audit.js';
import { DimseStatus } from '../src/dicom/dimse-status.js';
import { writeFlatDataset, type FlatElement, type FlatSyntax } from '../src/dicom/flat-dataset.js';
import { transferSyntax } from '../src/dicom/transfer-syntax.js';
import { errorMessage, RadiantError } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import { findAttribute, LEVEL_RANK, type AttributeDef, type Level } from '../src/query/attributes.js';
import { toDicomJsonValue } from '../src/query/dicom-json.js';
import { QueryError, runQuery, type AttributeMap } from '../src/query/engine.js';
import { dimseStatusOf } from './error-status.js';
import { receivedElements } from './identifier.js';
import { runPatientQuery } from '../src/query/patient-level.js';
import type { AssociationContext, AssociationT, CFindRequest, CFindResponse, FindRespond } from './services.js';

/**
 * C-FIND SCP for the Patient Root and Study Root Query/Retrieve Information Models (PS3.4 C.4.1),
 * hierarchical queries only, through the query engine QIDO-RS uses (src/query): the same
 * matching (single value, wildcards, DA/TM ranges, UID lists, universal matching,
 * case-insensitive PN) over the same index.
 *
 * - Each match is one pending response (0xFF00; 0xFF01 when the identifier held keys the node
 *   does not support, which are left out of the answers), sent as soon as its batch of rows is
 *   read; then Success. A C-CANCEL stops the stream with Cancel (0xFE00).
 * - The identifier's text is decoded per its own Specific Character Set by the kernel
 *   (identifier.ts), ISO 2022 code extensions included, so "Müller" sent in ISO_IR 100 or a
 *   Japanese name in ISO 2022 IR 87 matches what was stored in any character set.
 * - The answers hold the requested keys only, plus QueryRetrieveLevel, SpecificCharacterSet
 *   and RetrieveAETitle (the node's AE title). They are always UTF-8 (ISO_IR 192), whatever the
 *   request's character set: PS3.4 C.4.1.1.3.2 lets the SCP answer in another Specific Character
 *   Set than the SCU's, and UTF-8 holds every stored name (dcmjs writes text as UTF-8 only).
 * - The unique keys of the levels above the Query/Retrieve Level must be single values (PS3.4
 *   C.4.1.2.1); a missing or wildcard one, a level outside the model (PATIENT under Study Root),
 *   and a key below the level (a relational query, which needs extended negotiation that is not
 *   offered) are Failure 0xA900 "Identifier does not match SOP Class" with an ErrorComment. A
 *   value the VR cannot hold (a malformed date) and an index failure are 0xC000 "Unable to
 *   process".
 */

export const PATIENT_ROOT_FIND = '1.2.840.10008.5.1.4.1.2.1.1';
export const STUDY_ROOT_FIND = '1.2.840.10008.5.1.4.1.2.2.1';
export const FIND_SOP_CLASSES: ReadonlySet<string> = new Set([PATIENT_ROOT_FIND, STUDY_ROOT_FIND]);

const { Dataset } = dimse;
const { CFindResponse: CFindResponseC } = dimse.responses;

export type QrLevel = 'PATIENT' | 'STUDY' | 'SERIES' | 'IMAGE';
export type QrModel = 'patient-root' | 'study-root';

const ENGINE_LEVEL: Record<QrLevel, Level> = { PATIENT: 'patient', STUDY: 'study', SERIES: 'series', IMAGE: 'instance' };

/** Keys answered by the SCP itself rather than from the index. */
const SCP_KEYS = new Set(['QueryRetrieveLevel', 'SpecificCharacterSet', 'RetrieveAETitle']);
/** In the attribute table for QIDO-RS only. */
const NOT_DIMSE = new Set(['RetrieveURL']);

/** A C-FIND the node refuses: an identifier that does not fit the model, a SOP class it does not serve. */
export class FindFailure extends RadiantError {
  constructor(kind: 'mismatch' | 'unsupported', message: string) {
    super(kind, message);
    this.name = 'FindFailure';
  }
}

export interface ParsedFind {
  model: QrModel;
  level: QrLevel;
  /** Keyword → DICOM query value ('' is universal matching), for the engine. */
  filters: Record<string, string>;
  /** The requested keys the node answers, in the identifier's order. */
  requested: AttributeDef[];
  /** Keys of the identifier the node does not support (keywords, or tags for unknown ones). */
  unsupported: string[];
}

export function modelOf(sopClassUid: string): QrModel | undefined {
  if (sopClassUid === PATIENT_ROOT_FIND) return 'patient-root';
  if (sopClassUid === STUDY_ROOT_FIND) return 'study-root';
  return undefined;
}

/** A naturalized dcmjs value as a DICOM query string (`\` between values, PN groups with `=`). */
export function queryValue(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return v.map(queryValue).join('\\');
  if (typeof v === 'object') {
    const pn = v as { Alphabetic?: string; Ideographic?: string; Phonetic?: string };
    const groups = [pn.Alphabetic ?? '', pn.Ideographic ?? '', pn.Phonetic ?? ''];
    while (groups.length > 1 && groups[groups.length - 1] === '') groups.pop();
    return groups.join('=');
  }
  return String(v);
}

function tagOf(def: AttributeDef): string {
  return `(${def.tag.slice(0, 4)},${def.tag.slice(4)})`;
}

/** Unique keys of the levels above `level` in the model (PS3.4 C.4.1.2.1). */
function uniqueKeysAbove(model: QrModel, level: QrLevel): string[] {
  const out: string[] = [];
  if (model === 'patient-root' && level !== 'PATIENT') out.push('PatientID');
  if (level === 'SERIES' || level === 'IMAGE') out.push('StudyInstanceUID');
  if (level === 'IMAGE') out.push('SeriesInstanceUID');
  return out;
}

/** The identifier of a C-FIND request, checked against the model; throws FindFailure. */
export function parseIdentifier(model: QrModel, elements: Record<string, unknown>): ParsedFind {
  const rawLevel = queryValue(elements.QueryRetrieveLevel).trim().toUpperCase();
  if (!rawLevel) {
    throw new FindFailure('mismatch', 'QueryRetrieveLevel (0008,0052) is missing');
  }
  if (!['PATIENT', 'STUDY', 'SERIES', 'IMAGE'].includes(rawLevel)) {
    throw new FindFailure('mismatch', `unknown QueryRetrieveLevel ${rawLevel.slice(0, 16)}`);
  }
  const level = rawLevel as QrLevel;
  if (model === 'study-root' && level === 'PATIENT') {
    throw new FindFailure('mismatch', 'PATIENT level is not in the Study Root model');
  }
  const rank = LEVEL_RANK[ENGINE_LEVEL[level]];
  const filters: Record<string, string> = {};
  const requested: AttributeDef[] = [];
  const unsupported: string[] = [];
  for (const [key, value] of Object.entries(elements)) {
    if (key.startsWith('_') || SCP_KEYS.has(key)) continue;
    const def = findAttribute(key);
    if (
      !def ||
      NOT_DIMSE.has(def.keyword) ||
      (Array.isArray(value) &&
        value.some((x) => x && typeof x === 'object' && !('Alphabetic' in x || 'Ideographic' in x || 'Phonetic' in x)))
    ) {
      // Sequences and attributes the index does not hold: optional keys not supported.
      unsupported.push(key);
      continue;
    }
    if (LEVEL_RANK[def.level] > rank) {
      throw new FindFailure('mismatch', `${def.keyword} is below the ${level} level (no relational queries)`);
    }
    requested.push(def);
    // dcmjs reads a zero-length US element as 0: for Rows/Columns that is universal matching
    // (no image has 0 rows), never a match on 0.
    const v = def.vr === 'US' && (value === 0 || (Array.isArray(value) && value.length === 1 && value[0] === 0)) ? '' : value;
    if (def.kind !== 'none') filters[def.keyword] = queryValue(v);
  }
  for (const kw of uniqueKeysAbove(model, level)) {
    const v = (filters[kw] ?? '').trim();
    const def = findAttribute(kw)!;
    if (!v || /[*?\\]/.test(v)) {
      throw new FindFailure('mismatch', `${level} level needs one ${kw} ${tagOf(def)}`);
    }
  }
  return { model, level, filters, requested, unsupported };
}

/** At most this many Study UIDs / Patient IDs / query keys in a C-FIND audit row. */
const AUDIT_LISTED = 20;
const AUDIT_KEYS = 32;

/**
 * The query as audited (PS3.15 A.5.3.12 records the query itself): the keys asked and their
 * values, clipped; person names are never written, only that a name key was matched on.
 */
export function auditedQuery(q: ParsedFind): { keys: string[]; values: Record<string, string> } {
  const keys = [...q.requested.map((d) => d.keyword), ...q.unsupported].slice(0, AUDIT_KEYS);
  const values: Record<string, string> = {};
  for (const def of q.requested.slice(0, AUDIT_KEYS)) {
    const v = q.filters[def.keyword];
    if (!v) continue;
    values[def.keyword] = def.vr === 'PN' ? '<present>' : v.slice(0, 64);
  }
  return { keys, values };
}

/** Rows of a parsed query, in batches that grow (the first answers go out quickly). */
export async function* findRows(db: Db, q: ParsedFind): AsyncGenerator<AttributeMap[]> {
  // PatientID comes back at every level (universal matching at PATIENT), for the audit row.
  const filters = q.level === 'PATIENT' ? { PatientID: '', ...q.filters } : q.filters;
  // Small pages first: the first answers go out at once, and a C-CANCEL is seen between pages.
  // (Each page is one indexed query of a few ms even at 1 M instances; what made a 336-answer
  // C-FIND take 0.7 s was encoding each answer through dcmjs, now answerBytes.)
  const sizes = [16, 32, 64, 128, 256, 512];
  let offset = 0;
  for (let i = 0; ; i++) {
    const limit = sizes[i] ?? 1000;
    const result =
      q.level === 'PATIENT'
        ? await runPatientQuery(db, { filters, limit, offset })
        : await runQuery(db, { level: ENGINE_LEVEL[q.level] as Exclude<Level, 'patient'>, filters, limit, offset });
    if (result.rows.length) yield result.rows;
    if (!result.truncated) return;
    offset += limit;
  }
}

/** The identifier of one pending response: the requested keys, valued from the row. */
export function answerElements(q: ParsedFind, row: AttributeMap, aeTitle: string): Record<string, unknown> {
  const out: Record<string, unknown> = {
    SpecificCharacterSet: 'ISO_IR 192',
    QueryRetrieveLevel: q.level,
    RetrieveAETitle: aeTitle,
  };
  for (const def of q.requested) {
    const v = toDicomJsonValue(def.vr, row[def.keyword] ?? null);
    out[def.keyword] = v ?? '';
  }
  return out;
}

/** The identifier of one pending response as bytes in `syntax`: the same elements as answerElements. */
export function answerBytes(q: ParsedFind, row: AttributeMap, aeTitle: string, syntax: FlatSyntax): Buffer {
  const elements: FlatElement[] = [
    { tag: 0x00080005, vr: 'CS', value: 'ISO_IR 192' },
    { tag: 0x00080052, vr: 'CS', value: q.level },
    { tag: 0x00080054, vr: 'AE', value: aeTitle },
  ];
  for (const def of q.requested) {
    const tag = Number.parseInt(def.tag, 16);
    const values = toDicomJsonValue(def.vr, row[def.keyword] ?? null);
    if (def.vr === 'US') elements.push({ tag, vr: def.vr, value: (values ?? []) as number[] });
    else if (def.vr === 'PN' || !values) elements.push({ tag, vr: def.vr, value: values ? String(row[def.keyword]) : '' });
    else elements.push({ tag, vr: def.vr, value: values.join('\\') });
  }
  return writeFlatDataset(elements, syntax);
}

/** ErrorComment is LO: 64 characters at most. */
function comment(message: string): string {
  const ascii = message.replace(/[^\x20-\x7e]/g, '?');
  return ascii.length > 64 ? `${ascii.slice(0, 61)}...` : ascii;
}

export interface FindServiceDeps {
  db: Db;
  aeTitle: string;
  log: Logger;
  audit?: AuditLog;
}

export interface FindService {
  find(ctx: AssociationContext, request: CFindRequest, respond: FindRespond): void;
  cancel(ctx: AssociationContext, messageId: number): void;
}

export function findService(deps: FindServiceDeps): FindService {
  const { db, aeTitle, log, audit } = deps;
  /** C-FINDs in progress, per association, by Message ID: set to true by a C-CANCEL. */
  const running = new WeakMap<AssociationT, Map<number, { cancelled: boolean }>>();

  const final = (request: CFindRequest, status: number, message?: string): CFindResponse => {
    const r = CFindResponseC.fromRequest(request);
    r.setStatus(status);
    if (message) r.setErrorComment(comment(message));
    return r;
  };

  async function run(ctx: AssociationContext, request: CFindRequest, respond: FindRespond): Promise<void> {
    const started = Date.now();
    const messageId = request.getMessageId();
    const model = modelOf(request.getAffectedSopClassUid());
    let level: string | undefined;
    let query: ReturnType<typeof auditedQuery> | undefined;
    let matches = 0;
    const studies = new Set<string>();
    const patients = new Set<string>();
    let status: number = DimseStatus.Success;
    const state = { cancelled: false };
    let closed = false;
    void ctx.closed.then(() => (closed = true));
    let byId = running.get(ctx.association);
    if (!byId) running.set(ctx.association, (byId = new Map()));
    byId.set(messageId, state);
    try {
      if (!model) throw new FindFailure('unsupported', 'not a Patient/Study Root FIND SOP Class');
      const dataset = request.getDataset();
      if (!dataset) throw new FindFailure('mismatch', 'the request has no identifier');
      const q = parseIdentifier(model, receivedElements(dataset).elements);
      level = q.level;
      query = auditedQuery(q);
      const pending = q.unsupported.length ? DimseStatus.PendingOptionalKeysNotSupported : DimseStatus.Pending;
      const ts = dataset.getTransferSyntaxUid();
      // The identifiers are written here and sent as PDUs by the SCP (a few µs each, against ~2 ms
      // through dcmjs-dimse's data set model); a deflated syntax still goes through dcmjs-dimse.
      const info = transferSyntax(ts);
      const encoded = info && !info.deflated && respond.pending ? respond.pending : undefined;
      for await (const rows of findRows(db, q)) {
        if (state.cancelled || closed) break;
        if (encoded)
          encoded(
            pending,
            rows.map((row) => answerBytes(q, row, aeTitle, info!)),
          );
        else
          respond(
            rows.map((row) => {
              const r = CFindResponseC.fromRequest(request);
              r.setStatus(pending);
              r.setDataset(new Dataset(answerElements(q, row, aeTitle), ts));
              return r;
            }),
          );
        matches += rows.length;
        for (const row of rows) {
          const study = row.StudyInstanceUID;
          const patient = row.PatientID;
          if (typeof study === 'string' && study && studies.size < AUDIT_LISTED) studies.add(study);
          if (typeof patient === 'string' && patients.size < AUDIT_LISTED) patients.add(patient);
        }
        // Let the socket's reads run (a C-CANCEL may be waiting) before the next page.
        await new Promise((r) => setTimeout(r, 0));
      }
      if (closed) return;
      status = state.cancelled ? DimseStatus.Cancel : DimseStatus.Success;
      respond(final(request, status));
    } catch (err) {
      status = dimseStatusOf('find', err);
      const message = err instanceof FindFailure || err instanceof QueryError ? err.message : 'query failed';
      if (!(err instanceof FindFailure || err instanceof QueryError)) {
        log.error({ err: errorMessage(err), calling: ctx.callingAeTitle }, 'C-FIND failed');
      } else {
        log.info({ calling: ctx.callingAeTitle, status: `0x${status.toString(16)}`, reason: message }, 'C-FIND refused');
      }
      if (!closed) respond(final(request, status, message));
    } finally {
      byId.delete(messageId);
      // One row per C-FIND: who, which model, level and keys (names masked), what it returned
      // (Study UIDs and Patient IDs, bounded); one patient or study also goes in its column.
      void audit?.record({
        actorType: 'ae',
        actor: ctx.callingAeTitle,
        peer: ctx.peer,
        action: 'dimse.find',
        resourceType: level?.toLowerCase(),
        patientId: patients.size === 1 ? [...patients][0] : undefined,
        studyInstanceUid: studies.size === 1 ? [...studies][0] : undefined,
        outcome: status === DimseStatus.Success || status === DimseStatus.Cancel ? 'success' : 'failure',
        status,
        details: {
          model: model ?? request.getAffectedSopClassUid(),
          level,
          ...query,
          matches,
          studies: [...studies],
          patients: [...patients],
          cancelled: status === DimseStatus.Cancel,
          ms: Date.now() - started,
        },
      });
    }
  }

  return {
    find(ctx, request, respond) {
      void run(ctx, request, respond);
    },
    cancel(ctx, messageId) {
      const state = running.get(ctx.association)?.get(messageId);
      if (state) state.cancelled = true;
    },
  };
}
