import type { Db } from '../db/connection.js';
import type { Logger } from '../logger.js';
import { errorMessage } from '../errors.js';
import { patientIdOfStudy } from '../catalog/catalog.js';

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
  outcome: 'success' | 'failure';
  status?: number;
  details?: Record<string, unknown>;
  model?: string;
  promptHash?: string;
}

export interface AuditRow extends Omit<AuditEntry, 'details'> {
  id: number;
  at: string;
  details: Record<string, unknown> | null;
}

export interface AuditQuery {
  user?: string;
  patientId?: string;
  studyInstanceUid?: string;
  action?: string;
  from?: string;
  to?: string;
  limit: number;
  offset: number;
}

function clip(v: string | undefined, n: number): string | null {
  return v === undefined || v === '' ? null : v.slice(0, n);
}

const PATIENT_CACHE_MS = 60_000;
const PATIENT_CACHE_SIZE = 10_000;

export class AuditLog {
  private readonly patients = new Map<string, { patientId: string; at: number }>();

  constructor(private readonly db: Db, private readonly log: Logger) {}

  /**
   * Write a row. An audit write that fails is logged loudly but does not fail the request it
   * describes: the data access already happened and the peer deserves its answer.
   */
  async record(e: AuditEntry): Promise<void> {
    try {
      const patientId = e.patientId ?? (e.studyInstanceUid ? await this.patientOf(e.studyInstanceUid) : undefined);
      await this.db('audit_logs').insert({
        at: new Date().toISOString(),
        actor_type: e.actorType,
        actor: clip(e.actor, 64),
        peer: clip(e.peer, 64),
        action: e.action.slice(0, 64),
        resource_type: clip(e.resourceType, 32),
        resource_id: clip(e.resourceId, 128),
        patient_id: clip(patientId, 64),
        study_instance_uid: clip(e.studyInstanceUid, 64),
        outcome: e.outcome,
        status: e.status ?? null,
        details: e.details ? JSON.stringify(e.details) : null,
        model: clip(e.model, 128),
        prompt_hash: clip(e.promptHash, 64),
      });
    } catch (err) {
      this.log.error({ err: errorMessage(err), action: e.action }, 'AUDIT WRITE FAILED');
    }
  }

  /**
   * PS3.15 audit messages name the patient: a row that names a study gets its patient, so every
   * caller need not look it up. Studies keep their patient, so answers are cached a while.
   */
  private async patientOf(studyInstanceUid: string): Promise<string | undefined> {
    const hit = this.patients.get(studyInstanceUid);
    if (hit && hit.at > Date.now() - PATIENT_CACHE_MS) return hit.patientId;
    const patientId = await patientIdOfStudy(this.db, studyInstanceUid);
    // An unknown study (deleted, or a failed request naming one) is looked up again next time.
    if (patientId === undefined) return undefined;
    if (this.patients.size >= PATIENT_CACHE_SIZE) this.patients.clear();
    this.patients.set(studyInstanceUid, { patientId, at: Date.now() });
    return patientId;
  }

  async query(q: AuditQuery): Promise<{ total: number; rows: AuditRow[] }> {
    const base = this.db('audit_logs');
    if (q.user) base.where('actor', q.user);
    if (q.patientId) base.where('patient_id', q.patientId);
    if (q.studyInstanceUid) base.where('study_instance_uid', q.studyInstanceUid);
    if (q.action) base.where('action', q.action);
    if (q.from) base.where('at', '>=', q.from);
    if (q.to) base.where('at', '<=', q.to);
    const [{ n }] = (await base.clone().count({ n: '*' })) as Array<{ n: number | string }>;
    const rows = (await base.clone().orderBy('id', 'desc').limit(q.limit).offset(q.offset)) as Array<Record<string, unknown>>;
    return {
      total: Number(n),
      rows: rows.map((r) => ({
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
      })),
    };
  }
}
