import type { Db } from '../db/connection.js';

/** The audit_logs table: src/audit/audit.ts decides what a row says, this module stores and finds rows. */

/** The columns of one audit row (`id` is the table's). */
export interface AuditLogColumns {
  at: string;
  actor_type: string;
  actor: string | null;
  peer: string | null;
  action: string;
  resource_type: string | null;
  resource_id: string | null;
  patient_id: string | null;
  study_instance_uid: string | null;
  outcome: string;
  status: number | null;
  /** JSON text. */
  details: string | null;
  model: string | null;
  prompt_hash: string | null;
}

/** A stored row: `at` comes back a Date from PostgreSQL, a string from SQLite; `status` may be a string. */
export type AuditLogRow = Omit<AuditLogColumns, 'at' | 'status'> & {
  id: number | string;
  at: string | Date;
  status: number | string | null;
};

export interface AuditLogFilter {
  actor?: string;
  patientId?: string;
  studyInstanceUid?: string;
  action?: string;
  outcome?: string;
  /** `at` bounds, inclusive (ISO strings). */
  from?: string;
  to?: string;
  limit: number;
  offset: number;
}

/** Inserts rows in one statement (one transaction, one commit): the audit writer's group commit. */
export async function insertAuditRows(db: Db, rows: AuditLogColumns[]): Promise<void> {
  if (rows.length) await db('audit_logs').insert(rows);
}

/** Inserts a row and returns its id. */
export async function insertAuditRowReturningId(db: Db, row: AuditLogColumns): Promise<number> {
  const [r] = (await db('audit_logs').insert(row).returning('id')) as Array<{ id: number | string } | number>;
  return typeof r === 'object' ? Number(r.id) : Number(r);
}

export async function updateAuditRow(db: Db, id: number, row: Omit<AuditLogColumns, 'at'>): Promise<void> {
  await db('audit_logs').where({ id }).update(row);
}

/** One page of the matching rows, newest first, and how many match in all. */
export async function findAuditRows(db: Db, q: AuditLogFilter): Promise<{ total: number; rows: AuditLogRow[] }> {
  const base = db('audit_logs');
  if (q.actor) base.where('actor', q.actor);
  if (q.patientId) base.where('patient_id', q.patientId);
  if (q.studyInstanceUid) base.where('study_instance_uid', q.studyInstanceUid);
  if (q.action) base.where('action', q.action);
  if (q.outcome) base.where('outcome', q.outcome);
  if (q.from) base.where('at', '>=', q.from);
  if (q.to) base.where('at', '<=', q.to);
  const [{ n }] = (await base.clone().count({ n: '*' })) as Array<{ n: number | string }>;
  const rows = (await base.clone().orderBy('id', 'desc').limit(q.limit).offset(q.offset)) as AuditLogRow[];
  return { total: Number(n), rows };
}

/** Rows after `afterId`, oldest first (an export's next batch). */
export async function auditRowsAfter(db: Db, afterId: number, limit: number): Promise<AuditLogRow[]> {
  return (await db('audit_logs').where('id', '>', afterId).orderBy('id', 'asc').limit(limit)) as AuditLogRow[];
}

/** The last row id an export delivered; undefined before its first run. */
export async function auditExportCursor(db: Db, name: string): Promise<number | undefined> {
  const row = (await db('audit_export_cursors').where({ name }).first('last_id')) as { last_id: number | string } | undefined;
  return row ? Number(row.last_id) : undefined;
}

/** The newest row id now (0 when there is none): where an export that starts afresh begins. */
export async function lastAuditRowId(db: Db): Promise<number> {
  const [{ id }] = (await db('audit_logs').max({ id: 'id' })) as Array<{ id: number | string | null }>;
  return Number(id ?? 0);
}

export async function setAuditExportCursor(db: Db, name: string, lastId: number, ts: string): Promise<void> {
  await db('audit_export_cursors').insert({ name, last_id: lastId, updated_at: ts }).onConflict('name').merge(['last_id', 'updated_at']);
}
