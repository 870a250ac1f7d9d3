import { getAnalysis, type Analysis } from '../analysis/analyses.js';
import { cancelAnalysis, requestAnalysis, type AnalysisRequester } from '../analysis/requests.js';
import type { AuditLog } from '../audit/audit.js';
import { findInstance } from '../catalog/catalog.js';
import { studyFacts } from '../catalog/studies.js';
import type { DicomJsonDataset } from '../dicom/dicom-json.js';
import { newUid } from '../dicom/new-uid.js';
import type { EventBus } from '../events.js';
import { typedHandler, type JobHandlers } from '../jobs/worker.js';
import type { Logger } from '../logger.js';
import { autoPublishStatus, type AutoPublishConfig } from '../reports/auto-publish.js';
import { reportOfAnalysis } from '../reports/report-store.js';
import { UpsError } from './state-machine.js';
import { attr, dtNow, items, text } from './workitem-json.js';
import { cancelInfo, isNodeCode, NODE_WORKITEM_CODE, UPS_PERFORM_JOB, type Workitem, type Worklist } from './workitems.js';

/**
 * The node as UPS performer (IHE AIW-I Task Performer): the `ups.perform` job of a workitem with
 * the node's Scheduled Workitem Code claims it (IN PROGRESS with the node's own Transaction
 * UID), runs the analysis of the study in its Input Information Sequence (an `analysis.run` job,
 * trigger 'workitem', so auto-publish drafts and publishes its report), reports the analysis's
 * progress, and completes it with the published SR and PDF in the Output Information Sequence,
 * or cancels it with the reason when the analysis fails, is held from publishing or a
 * cancellation is asked for. Each run does one step and schedules the next (every POLL_MS):
 * durable, safe to repeat, and run by any node's service worker.
 *
 * The node's own automatic analyses (AUTO_ANALYZE) get a workitem too (autoWorkitemHook): created
 * by the node with the analysis already named, performed the same way.
 */

const POLL_MS = 1_000;
/** How long a workitem waits for its study to arrive before it is canceled. */
const STUDY_WAIT_MS = 24 * 3600_000;
const STUDY_POLL_MS = 30_000;

export interface PerformerDeps {
  worklist: Worklist;
  analysis: AnalysisRequester;
  audit: AuditLog;
  log: Logger;
  events: EventBus;
  autoPublish: AutoPublishConfig;
  /** The node's AE title: the Performed Station Name. */
  aeTitle: string;
}

interface PerformPayload {
  workitem: string;
}

export interface PerformResult {
  workitem: string;
  step: string;
}

function parsePayload(p: unknown): PerformPayload {
  const w = (p as { workitem?: unknown } | null)?.workitem;
  if (typeof w !== 'string' || w.length === 0 || w.length > 64) throw new TypeError('workitem must be a workitem UID');
  return { workitem: w };
}

const code = (value: string, scheme: string, meaning: string): DicomJsonDataset =>
  Object.fromEntries([attr('CodeValue', value), attr('CodingSchemeDesignator', scheme), attr('CodeMeaning', meaning)]);

export class UpsPerformer {
  constructor(private readonly deps: PerformerDeps) {}

  handlers(): JobHandlers {
    return {
      [UPS_PERFORM_JOB]: typedHandler<PerformPayload, PerformResult>(parsePayload, async (job) => ({
        workitem: job.payload.workitem,
        step: await this.step(job.payload.workitem),
      })),
    };
  }

  /** One step of performing a workitem; what it did. */
  async step(uid: string): Promise<string> {
    const w = await this.deps.worklist.find(uid);
    if (!w) return 'gone';
    if (w.state === 'COMPLETED' || w.state === 'CANCELED') return `already ${w.state}`;
    if (w.state === 'SCHEDULED') return this.claim(w);
    if (!w.nodePerformer || !w.transactionUid) return 'performed by another performer';
    return this.follow(w, w.transactionUid);
  }

