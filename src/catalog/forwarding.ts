import type { Knex } from 'knex';
import { isPostgres, type Db } from '../db/connection.js';
import { backoffDelay } from '../backoff.js';

/**
 * The forward records (forward_items): one row per instance and destination, its delivery state
 * and outcome. queued → sending (claimed by the forward.send job of its destination) → sent, or
 * back to queued with a later next_attempt_at, or failed once attempts run out. When each
 * destination's job runs is the job queue's business (src/forwarding/forwarder.ts schedules it);
 * these rows say what it sends and what came of it. A claim older than `staleMs` (its worker
 * died) is queued again.
 */

export type ForwardStatus = 'queued' | 'sending' | 'sent' | 'failed';

export interface ForwardItem {
  id: number;
  ruleId: number | null;
  nodeId: number;
  sopInstanceUid: string;
  studyInstanceUid: string;
  status: ForwardStatus;
  attempts: number;
  nextAttemptAt: string;
  lastError: string | null;
  createdAt: string;
  sentAt: string | null;
}

interface Row {
  id: number | string;
  rule_id: number | null;
  node_id: number;
  sop_instance_uid: string;
  study_instance_uid: string;
  status: ForwardStatus;
  attempts: number;
  next_attempt_at: string | Date;
  last_error: string | null;
  created_at: string | Date;
  sent_at: string | Date | null;
}

const iso = (v: string | Date | null): string | null => (v === null ? null : v instanceof Date ? v.toISOString() : v);

function fromRow(r: Row): ForwardItem {
  return {
    id: Number(r.id),
    ruleId: r.rule_id === null ? null : Number(r.rule_id),
    nodeId: Number(r.node_id),
    sopInstanceUid: r.sop_instance_uid,
    studyInstanceUid: r.study_instance_uid,
    status: r.status,
    attempts: Number(r.attempts),
    nextAttemptAt: iso(r.next_attempt_at)!,
    lastError: r.last_error,
    createdAt: iso(r.created_at)!,
    sentAt: iso(r.sent_at),
  };
}

