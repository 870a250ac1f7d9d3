import { EventEmitter } from 'node:events';

/**
 * The node's in-process event bus: one place where "an instance was stored", "a series went
 * quiet" and "a study is stable" are announced, and where work queued for later says when it
 * is due, so the job runner wakes then instead of at its next poll. Events are hints: what must
 * happen is always a row in the `jobs` table, so a lost event costs latency, never work.
 */
export interface NodeEvents {
  /** An instance was indexed and acknowledged (any door: C-STORE, STOW-RS, upload, import, AI). */
  'instance-stored': [{ studyInstanceUid: string; seriesInstanceUid: string; sopInstanceUid: string }];
  /** A series had no new instance for METADATA_PREBUILD_MS (its metadata.prebuild job ran). */
  'series-quiet': [{ studyInstanceUid: string; seriesInstanceUid: string }];
  /** A study had no new instance for STUDY_STABLE_SECONDS and was queued for analysis. */
  'study-stable': [{ studyInstanceUid: string; analysisId: number }];
  /** A job was queued or rescheduled to run at `runAt`: the job runner wakes then. */
  'job-due': [{ kind: string; runAt: Date }];
  /** An analysis was queued, started, moved on, finished or was cancelled (progress 0..1). */
  'analysis-progress': [AnalysisProgressEvent];
  /** A report was created, edited, signed, amended, or a version of it published. */
  'report-changed': [ReportChangedEvent];
}

export interface AnalysisProgressEvent {
  analysisId: number;
  studyInstanceUid: string;
  status: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  /** 0..1 */
  progress: number;
}

export interface ReportChangedEvent {
  reportId: number;
  studyInstanceUid: string;
  version: number;
  status: 'draft' | 'signed' | 'amended';
  event: 'created' | 'published' | 'signed' | 'amended' | 'edited';
}

export class EventBus extends EventEmitter<NodeEvents> {
  constructor() {
    super();
    // Every lane's worker and every service may listen; none of them is a leak.
    this.setMaxListeners(50);
  }
}
