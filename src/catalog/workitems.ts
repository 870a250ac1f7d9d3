import type { Db, Trx } from '../db/connection.js';
import { attributeMatchSql, dialectOf, type AttributeMatch } from './query/conditions.js';

/**
 * UPS workitems (ups_workitems), their subscriptions (ups_subscriptions) and event reports
 * (ups_events): migrations/023_ups_workitems.ts. src/ups/ gives them their rules; this module
 * reads and writes the rows. Workitem datasets are DICOM JSON text.
 */

export interface WorkitemRow {
  sop_instance_uid: string;
  state: string;
  transaction_uid: string | null;
  patient_id: string | null;
  patient_name: string | null;
  patient_name_upper: string | null;
  study_instance_uid: string | null;
  scheduled_start: string | null;
  priority: string | null;
  label: string | null;
  worklist_label: string | null;
  workitem_code: string | null;
  workitem_scheme: string | null;
  dataset: string;
  node_performer: boolean | number;
  analysis_id: number | string | null;
  cancel_requested_at: string | Date | null;
  created_by: string | null;
  created_at: string | Date;
  updated_at: string | Date;
}

export type WorkitemColumns = Partial<Omit<WorkitemRow, 'sop_instance_uid' | 'created_at'>>;

/** The alias searches give ups_workitems: the query engine's columns for workitems name it (`w.state`). */
export const WORKITEM_ALIAS = 'w';

export async function insertWorkitem(trx: Trx | Db, row: WorkitemRow): Promise<void> {
  await trx('ups_workitems').insert(row);
}

export async function workitemByUid(db: Trx | Db, uid: string): Promise<WorkitemRow | undefined> {
  return (await db('ups_workitems').where({ sop_instance_uid: uid }).first()) as WorkitemRow | undefined;
}

/**
 * Changes a workitem's columns when it is still in `expectState` (with `expectTx` as its lock,
 * when given): false when another request changed it first.
 */
export async function updateWorkitem(
  trx: Trx | Db,
  uid: string,
  cols: WorkitemColumns,
  expect: { state: string; transactionUid?: string | null },
): Promise<boolean> {
  const q = trx('ups_workitems').where({ sop_instance_uid: uid, state: expect.state });
  if (expect.transactionUid !== undefined) {
    if (expect.transactionUid === null) q.whereNull('transaction_uid');
    else q.andWhere({ transaction_uid: expect.transactionUid });
  }
  return (await q.update(cols)) > 0;
}

/** Workitems matching every condition (the query engine's, on `w.` columns), oldest scheduled first. */
export async function searchWorkitems(db: Db, conditions: AttributeMatch[], limit: number, offset: number): Promise<WorkitemRow[]> {
  const dialect = dialectOf(db);
  const q = db(`ups_workitems as ${WORKITEM_ALIAS}`).select(`${WORKITEM_ALIAS}.*`);
  for (const c of conditions) {
    const f = attributeMatchSql(c, dialect);
    q.whereRaw(f.sql, f.bindings as never[]);
  }
  return (await q
    .orderBy([{ column: 'scheduled_start' }, { column: 'sop_instance_uid' }])
    .limit(limit)
    .offset(offset)) as WorkitemRow[];
}

/** Workitems not yet final, for a new global subscription. */
export async function openWorkitemUids(db: Trx | Db): Promise<string[]> {
  return (await db('ups_workitems').whereIn('state', ['SCHEDULED', 'IN PROGRESS']).pluck('sop_instance_uid')) as string[];
}

/** Adds or refreshes one subscription (a workitem's, or the global one's row). */
export async function upsertSubscription(
  trx: Trx | Db,
  s: { workitemUid: string; aeTitle: string; deletionLock: boolean },
  now: string,
): Promise<void> {
  await trx('ups_subscriptions')
    .insert({ workitem_uid: s.workitemUid, ae_title: s.aeTitle, deletion_lock: s.deletionLock, suspended: false, created_at: now })
    .onConflict(['workitem_uid', 'ae_title'])
    .merge({ deletion_lock: s.deletionLock, suspended: false });
}

/** Removes subscriptions of `aeTitle`: to one workitem, or (`all`) every one it has. Returns how many. */
export async function deleteSubscriptions(trx: Trx | Db, aeTitle: string, workitemUid: string | 'all'): Promise<number> {
  const q = trx('ups_subscriptions').where({ ae_title: aeTitle });
  if (workitemUid !== 'all') q.andWhere({ workitem_uid: workitemUid });
  return q.delete();
}

export async function suspendSubscription(trx: Trx | Db, workitemUid: string, aeTitle: string): Promise<boolean> {
  return (await trx('ups_subscriptions').where({ workitem_uid: workitemUid, ae_title: aeTitle }).update({ suspended: true })) > 0;
}

/** AE titles with an active subscription to `workitemUid` (its own rows, or the global row given). */
export async function subscribersOf(db: Trx | Db, workitemUid: string): Promise<string[]> {
  return (await db('ups_subscriptions').where({ workitem_uid: workitemUid, suspended: false }).pluck('ae_title')) as string[];
}

export interface EventRow {
  id: number | string;
  workitem_uid: string;
  event_type: number;
  ae_title: string | null;
  report: string;
  created_at: string | Date;
}

export async function insertEvent(
  trx: Trx | Db,
  e: { workitemUid: string; eventType: number; aeTitle: string | null; report: string },
  now: string,
): Promise<void> {
  await trx('ups_events').insert({
    workitem_uid: e.workitemUid,
    event_type: e.eventType,
    ae_title: e.aeTitle,
    report: e.report,
    created_at: now,
  });
}

/** Event reports after `afterId`, oldest first. */
export async function eventsAfter(db: Db, afterId: number, limit: number): Promise<EventRow[]> {
  return (await db('ups_events').where('id', '>', afterId).orderBy('id').limit(limit)) as EventRow[];
}

export async function lastEventId(db: Db): Promise<number> {
  const r = (await db('ups_events').max({ id: 'id' }).first()) as { id: number | string | null } | undefined;
  return Number(r?.id ?? 0);
}

/** Event reports older than `before` are dropped (a channel reads only what came after it opened). */
export async function pruneEvents(db: Db, before: string): Promise<number> {
  return db('ups_events').where('created_at', '<', before).delete();
}
