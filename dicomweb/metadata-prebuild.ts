import type { Db, Trx } from '../src/db/connection.js';
import type { InstanceRecord } from '../src/catalog/catalog.js';
import { seriesStamp } from '../src/catalog/series-metadata.js';
import type { EventBus } from '../src/events.js';
import type { JobQueue } from '../src/jobs/queue.js';
import { typedHandler, type JobHandlers } from '../src/jobs/worker.js';
import type { Logger } from '../src/logger.js';
import type { BlobStorage } from '../storage/types.js';
import { errorMessage } from '../src/errors.js';
import { seriesMetadataJson } from '../src/metadata/series-metadata.js';
import { resolveInstances } from './resources.js';

/** The job kind that builds one series' metadata once it has gone quiet. */
export const PREBUILD_JOB = 'metadata.prebuild';

interface PrebuildPayload {
  study: string;
  series: string;
}

function parsePrebuildPayload(p: unknown): PrebuildPayload {
  const { study, series } = (p ?? {}) as { study?: unknown; series?: unknown };
  if (typeof study !== 'string' || typeof series !== 'string') throw new TypeError('study and series must be UIDs');
  return { study, series };
}

/**
 * Builds a series' WADO-RS metadata when its instances have stopped arriving, so the viewer's
 * first metadata request is a read of the cache, not a parse of every file. Debounced per series
 * through the job queue: each arrival (the `hook`, in its index transaction) pushes the series'
 * one pending metadata.prebuild job QUIET_MS ahead, so a 600-instance series arriving over a
 * minute is built once, QUIET_MS after its last instance, by whichever node's worker takes it.
 * A request that comes earlier still builds (and caches) it itself.
 */
export class MetadataPrebuilder {
  constructor(
    private readonly deps: { db: Db; storage: BlobStorage; log: Logger; jobs: JobQueue; events: EventBus },
    private readonly quietMs = 2000,
  ) {}

  /** IndexWriter hook: the build is scheduled with the instance's rows, or not at all. */
  readonly hook = async (trx: Trx, rec: InstanceRecord): Promise<void> => {
    const study = rec.study.studyInstanceUid;
    const series = rec.series.seriesInstanceUid;
    const runAt = new Date(Date.now() + this.quietMs);
    const job = { kind: PREBUILD_JOB, payload: { study, series }, dedupeKey: `prebuild:${series}`, runAt };
    await this.deps.jobs.schedule<PrebuildPayload>(trx, job, 'debounce');
    this.deps.events.emit('job-due', { kind: PREBUILD_JOB, runAt });
  };

  /** The metadata.prebuild handler. A build that fails is skipped: the first request builds it. */
  handlers(): JobHandlers {
    return {
      [PREBUILD_JOB]: typedHandler<PrebuildPayload, { built: boolean }>(parsePrebuildPayload, async (job) => {
        const { study, series } = job.payload;
        this.deps.events.emit('series-quiet', { studyInstanceUid: study, seriesInstanceUid: series });
        return { built: await this.build(study, series) };
      }),
    };
  }

  async build(study: string, series: string): Promise<boolean> {
    try {
      const instances = await resolveInstances(this.deps.db, { level: 'series', study, series });
      const row = await seriesStamp(this.deps.db, series);
      if (!row) return false;
      await seriesMetadataJson(this.deps.db, this.deps.storage, row, instances);
      return true;
    } catch (err) {
      this.deps.log.debug({ series, err: errorMessage(err) }, 'metadata prebuild skipped');
      return false;
    }
  }
}
