import type { Db } from '../db/connection.js';
import type { Logger } from '../logger.js';
import { errorMessage } from '../errors.js';
import { patientIdsOfStudies } from '../catalog/catalog.js';
import {
  auditRowsAfter,
  findAuditRows,
  insertAuditRowReturningId,
  updateAuditRow,
  type AuditLogColumns,
  type AuditLogFilter,
  type AuditLogRow,
} from '../catalog/audit.js';
import { AuditWriter, type AuditBacklog } from './audit-writer.js';

/**
 * The audit trail: who touched which patient data, when, and how it went. One row per HTTP
 * request on patient data, per DICOM association, per login attempt. Rows carry identifiers
 * (user, AE title, Patient ID, Study UID), never names or pixel data.
 */

export interface AuditEntry {
  actorType: 'user' | 'ae' | 'anonymous' | 'system';
  actor?: string;
  peer?: string;
  action: string;
  resourceType?: string;
  resourceId?: string;
  patientId?: string;
  studyInstanceUid?: string;
  /** `started`: written before a long or risky request runs, updated when it ends (AuditLog.begin). */
  outcome: 'success' | 'failure' | 'started';
  status?: number;
  details?: Record<string, unknown>;
  model?: string;
  promptHash?: string;
}

/** Identifiers listed per audit row at most (the counts say how many there were). */
export const AUDIT_LIST_MAX = 20;
/** Longest details JSON kept: a row describes a request, it does not copy it. */
const MAX_DETAILS_CHARS = 8192;
const PATIENT_CACHE_MAX = 2000;
const PATIENT_CACHE_MS = 60_000;
const UID = /^[0-9.]{1,64}$/;

/**
 * Which studies and patients a request returned (a search, a list): the patient ID column when
 * there was exactly one patient (the study UID likewise), and bounded lists with counts in details.
 */
export function returnedIdentifiers(
  items: Iterable<{ studyInstanceUid?: string | null; patientId?: string | null }>,
): Pick<AuditEntry, 'patientId' | 'studyInstanceUid'> & { details: Record<string, unknown> } {
  const studies = new Set<string>();
  const patients = new Set<string>();
  for (const i of items) {
    if (i.studyInstanceUid) studies.add(i.studyInstanceUid);
    if (i.patientId) patients.add(i.patientId);
  }
  const first = (set: Set<string>) => [...set].slice(0, AUDIT_LIST_MAX);
  return {
    patientId: patients.size === 1 ? [...patients][0] : undefined,
    studyInstanceUid: studies.size === 1 ? [...studies][0] : undefined,
    details: { studies: first(studies), studyCount: studies.size, patients: first(patients), patientCount: patients.size },
  };
}

export interface AuditRow extends Omit<AuditEntry, 'details'> {
  id: number;
  at: string;
  details: Record<string, unknown> | null;
}

/** The catalog's filter, with the actor named as the API names it (`user`). */
export type AuditQuery = Omit<AuditLogFilter, 'actor'> & { user?: string };

function clip(v: string | undefined, n: number): string | null {
  return v === undefined || v === '' ? null : v.slice(0, n);
}

function columns(e: AuditEntry): AuditLogColumns {
  let details = e.details ? JSON.stringify(e.details) : null;
  if (details && details.length > MAX_DETAILS_CHARS) details = JSON.stringify({ truncated: true, chars: details.length });
  return {
    at: new Date().toISOString(),
    actor_type: e.actorType,
    actor: clip(e.actor, 64),
    peer: clip(e.peer, 64),
    action: e.action.slice(0, 64),
    resource_type: clip(e.resourceType, 32),
    resource_id: clip(e.resourceId, 128),
    patient_id: clip(e.patientId, 64),
    study_instance_uid: clip(e.studyInstanceUid, 64),
    outcome: e.outcome,
    status: e.status ?? null,
    details,
    model: clip(e.model, 128),
    prompt_hash: clip(e.promptHash, 64),
  };
}

/** Default of AUDIT_MAX_LAG_MS: how long a read's row may stay uncommitted after its answer started. */
export const AUDIT_MAX_LAG_MS = 2000;

export interface AuditLogOptions {
  /** Where the patient of a study is looked up (the read pool: never queued behind ingest); default `db`. */
  readDb?: Db;
  /** AUDIT_MAX_LAG_MS; 0: every row is committed before its caller goes on. */
  maxLagMs?: number;
}

