import type { Db } from '../db/connection.js';
import type { EventBus } from '../events.js';
import { supersedeQueuedAutoAnalyses } from '../catalog/analyses.js';
import type { JobQueue } from '../jobs/queue.js';
import { createAnalysis, getAnalysis, markAnalysis, setAnalysisJob, type Analysis, type NewAnalysis } from './analyses.js';
import { ANALYSIS_JOB, type AnalysisJobPayload } from './pipeline.js';

export interface AnalysisRequester {
  db: Db;
  queue: JobQueue;
  /** Lets an in-process worker start at once instead of at its next poll. */
  wake?: () => void;
  /** Announces queued and cancelled analyses (analysis-progress). */
  events?: EventBus;
}

/**
 * Records an analysis and queues its job. An automatic request supersedes the study's queued
 * automatic one (the study changed since), so at most one waits per study.
 */
export async function requestAnalysis(r: AnalysisRequester, a: NewAnalysis): Promise<Analysis> {
  const id = await createAnalysis(r.db, a);
  if (a.trigger === 'auto') {
    await supersedeQueuedAutoAnalyses(r.db, a.studyInstanceUid, id, {
      error: `superseded by analysis ${id} (new instances arrived)`,
      finished_at: new Date().toISOString(),
    });
  }
  const job = await r.queue.enqueue<AnalysisJobPayload>({
    kind: ANALYSIS_JOB,
    payload: { analysisId: id },
    dedupeKey: a.trigger === 'auto' ? `analysis:auto:${a.studyInstanceUid}` : undefined,
  });
  await setAnalysisJob(r.db, id, job.id);
  r.wake?.();
  r.events?.emit('analysis-progress', { analysisId: id, studyInstanceUid: a.studyInstanceUid, status: 'queued', progress: 0 });
  const created = await getAnalysis(r.db, id);
  if (!created) throw new Error(`analysis ${id} vanished after it was created`);
  return created;
}

/** Cancels a queued or running analysis; false when it had already finished. */
export async function cancelAnalysis(r: AnalysisRequester, id: number, by: string | undefined): Promise<boolean> {
  const a = await getAnalysis(r.db, id, false);
  if (!a) return false;
  const changed = await markAnalysis(r.db, id, 'cancelled', {
    error: `cancelled${by ? ` by ${by}` : ''}`,
    finished_at: new Date().toISOString(),
  });
  if (changed && a.jobId !== null) await r.queue.cancel(a.jobId, `analysis cancelled${by ? ` by ${by}` : ''}`);
  if (changed)
    r.events?.emit('analysis-progress', { analysisId: id, studyInstanceUid: a.studyInstanceUid, status: 'cancelled', progress: 0 });
  return changed;
}
