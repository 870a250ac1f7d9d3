import type { AuditLog } from '../audit/audit.js';
import {
  deleteSubscriptions,
  insertEvent,
  insertWorkitem,
  openWorkitemUids,
  searchWorkitems,
  subscribersOf,
  suspendSubscription,
  updateWorkitem,
  upsertSubscription,
  workitemByUid,
  type WorkitemColumns,
  type WorkitemRow,
} from '../catalog/workitems.js';
import type { Db, Trx } from '../db/connection.js';
import type { DicomJsonDataset } from '../dicom/dicom-json.js';
import { newUid } from '../dicom/new-uid.js';
import { isValidUid } from '../dicom/uids.js';
import type { EventBus } from '../events.js';
import type { JobQueue } from '../jobs/queue.js';
import { searchConditions, type WorkitemQuery } from './search.js';
import { changeState, checkUpdate, DIMSE, isUpsState, planCancel, UpsError, WARNINGS, type UpsState } from './state-machine.js';
import {
  attr,
  checkCreate,
  checkUpdatePayload,
  eventReport,
  GLOBAL_SUBSCRIPTION_UID,
  FILTERED_GLOBAL_SUBSCRIPTION_UID,
  dtNow,
  inputStudy,
  stateReport,
  text,
  UPS_EVENT,
  UPS_PUSH_SOP_CLASS,
  workitemCode,
} from './workitem-json.js';

/**
 * The worklist (PS3.4 Annex CC, PS3.18 §11): workitems created, searched, retrieved, updated and
 * moved through their states, subscriptions, and the event reports each change writes, in the
 * same transaction (ups_events), for the WebSocket channels to send. A workitem whose Scheduled
 * Workitem Code is the node's own (NODE_WORKITEM_CODE) gets a `ups.perform` job with it: the node
 * performs it (src/ups/performer.ts).
 */

/**
 * The Scheduled Workitem Code that asks this node for an AI analysis of the study named in the
 * Input Information Sequence. A private coding scheme ("99" prefix, PS3.16 8.2): no standard code
 * names "AI analysis of a study" for IHE AIW-I yet.
 */
export const NODE_WORKITEM_CODE = {
  value: 'RADIANT-AI',
  scheme: '99RADIANT',
  meaning: 'AI image analysis (MedGemma draft report)',
} as const;

export const UPS_PERFORM_JOB = 'ups.perform';

export interface WorklistDeps {
  db: Db;
  queue: JobQueue;
  audit: AuditLog;
  events?: EventBus;
}

export interface Workitem {
  uid: string;
  state: UpsState;
  transactionUid: string | null;
  dataset: DicomJsonDataset;
  nodePerformer: boolean;
  analysisId: number | null;
  cancelRequested: boolean;
  studyInstanceUid: string | null;
  createdAt: string;
}

function fromRow(r: WorkitemRow): Workitem {
  if (!isUpsState(r.state)) throw new Error(`workitem ${r.sop_instance_uid} has an unknown state ${r.state}`);
  return {
    uid: r.sop_instance_uid,
    state: r.state,
    transactionUid: r.transaction_uid,
    dataset: JSON.parse(r.dataset) as DicomJsonDataset,
    nodePerformer: Boolean(r.node_performer),
    analysisId: r.analysis_id === null ? null : Number(r.analysis_id),
    cancelRequested: r.cancel_requested_at !== null,
    studyInstanceUid: r.study_instance_uid,
    createdAt: new Date(r.created_at).toISOString(),
  };
}

/** The searchable columns of a dataset (what search.ts matches on). */
function columnsOf(ds: DicomJsonDataset): WorkitemColumns {
  const name = text(ds, 'PatientName') ?? null;
  const code = workitemCode(ds);
  return {
    patient_id: text(ds, 'PatientID') ?? null,
    patient_name: name,
    patient_name_upper: name?.toUpperCase() ?? null,
    study_instance_uid: inputStudy(ds) ?? null,
    scheduled_start: text(ds, 'ScheduledProcedureStepStartDateTime') ?? null,
    priority: text(ds, 'ScheduledProcedureStepPriority') ?? null,
    label: text(ds, 'ProcedureStepLabel') ?? null,
    worklist_label: text(ds, 'WorklistLabel') ?? null,
    workitem_code: code?.value ?? null,
    workitem_scheme: code?.scheme ?? null,
  };
}