export class AuditLog {
  private readonly patients = new Map<string, { at: number; patientId: Promise<string | undefined> }>();
  private readonly writer: AuditWriter;
  private readonly readDb: Db;

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
    opts: AuditLogOptions = {},
  ) {
    this.writer = new AuditWriter(db, log, opts.maxLagMs ?? AUDIT_MAX_LAG_MS);
    this.readDb = opts.readDb ?? db;
  }

  /**
   * Write a row. An audit write that fails is logged loudly but does not fail the request it
   * describes: the data access already happened and the peer deserves its answer.
   *
   * `durability: 'commit'` (the default) resolves once the row is committed, in a group commit
   * with the rows of concurrent requests (AuditWriter). `'queued'` is for reads (GET/HEAD, which
   * change nothing): it resolves as soon as the row is queued, so a response never waits for the
   * one SQLite writer that ingest keeps busy. The audit trail stays asynchronous to the access it
   * records, as PS3.15 A.5 and IHE ATNA have it, with the loss a crash can cause bounded: rows
   * are committed in arrival order without delay, and once the oldest uncommitted row is older
   * than maxLagMs (or 5000 rows wait) every caller waits for commits again. A crash therefore
   * loses at most the read rows answered in the last maxLagMs; a clean stop (close) commits them
   * all; a failed commit is logged as AUDIT WRITE FAILED with its row count.
   */
  async record(e: AuditEntry, durability: 'commit' | 'queued' = 'commit'): Promise<void> {
    let row: AuditLogColumns;
    try {
      row = columns(await this.withPatient(e));
    } catch (err) {
      this.log.error({ err: errorMessage(err), action: e.action }, 'AUDIT WRITE FAILED');
      return;
    }
    await (durability === 'queued' ? this.writer.addQueued(row) : this.writer.add(row));
  }

  /** Rows queued but not yet committed (what a crash now would lose). */
  backlog(): AuditBacklog {
    return this.writer.backlog();
  }

  /** Commits every row recorded so far (readers of the table, and before the database closes). */
  flush(): Promise<void> {
    return this.writer.drain();
  }

  /**
   * Write the row of a request that is starting (outcome `started`), so a request that hangs or
   * kills the process still leaves a trace; `finish` turns it into the final row. Undefined when
   * the write failed (logged): the caller then records the final row on its own.
   */
  async begin(e: AuditEntry): Promise<number | undefined> {
    try {
      return await insertAuditRowReturningId(this.db, columns(await this.withPatient({ ...e, outcome: 'started' })));
    } catch (err) {
      this.log.error({ err: errorMessage(err), action: e.action }, 'AUDIT WRITE FAILED');
      return undefined;
    }
  }

  /** The final state of a row `begin` wrote (its `at` stays the start time). */
  async finish(id: number, e: AuditEntry): Promise<void> {
    try {
      const { at: _at, ...rest } = columns(await this.withPatient(e));
      await updateAuditRow(this.db, id, rest);
    } catch (err) {
      this.log.error({ err: errorMessage(err), action: e.action }, 'AUDIT WRITE FAILED');
    }
  }

  /**
   * The Patient ID of a study, for rows whose writer did not name it (PS3.15 audit messages name
   * the patient). Paid once a minute per study at most (frames come in hundreds); an unknown
   * study is not remembered (it may be arriving right now); a failed look-up is no patient, since
   * an audit detail must never fail what it describes.
   */
  patientOfStudy(studyInstanceUid: string): Promise<string | undefined> {
    if (!UID.test(studyInstanceUid)) return Promise.resolve(undefined);
    const now = Date.now();
    const hit = this.patients.get(studyInstanceUid);
    if (hit && hit.at > now - PATIENT_CACHE_MS) return hit.patientId;
    const patientId = patientIdsOfStudies(this.readDb, [studyInstanceUid]).then(
      (m) => m.get(studyInstanceUid),
      () => undefined,
    );
    if (this.patients.size >= PATIENT_CACHE_MAX) this.patients.clear();
    this.patients.set(studyInstanceUid, { at: now, patientId });
    void patientId.then((p) => p === undefined && this.patients.delete(studyInstanceUid));
    return patientId;
  }

  /** The entry with its study's patient filled in; not for anonymous rows (they must cost no look-ups). */
  private async withPatient(e: AuditEntry): Promise<AuditEntry> {
    if (e.patientId !== undefined || e.studyInstanceUid === undefined || e.actorType === 'anonymous') return e;
    return { ...e, patientId: await this.patientOfStudy(e.studyInstanceUid) };
  }

  /** Every row recorded before the query is in its answer (the queued ones are committed first). */
  async query(q: AuditQuery): Promise<{ total: number; rows: AuditRow[] }> {
    await this.writer.drain();
    const { total, rows } = await findAuditRows(this.db, { ...q, actor: q.user });
    return { total, rows: rows.map(toAuditRow) };
  }

  /** Rows after `afterId`, oldest first (an export's next batch). */
  async after(afterId: number, limit: number): Promise<AuditRow[]> {
    await this.writer.drain();
    return (await auditRowsAfter(this.db, afterId, limit)).map(toAuditRow);
  }
}

function toAuditRow(r: AuditLogRow): AuditRow {
  return {
    id: Number(r.id),
    at: r.at instanceof Date ? r.at.toISOString() : String(r.at),
    actorType: r.actor_type as AuditEntry['actorType'],
    actor: (r.actor as string | null) ?? undefined,
    peer: (r.peer as string | null) ?? undefined,
    action: String(r.action),
    resourceType: (r.resource_type as string | null) ?? undefined,
    resourceId: (r.resource_id as string | null) ?? undefined,
    patientId: (r.patient_id as string | null) ?? undefined,
    studyInstanceUid: (r.study_instance_uid as string | null) ?? undefined,
    outcome: r.outcome as AuditEntry['outcome'],
    status: r.status === null || r.status === undefined ? undefined : Number(r.status),
    details: r.details ? (JSON.parse(String(r.details)) as Record<string, unknown>) : null,
    model: (r.model as string | null) ?? undefined,
    promptHash: (r.prompt_hash as string | null) ?? undefined,
  };
}
