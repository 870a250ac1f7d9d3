import type { Db } from '../db/connection.js';
import type { BlobStorage } from '../../storage/types.js';
import type { AuditLog } from '../audit/audit.js';
import { findInstance } from '../catalog/catalog.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import type { IngestJournal } from './ingest-journal.js';

export interface SweepReport {
  /** Blobs removed: stored, never indexed, never acknowledged. */
  removed: string[];
  /** Markers whose instance was indexed after all (the crash came after the commit). */
  indexed: number;
}

/**
 * At start: every blob a dead process stored but did not index is removed, and reported (log
 * and audit), so storage holds nothing the index cannot find. A blob is kept whenever the index
 * names its key: with the overwrite policy a re-sent instance replaces the blob in place, and the
 * old row still points at it.
 */
export async function sweepOrphanBlobs(deps: {
  journal: IngestJournal;
  db: Db;
  storage: BlobStorage;
  log: Logger;
  audit?: AuditLog;
}): Promise<SweepReport> {
  const report: SweepReport = { removed: [], indexed: 0 };
  for (const e of await deps.journal.leftovers()) {
    const row = await findInstance(deps.db, e.sopInstanceUid);
    if (row?.storage_key === e.storageKey) {
      report.indexed++;
    } else {
      try {
        await deps.storage.delete(e.storageKey);
      } catch (err) {
        // Left for the next start: the marker stays.
        deps.log.error({ key: e.storageKey, err: errorMessage(err) }, 'orphan blob could not be removed');
        continue;
      }
      report.removed.push(e.storageKey);
    }
    await deps.journal.end(e.marker);
  }
  if (report.removed.length > 0) {
    deps.log.warn(
      { count: report.removed.length, keys: report.removed.slice(0, 20) },
      'removed blobs stored but never indexed by a process that stopped mid-ingest (never acknowledged)',
    );
    await deps.audit?.record({
      actorType: 'system',
      action: 'storage.orphans-removed',
      resourceType: 'instance',
      outcome: 'success',
      details: { count: report.removed.length, keys: report.removed.slice(0, 20) },
    });
  }
  return report;
}