const notFound = (uid: string) => new UpsError('not-found', DIMSE.noSuchInstance, '', `no workitem ${uid}`);

export const isNodeCode = (ds: DicomJsonDataset): boolean => {
  const c = workitemCode(ds);
  return c?.value === NODE_WORKITEM_CODE.value && c.scheme === NODE_WORKITEM_CODE.scheme;
};

export class Worklist {
  constructor(private readonly deps: WorklistDeps) {}

  get db(): Db {
    return this.deps.db;
  }

  async get(uid: string): Promise<Workitem> {
    const r = await workitemByUid(this.db, uid);
    if (!r) throw notFound(uid);
    return fromRow(r);
  }

  async find(uid: string): Promise<Workitem | undefined> {
    const r = await workitemByUid(this.db, uid);
    return r && fromRow(r);
  }

  async search(q: WorkitemQuery): Promise<Workitem[]> {
    return (await searchWorkitems(this.db, searchConditions(q), q.limit, q.offset)).map(fromRow);
  }

  /**
   * Create (N-CREATE): a SCHEDULED workitem. Its UID comes from the request (the query or the
   * dataset's SOP Instance UID) or is made here. Extra: columns the node sets on its own
   * workitems (the analysis performing it).
   */
  async create(
    ds: DicomJsonDataset,
    uidFromRequest: string | undefined,
    createdBy: string,
    extra: WorkitemColumns = {},
  ): Promise<Workitem> {
    checkCreate(ds);
    const uid = uidFromRequest ?? text(ds, 'SOPInstanceUID') ?? newUid();
    if (!isValidUid(uid)) throw new UpsError('invalid-input', 0xa900, WARNINGS.stateInconsistent, `"${uid}" is not a valid UID`);
    if (uid === GLOBAL_SUBSCRIPTION_UID || uid === FILTERED_GLOBAL_SUBSCRIPTION_UID) {
      throw new UpsError('invalid-input', 0xa900, WARNINGS.stateInconsistent, 'a well-known subscription UID names no workitem');
    }
    const stored: DicomJsonDataset = {
      ...ds,
      ...Object.fromEntries([attr('SOPClassUID', UPS_PUSH_SOP_CLASS), attr('SOPInstanceUID', uid)]),
    };
    const now = new Date().toISOString();
    const ours = isNodeCode(ds);
    await this.db.transaction(async (trx) => {
      if (await workitemByUid(trx, uid)) throw new UpsError('conflict', 0x0111, '', `workitem ${uid} already exists`);
      await insertWorkitem(trx, {
        sop_instance_uid: uid,
        state: 'SCHEDULED',
        transaction_uid: null,
        dataset: JSON.stringify(stored),
        node_performer: false,
        analysis_id: null,
        cancel_requested_at: null,
        created_by: createdBy.slice(0, 128),
        created_at: now,
        updated_at: now,
        ...columnsOf(stored),
        ...extra,
      } as WorkitemRow);
      // Global subscribers follow every new workitem (PS3.4 CC.2.3.3); they hear it is SCHEDULED.
      for (const ae of await subscribersOf(trx, GLOBAL_SUBSCRIPTION_UID)) {
        await upsertSubscription(trx, { workitemUid: uid, aeTitle: ae, deletionLock: false }, now);
      }
      await this.event(trx, uid, UPS_EVENT.stateReport, stateReport(uid, 'SCHEDULED', text(ds, 'InputReadinessState')!), now);
      if (ours) await this.schedulePerform(trx, uid);
    });
    if (ours) this.deps.events?.emit('job-due', { kind: UPS_PERFORM_JOB, runAt: new Date() });
    return this.get(uid);
  }

  /** The node's ups.perform job for a workitem, now or at `runAt` (the earliest asked wins). */
  async schedulePerform(trx: Trx | Db, uid: string, runAt = new Date()): Promise<void> {
    await this.deps.queue.schedule(
      trx,
      { kind: UPS_PERFORM_JOB, payload: { workitem: uid }, dedupeKey: `ups.perform:${uid}`, runAt },
      'earliest',
    );
  }