  private async claim(w: Workitem): Promise<string> {
    if (!isNodeCode(w.dataset)) return 'not a workitem for this node';
    const study = w.studyInstanceUid;
    let analysisId = w.analysisId;
    if (analysisId === null) {
      const facts = study ? await studyFacts(this.deps.worklist.db, study) : undefined;
      if (!facts) {
        if (study && Date.now() - Date.parse(w.createdAt) < STUDY_WAIT_MS) {
          // The study may still be on its way from the modality.
          await this.again(w.uid, STUDY_POLL_MS);
          return `waiting for study ${study}`;
        }
        const tx = newUid();
        const reason = study ? `study ${study} is not stored on this node` : 'the Input Information Sequence names no study';
        await this.deps.worklist.changeState(w.uid, 'IN PROGRESS', tx, { nodePerformer: true, merge: this.started() });
        await this.deps.worklist.changeState(w.uid, 'CANCELED', tx, { merge: cancelInfo(reason), reason });
        return 'canceled: no study';
      }
      const comment = text(w.dataset, 'CommentsOnTheScheduledProcedureStep');
      const a = await requestAnalysis(this.deps.analysis, {
        studyInstanceUid: facts.study_instance_uid,
        analysisType: 'primary',
        trigger: 'workitem',
        ...(comment ? { clinicalIndication: comment.slice(0, 1000) } : {}),
      });
      analysisId = a.id;
    }
    const tx = newUid();
    try {
      await this.deps.worklist.changeState(w.uid, 'IN PROGRESS', tx, { nodePerformer: true, analysisId, merge: this.started() });
    } catch (err) {
      // Someone else claimed it first: the analysis asked for above is not needed.
      if (err instanceof UpsError && w.analysisId === null) await cancelAnalysis(this.deps.analysis, analysisId, 'ups-performer');
      if (err instanceof UpsError) return `not claimed: ${err.message}`;
      throw err;
    }
    await this.deps.audit.record({
      actorType: 'system',
      actor: 'ups-performer',
      action: 'ups.claim',
      resourceType: 'workitem',
      resourceId: w.uid,
      studyInstanceUid: study ?? undefined,
      outcome: 'success',
      details: { analysisId },
    });
    // The first Progress Report at the claim: an analysis that finishes (and publishes) before the
    // next poll would otherwise leave the subscribers no progress between IN PROGRESS and COMPLETED.
    await this.deps.worklist.progress(w.uid, tx, 0, 'analysis queued');
    await this.again(w.uid);
    return `claimed (analysis ${analysisId})`;
  }

  private started(): DicomJsonDataset {
    const performed = Object.fromEntries([
      attr('PerformedStationNameCodeSequence', code(this.deps.aeTitle, '99RADIANT', 'RadiantAI node')),
      attr('PerformedProcedureStepStartDateTime', dtNow()),
      attr('PerformedWorkitemCodeSequence', code(NODE_WORKITEM_CODE.value, NODE_WORKITEM_CODE.scheme, NODE_WORKITEM_CODE.meaning)),
    ]);
    return Object.fromEntries([attr('UnifiedProcedureStepPerformedProcedureSequence', performed)]);
  }

  private async follow(w: Workitem, tx: string): Promise<string> {
    const a = w.analysisId === null ? undefined : await getAnalysis(this.deps.worklist.db, w.analysisId, false);
    if (!a) return this.cancel(w, tx, 'the analysis performing the workitem is gone');
    if (w.cancelRequested) {
      await cancelAnalysis(this.deps.analysis, a.id, 'ups-cancel-request');
      return this.cancel(w, tx, 'cancellation requested');
    }
    switch (a.status) {
      case 'queued':
      case 'running': {
        // 0–90 %: the analysis; the rest is publishing its report.
        const pct = Math.round((a.progress.percent ?? 0) * 0.9);
        await this.reportProgress(w, tx, pct, `analysis ${a.status}${a.progress.stage ? `: ${a.progress.stage}` : ''}`);
        await this.again(w.uid);
        return `analysis ${a.status}`;
      }
      case 'failed':
      case 'cancelled':
        return this.cancel(w, tx, `the analysis ${a.status}${a.error ? `: ${a.error}` : ''}`);
      case 'succeeded':
        return this.finish(w, tx, a);
    }
  }

  private async finish(w: Workitem, tx: string, a: Analysis): Promise<string> {
    const report = await reportOfAnalysis(this.deps.worklist.db, a.id);
    if (report?.srSopInstanceUid) return this.complete(w, tx, a, [report.srSopInstanceUid, report.pdfSopInstanceUid]);
    const st = await autoPublishStatus(this.deps.worklist.db, a, this.deps.autoPublish);
    if (st.status === 'held' || st.status === 'off')
      return this.cancel(w, tx, `the draft report is not published automatically: ${st.reason}`);
    await this.reportProgress(w, tx, 95, `publishing the draft report (${st.reason ?? 'pending'})`);
    await this.again(w.uid);
    return 'publishing';
  }

