import type { Db } from '../src/db/connection.js';
import type { Ingestor, InstanceStoredEvent } from '../src/ingest/ingest.js';
import type { Logger } from '../src/logger.js';
import type { BlobStorage } from '../storage/types.js';
import { errorMessage } from '../src/errors.js';
import { seriesMetadataJson } from './metadata.js';
import { resolveInstances } from './resources.js';

/**
 * Builds a series' WADO-RS metadata when its instances have stopped arriving, so the viewer's
 * first metadata request is a read of the cache, not a parse of every file. Debounced per series:
 * a 600-instance series arriving over a minute is built once, QUIET_MS after its last instance.
 * A request that comes earlier still builds (and caches) it itself.
 */
export class MetadataPrebuilder {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly deps: { db: Db; storage: BlobStorage; log: Logger },
    private readonly quietMs = 2000,
  ) {}

  attach(ingestor: Ingestor): void {
    ingestor.on('instance-stored', (e: InstanceStoredEvent) => this.schedule(e.studyInstanceUid, e.seriesInstanceUid));
  }

  private schedule(study: string, series: string): void {
    clearTimeout(this.timers.get(series));
    const timer = setTimeout(() => {
      this.timers.delete(series);
      void this.build(study, series);
    }, this.quietMs);
    // Never keeps a stopping node alive; a skipped build is done on the first request instead.
    timer.unref();
    this.timers.set(series, timer);
  }

  async build(study: string, series: string): Promise<boolean> {
    try {
      const instances = await resolveInstances(this.deps.db, { level: 'series', study, series });
      const row = (await this.deps.db('series')
        .select('id', 'series_instance_uid', 'num_instances', 'last_received_at')
        .where('series_instance_uid', series)
        .first()) as { id: number; series_instance_uid: string; num_instances: number; last_received_at: unknown } | undefined;
      if (!row) return false;
      await seriesMetadataJson(this.deps.db, this.deps.storage, row, instances);
      return true;
    } catch (err) {
      this.deps.log.debug({ series, err: errorMessage(err) }, 'metadata prebuild skipped');
      return false;
    }
  }
}
