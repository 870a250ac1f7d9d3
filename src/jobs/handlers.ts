import type { Core } from '../app.js';
import { ANALYSIS_JOB, parseAnalysisPayload, runAnalysisJob, type AnalysisJobPayload, type AnalysisJobResult } from '../analysis/pipeline.js';
import type { EngineHost } from '../medgemma/engine-host.js';
import { typedHandler, type JobHandlers } from './worker.js';

/**
 * The job kinds this node runs, by kind. Every worker (`radiant worker`, or the one inside
 * `radiant serve`) gets the same registry, so any node can take any job. A process without an
 * engine host still takes analysis jobs and fails them with the reason, rather than leaving
 * them for nobody.
 */
export function jobHandlers(core: Core, engine?: EngineHost): JobHandlers {
  return {
    [ANALYSIS_JOB]: typedHandler<AnalysisJobPayload, AnalysisJobResult>(parseAnalysisPayload, (job, ctx) =>
      runAnalysisJob(
        {
          db: core.db,
          storage: core.storage,
          audit: core.audit,
          log: core.log,
          config: core.config.analysis,
          engine: () => engine?.ready,
          engineStatus: () => engine?.status ?? { state: 'off', backend: 'off', since: new Date().toISOString(), error: 'this process runs no engine' },
        },
        job,
        ctx,
      ),
    ),
  };
}