  private async complete(w: Workitem, tx: string, a: Analysis, uids: Array<string | null>): Promise<string> {
    const outputs: DicomJsonDataset[] = [];
    for (const uid of uids) {
      if (!uid) continue;
      const inst = await findInstance(this.deps.worklist.db, uid);
      if (!inst) continue;
      const ref = Object.fromEntries([attr('ReferencedSOPClassUID', inst.sop_class_uid), attr('ReferencedSOPInstanceUID', uid)]);
      outputs.push(
        Object.fromEntries([
          attr('TypeOfInstances', 'DICOM'),
          attr('StudyInstanceUID', inst.study_instance_uid),
          attr('SeriesInstanceUID', inst.series_instance_uid),
          attr('ReferencedSOPSequence', ref),
          attr('DICOMRetrievalSequence', Object.fromEntries([attr('RetrieveAETitle', this.deps.aeTitle)])),
        ]),
      );
    }
    const performed = items(w.dataset, 'UnifiedProcedureStepPerformedProcedureSequence')[0] ?? this.started();
    const done = {
      ...performed,
      ...Object.fromEntries([attr('PerformedProcedureStepEndDateTime', dtNow()), attr('OutputInformationSequence', ...outputs)]),
    };
    const merge = Object.fromEntries([
      attr('UnifiedProcedureStepPerformedProcedureSequence', done),
      attr(
        'ProcedureStepProgressInformationSequence',
        Object.fromEntries([attr('ProcedureStepProgress', '100'), attr('ProcedureStepProgressDescription', 'completed')]),
      ),
    ]);
    await this.deps.worklist.changeState(w.uid, 'COMPLETED', tx, { merge });
    await this.deps.audit.record({
      actorType: 'system',
      actor: 'ups-performer',
      action: 'ups.complete',
      resourceType: 'workitem',
      resourceId: w.uid,
      studyInstanceUid: a.studyInstanceUid,
      outcome: 'success',
      details: { analysisId: a.id, outputs: outputs.length },
    });
    return 'completed';
  }

  private async cancel(w: Workitem, tx: string, reason: string): Promise<string> {
    await this.deps.worklist.changeState(w.uid, 'CANCELED', tx, { merge: cancelInfo(reason), reason });
    await this.deps.audit.record({
      actorType: 'system',
      actor: 'ups-performer',
      action: 'ups.cancel',
      resourceType: 'workitem',
      resourceId: w.uid,
      studyInstanceUid: w.studyInstanceUid ?? undefined,
      outcome: 'failure',
      details: { reason: reason.slice(0, 500) },
    });
    this.deps.log.info({ workitem: w.uid, reason }, 'workitem canceled');
    return `canceled: ${reason}`;
  }

  /** A Progress Report when the figure or the stage moved. */
  private async reportProgress(w: Workitem, tx: string, pct: number, description: string): Promise<void> {
    const info = items(w.dataset, 'ProcedureStepProgressInformationSequence')[0];
    if (info && text(info, 'ProcedureStepProgress') === String(pct) && text(info, 'ProcedureStepProgressDescription') === description)
      return;
    await this.deps.worklist.progress(w.uid, tx, pct, description);
  }

  private async again(uid: string, delayMs = POLL_MS): Promise<void> {
    const runAt = new Date(Date.now() + delayMs);
    await this.deps.worklist.schedulePerform(this.deps.worklist.db, uid, runAt);
    this.deps.events.emit('job-due', { kind: UPS_PERFORM_JOB, runAt });
  }
}

/**
 * The workitem of an automatic analysis (AUTO_ANALYZE): created by the node for the study, with
 * the node's code and the analysis named, so its ups.perform job claims and follows that analysis.
 */
export function autoWorkitemHook(worklist: Worklist, log: Logger): (a: Analysis) => Promise<void> {
  return async (a) => {
    try {
      const facts = await studyFacts(worklist.db, a.studyInstanceUid);
      const input = Object.fromEntries([
        attr('TypeOfInstances', 'DICOM'),
        attr('StudyInstanceUID', a.studyInstanceUid),
        attr('ReferencedSOPSequence'),
      ]);
      const ds: DicomJsonDataset = Object.fromEntries([
        attr('ProcedureStepState', 'SCHEDULED'),
        attr('ScheduledProcedureStepPriority', 'MEDIUM'),
        attr('ProcedureStepLabel', 'Automatic AI analysis'),
        attr('WorklistLabel', 'RadiantAI'),
        attr('ScheduledProcedureStepStartDateTime', dtNow()),
        attr('InputReadinessState', 'READY'),
        attr('ScheduledWorkitemCodeSequence', code(NODE_WORKITEM_CODE.value, NODE_WORKITEM_CODE.scheme, NODE_WORKITEM_CODE.meaning)),
        attr('InputInformationSequence', input),
        attr('PatientID', ...(facts?.patient_id ? [facts.patient_id] : [])),
        attr('PatientName', ...(facts?.patient_name ? [{ Alphabetic: facts.patient_name }] : [])),
      ]);
      await worklist.create(ds, undefined, 'auto-analyze', { analysis_id: a.id });
    } catch (err) {
      // The analysis runs whatever happens here: the workitem only reports on it.
      log.warn({ analysis: a.id, err: err instanceof Error ? err.message : String(err) }, 'workitem of the automatic analysis not created');
    }
  };
}
