import type { AuditLog } from '../audit/audit.js';
import type { AnalysisConfig } from '../config.js';
import type { Db } from '../db/connection.js';
import type { Renderer } from '../dicom/render/renderer.js';
import type { EventBus } from '../events.js';
import type { Logger } from '../logger.js';
import type { AutoAnalyzer } from '../analysis/auto-analyze.js';
import {
  ANALYSIS_JOB,
  parseAnalysisPayload,
  runAnalysisJob,
  type AnalysisJobPayload,
  type AnalysisJobResult,
  type PipelineDeps,
} from '../analysis/pipeline.js';
import type { EngineHost } from '../medgemma/engine-host.js';
import { enqueueAutodraft, REPORT_AUTODRAFT_JOB } from '../reports/auto-publish.js';
import type { JobQueue } from './queue.js';
import type { BlobStorage } from '../../storage/types.js';
import { typedHandler, type JobHandlers } from './worker.js';

/** What the analysis lane's handlers need of the node; the composition root (src/app.ts) builds it. */
export interface JobHandlerDeps {
  db: Db;
  storage: BlobStorage;
  audit: AuditLog;
  log: Logger;
  /** The node's render pipeline: analysis images are decoded in its workers. */
  renderer: Renderer;
  config: { analysis: AnalysisConfig };
  /** Study-stable detection: its study.stable jobs queue the automatic analyses. */
  autoAnalyzer: AutoAnalyzer;
  /** Where an automatic analysis that succeeds queues its report.autodraft job (AUTO_PUBLISH). */
  queue: JobQueue;
  events: EventBus;
}

/** AUTO_PUBLISH: an automatic analysis's report.autodraft job commits with its outcome. */
function autodraftHook(deps: JobHandlerDeps): PipelineDeps['onStored'] {
  if (!deps.config.analysis.autoPublish) return undefined;
  return async (trx, analysis) => {
    if (analysis.trigger === 'manual') return;
    await enqueueAutodraft(trx, deps.queue, analysis.id);
    // Announced once committed, so the worker that wakes finds the row.
    void trx.executionPromise.then(
      () => deps.events.emit('job-due', { kind: REPORT_AUTODRAFT_JOB, runAt: new Date() }),
      () => undefined,
    );
  };
}

/**
 * The job kinds of the analysis lane, by kind. Every worker (`radiant worker`, or the one inside
 * `radiant serve`) gets the same registry, so any node can take any job. A process without an
 * engine host still takes analysis jobs and fails them with the reason, rather than leaving
 * them for nobody. study.stable runs here, where the analyses it queues run.
 */
export function jobHandlers(deps: JobHandlerDeps, engine?: EngineHost): JobHandlers {
  return {
    [ANALYSIS_JOB]: typedHandler<AnalysisJobPayload, AnalysisJobResult>(parseAnalysisPayload, (job, ctx) =>
      runAnalysisJob(
        {
          db: deps.db,
          storage: deps.storage,
          audit: deps.audit,
          log: deps.log,
          renderer: deps.renderer,
          config: deps.config.analysis,
          engine: () => engine?.ready,
          engineStatus: () =>
            engine?.status ?? { state: 'off', backend: 'off', since: new Date().toISOString(), error: 'this process runs no engine' },
          onStored: autodraftHook(deps),
          events: deps.events,
        },
        job,
        ctx,
      ),
    ),
    ...deps.autoAnalyzer.handlers(),
  };
}