  /** Update (N-SET): top-level attributes replaced; the state, the lock and the UIDs are not the payload's to set. */
  async update(uid: string, transactionUid: string | undefined, changes: DicomJsonDataset): Promise<Workitem> {
    checkUpdatePayload(changes);
    await this.db.transaction(async (trx) => {
      const r = await workitemByUid(trx, uid);
      if (!r) throw notFound(uid);
      const w = fromRow(r);
      checkUpdate(w, transactionUid);
      const ds = { ...w.dataset, ...changes };
      const ok = await updateWorkitem(
        trx,
        uid,
        { dataset: JSON.stringify(ds), updated_at: new Date().toISOString(), ...columnsOf(ds) },
        { state: w.state, transactionUid: w.transactionUid },
      );
      if (!ok) throw new UpsError('conflict', DIMSE.mayNoLongerBeUpdated, WARNINGS.updateInconsistent, 'the workitem changed meanwhile');
    });
    return this.get(uid);
  }

  /**
   * Change State (N-ACTION): claim, complete or cancel. `merge`: attributes the performer sets
   * with the change (the node's Performed Procedure and Progress Information on completion).
   * Returns the workitem and the Warning of a request that found it already there.
   */
  async changeState(
    uid: string,
    requested: string,
    transactionUid: string | undefined,
    opts: { merge?: DicomJsonDataset; nodePerformer?: boolean; analysisId?: number; reason?: string } = {},
  ): Promise<{ workitem: Workitem; warning?: string }> {
    let warning: string | undefined;
    await this.db.transaction(async (trx) => {
      const r = await workitemByUid(trx, uid);
      if (!r) throw notFound(uid);
      const w = fromRow(r);
      const change = changeState(w, requested, transactionUid);
      warning = change.warning;
      if (!change.changed) return;
      const now = new Date().toISOString();
      const ds: DicomJsonDataset = { ...w.dataset, ...opts.merge, ...Object.fromEntries([attr('ProcedureStepState', change.to)]) };
      // The lock is kept in the row, never in what Retrieve answers (publicView drops it anyway).
      if (change.to === 'IN PROGRESS') Object.assign(ds, Object.fromEntries([attr('TransactionUID', change.transactionUid)]));
      const cols: WorkitemColumns = {
        state: change.to,
        transaction_uid: change.transactionUid,
        dataset: JSON.stringify(ds),
        updated_at: now,
      };
      if (opts.nodePerformer !== undefined) cols.node_performer = opts.nodePerformer;
      if (opts.analysisId !== undefined) cols.analysis_id = opts.analysisId;
      if (!(await updateWorkitem(trx, uid, cols, { state: w.state, transactionUid: w.transactionUid }))) {
        throw new UpsError('conflict', DIMSE.alreadyInProgress, WARNINGS.stateInconsistent, 'the workitem changed meanwhile');
      }
      await this.event(
        trx,
        uid,
        UPS_EVENT.stateReport,
        stateReport(uid, change.to, text(ds, 'InputReadinessState') ?? 'READY', opts.reason),
        now,
      );
    });
    return { workitem: await this.get(uid), warning };
  }

  /** Progress of an IN PROGRESS workitem by its owner: Progress Information and a UPS Progress Report. */
  async progress(uid: string, transactionUid: string, percent: number, description: string): Promise<void> {
    await this.db.transaction(async (trx) => {
      const r = await workitemByUid(trx, uid);
      if (!r) throw notFound(uid);
      const w = fromRow(r);
      checkUpdate(w, transactionUid);
      const info = Object.fromEntries([
        attr('ProcedureStepProgress', String(Math.round(percent))),
        attr('ProcedureStepProgressDescription', description),
      ]);
      const ds = { ...w.dataset, ...Object.fromEntries([attr('ProcedureStepProgressInformationSequence', info)]) };
      const now = new Date().toISOString();
      if (!(await updateWorkitem(trx, uid, { dataset: JSON.stringify(ds), updated_at: now }, { state: w.state, transactionUid }))) return;
      await this.event(
        trx,
        uid,
        UPS_EVENT.progressReport,
        eventReport(uid, UPS_EVENT.progressReport, [attr('ProcedureStepProgressInformationSequence', info)]),
        now,
      );
    });
  }