export interface RetryPolicy {
  maxAttempts: number;
  /** Delay after the first failure; doubles each time up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 8, baseDelayMs: 30_000, maxDelayMs: 3_600_000 };

export function retryDelay(policy: RetryPolicy, attempts: number): number {
  return backoffDelay({ baseMs: policy.baseDelayMs, maxMs: policy.maxDelayMs }, attempts);
}

export async function enqueueIn(
  trx: Knex.Transaction | Db,
  items: Array<{ ruleId: number | null; nodeId: number; sopInstanceUid: string; studyInstanceUid: string }>,
  now = new Date(),
): Promise<void> {
  if (items.length === 0) return;
  const ts = now.toISOString();
  await trx('forward_items').insert(
    items.map((i) => ({
      rule_id: i.ruleId,
      node_id: i.nodeId,
      sop_instance_uid: i.sopInstanceUid,
      study_instance_uid: i.studyInstanceUid,
      status: 'queued',
      attempts: 0,
      next_attempt_at: ts,
      created_at: ts,
    })),
  );
}

/**
 * Claims up to `limit` due items of one destination, so one association carries them.
 * PostgreSQL: FOR UPDATE SKIP LOCKED lets several nodes share the queue; SQLite has one writer, so the update itself is the claim.
 */
export async function claimBatch(db: Db, worker: string, limit: number, nodeId: number, now = new Date()): Promise<ForwardItem[]> {
  const ts = now.toISOString();
  return db.transaction(async (trx) => {
    let pick = trx('forward_items')
      .where({ status: 'queued', node_id: nodeId })
      .andWhere('next_attempt_at', '<=', ts)
      .orderBy('id')
      .limit(limit)
      .select('id');
    if (isPostgres(db)) pick = pick.forUpdate().skipLocked();
    const ids = ((await pick) as Array<{ id: number | string }>).map((r) => Number(r.id));
    if (ids.length === 0) return [];
    await trx('forward_items').whereIn('id', ids).update({ status: 'sending', claimed_by: worker, claimed_at: ts });
    return ((await trx('forward_items').whereIn('id', ids).orderBy('id')) as Row[]).map(fromRow);
  });
}

export async function markSent(db: Db, ids: number[], now = new Date()): Promise<void> {
  if (ids.length)
    await db('forward_items').whereIn('id', ids).update({ status: 'sent', sent_at: now.toISOString(), last_error: null, claimed_by: null });
}

/** A failed attempt: queued again after the back-off, or failed for good when attempts run out. */
export async function markFailed(db: Db, item: ForwardItem, error: string, policy: RetryPolicy, now = new Date()): Promise<void> {
  const attempts = item.attempts + 1;
  const final = attempts >= policy.maxAttempts;
  await db('forward_items')
    .where({ id: item.id })
    .update({
      status: final ? 'failed' : 'queued',
      attempts,
      last_error: error.slice(0, 1000),
      next_attempt_at: new Date(now.getTime() + (final ? 0 : retryDelay(policy, attempts))).toISOString(),
      claimed_by: null,
    });
}

/** Items whose worker died while sending go back to the queue. */
export async function requeueStale(db: Db, staleMs: number, now = new Date()): Promise<number> {
  return db('forward_items')
    .where('status', 'sending')
    .andWhere('claimed_at', '<', new Date(now.getTime() - staleMs).toISOString())
    .update({ status: 'queued', claimed_by: null });
}

/** A failed item (or all failed items of a node) back to the queue, attempts reset. */
export async function retryFailed(db: Db, where: { id?: number; nodeId?: number }, now = new Date()): Promise<number> {
  const q = db('forward_items').where('status', 'failed');
  if (where.id !== undefined) q.andWhere('id', where.id);
  if (where.nodeId !== undefined) q.andWhere('node_id', where.nodeId);
  return q.update({ status: 'queued', attempts: 0, next_attempt_at: now.toISOString() });
}

export async function getItem(db: Db, id: number): Promise<ForwardItem | undefined> {
  const row = (await db('forward_items').where({ id }).first()) as Row | undefined;
  return row ? fromRow(row) : undefined;
}

/**
 * When each destination has work again: its earliest queued item's next attempt, or for items
 * still marked sending, the moment their claim goes stale (their worker may have died). One
 * destination with `nodeId`, else every destination with unfinished items.
 */
export async function nextDueByNode(db: Db, staleMs: number, nodeId?: number): Promise<Map<number, Date>> {
  const out = new Map<number, Date>();
  const keep = (node: number, at: Date) => {
    const was = out.get(node);
    if (!was || at < was) out.set(node, at);
  };
  const scoped = (status: ForwardStatus) => {
    const b = db('forward_items').where('status', status);
    if (nodeId !== undefined) b.andWhere('node_id', nodeId);
    return b.groupBy('node_id').select('node_id');
  };
  const queued = (await scoped('queued').min({ at: 'next_attempt_at' })) as Array<{ node_id: number; at: string | Date }>;
  for (const r of queued) keep(Number(r.node_id), new Date(r.at));
  const sending = (await scoped('sending').min({ at: 'claimed_at' })) as Array<{ node_id: number; at: string | Date | null }>;
  for (const r of sending) keep(Number(r.node_id), new Date(new Date(r.at ?? 0).getTime() + staleMs));
  return out;
}

export interface ItemQuery {
  status?: ForwardStatus;
  nodeId?: number;
  studyInstanceUid?: string;
  limit: number;
  offset: number;
}

export async function listItems(
  db: Db,
  q: ItemQuery,
): Promise<{ total: number; counts: Record<ForwardStatus, number>; items: ForwardItem[] }> {
  const filtered = () => {
    const b = db('forward_items');
    if (q.status) b.where('status', q.status);
    if (q.nodeId !== undefined) b.where('node_id', q.nodeId);
    if (q.studyInstanceUid) b.where('study_instance_uid', q.studyInstanceUid);
    return b;
  };
  const [{ n }] = (await filtered().count({ n: '*' })) as Array<{ n: number | string }>;
  const items = ((await filtered().orderBy('id', 'desc').limit(q.limit).offset(q.offset)) as Row[]).map(fromRow);
  const counts: Record<ForwardStatus, number> = { queued: 0, sending: 0, sent: 0, failed: 0 };
  for (const r of (await db('forward_items').select('status').count({ n: '*' }).groupBy('status')) as Array<{
    status: ForwardStatus;
    n: number | string;
  }>) {
    counts[r.status] = Number(r.n);
  }
  return { total: Number(n), counts, items };
}