  /**
   * Request Cancellation (PS3.4 CC.2.2.3). SCHEDULED: canceled here (through IN PROGRESS);
   * IN PROGRESS and performed by the node: marked, and the performer job cancels it; IN PROGRESS
   * elsewhere: a Cancel Requested event for its subscribers (409 when there are none).
   */
  async requestCancel(uid: string, request: DicomJsonDataset, by: string): Promise<{ warning?: string }> {
    const w = await this.get(uid);
    const reachable = (await subscribersOf(this.db, uid)).length > 0;
    const plan = planCancel(w, { nodePerforms: w.nodePerformer, performerReachable: reachable });
    if (plan === 'already') return { warning: WARNINGS.alreadyCanceled };
    const reason = text(request, 'ReasonForCancellation') ?? `cancellation requested by ${by}`;
    const now = new Date().toISOString();
    if (plan === 'notify') {
      await this.db.transaction(async (trx) => {
        await updateWorkitem(trx, uid, { cancel_requested_at: now, updated_at: now }, { state: w.state });
        const info = [attr('ReasonForCancellation', reason)];
        const contact = text(request, 'ContactDisplayName');
        if (contact) info.push(attr('ContactDisplayName', contact));
        await this.event(trx, uid, UPS_EVENT.cancelRequested, eventReport(uid, UPS_EVENT.cancelRequested, info), now);
      });
      return {};
    }
    if (w.state === 'SCHEDULED') {
      // The SCP cancels a SCHEDULED workitem itself: IN PROGRESS with its own lock, then CANCELED.
      const tx = newUid();
      await this.changeState(uid, 'IN PROGRESS', tx);
      await this.changeState(uid, 'CANCELED', tx, { merge: cancelInfo(reason), reason });
      return {};
    }
    // Performed by the node: its ups.perform job stops the analysis and cancels the workitem.
    await this.db.transaction(async (trx) => {
      await updateWorkitem(trx, uid, { cancel_requested_at: now, updated_at: now }, { state: w.state });
      await this.schedulePerform(trx, uid);
    });
    this.deps.events?.emit('job-due', { kind: UPS_PERFORM_JOB, runAt: new Date() });
    return {};
  }

  /**
   * Subscribe (PS3.4 CC.2.3.3): to one workitem (its initial State Report follows), or to all of
   * them (the Global Subscription UID: every open workitem now, every new one later).
   */
  async subscribe(target: string, aeTitle: string, deletionLock: boolean): Promise<void> {
    const now = new Date().toISOString();
    await this.db.transaction(async (trx) => {
      if (target === GLOBAL_SUBSCRIPTION_UID || target === FILTERED_GLOBAL_SUBSCRIPTION_UID) {
        await upsertSubscription(trx, { workitemUid: GLOBAL_SUBSCRIPTION_UID, aeTitle, deletionLock }, now);
        for (const uid of await openWorkitemUids(trx)) {
          await upsertSubscription(trx, { workitemUid: uid, aeTitle, deletionLock }, now);
        }
        return;
      }
      const r = await workitemByUid(trx, target);
      if (!r) throw notFound(target);
      const w = fromRow(r);
      await upsertSubscription(trx, { workitemUid: target, aeTitle, deletionLock }, now);
      const report = stateReport(target, w.state, text(w.dataset, 'InputReadinessState') ?? 'READY');
      await insertEvent(trx, { workitemUid: target, eventType: UPS_EVENT.stateReport, aeTitle, report: JSON.stringify(report) }, now);
    });
  }

  /** Unsubscribe: from one workitem, or (the global UID) from the worklist and every workitem. */
  async unsubscribe(target: string, aeTitle: string): Promise<number> {
    const global = target === GLOBAL_SUBSCRIPTION_UID || target === FILTERED_GLOBAL_SUBSCRIPTION_UID;
    if (!global && !(await workitemByUid(this.db, target))) throw notFound(target);
    return deleteSubscriptions(this.db, aeTitle, global ? 'all' : target);
  }

  /** Suspend a global subscription: no new workitems for it; those it follows stay (PS3.4 CC.2.3.3). */
  async suspend(aeTitle: string): Promise<boolean> {
    return suspendSubscription(this.db, GLOBAL_SUBSCRIPTION_UID, aeTitle);
  }

  private async event(trx: Trx, uid: string, type: number, report: DicomJsonDataset, now: string): Promise<void> {
    await insertEvent(trx, { workitemUid: uid, eventType: type, aeTitle: null, report: JSON.stringify(report) }, now);
  }
}

/** The Progress Information of a canceled workitem: when and why (PS3.4 Table CC.2.5-3). */
export function cancelInfo(reason: string): DicomJsonDataset {
  const info = Object.fromEntries([
    attr('ProcedureStepCancellationDateTime', dtNow()),
    attr('ReasonForCancellation', reason.slice(0, 10240)),
  ]);
  return Object.fromEntries([attr('ProcedureStepProgressInformationSequence', info)]);
}
