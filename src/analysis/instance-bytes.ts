import { RadiantError } from '../errors.js';
import type { Db } from '../db/connection.js';
import { findInstance, listInstances, type StoredInstanceRow } from '../catalog/catalog.js';
import { readAll } from '../../storage/read-all.js';
import type { BlobStorage } from '../../storage/types.js';

export class InstanceMissingError extends RadiantError {
  constructor(readonly sopInstanceUid: string) {
    super('not-found', `instance ${sopInstanceUid} is not in the index`);
    this.name = 'InstanceMissingError';
  }
}

/** The stored Part 10 bytes of an indexed instance. */
export async function readInstanceBytes(db: Db, storage: BlobStorage, sopInstanceUid: string): Promise<Buffer> {
  const row = await findInstance(db, sopInstanceUid);
  if (!row) throw new InstanceMissingError(sopInstanceUid);
  return readAll(await storage.get(row.storage_key));
}

/**
 * A reader for the instances of one series: their storage keys come from one index query
 * instead of one per instance (85 lookups were a third of image preparation's time).
 */
export async function seriesInstanceReader(
  db: Db,
  storage: BlobStorage,
  study: string,
  series: string,
): Promise<(sopInstanceUid: string) => Promise<Buffer>> {
  const rows = new Map<string, StoredInstanceRow>((await listInstances(db, { study, series })).map((r) => [r.sop_instance_uid, r]));
  return async (uid) => {
    const row = rows.get(uid) ?? (await findInstance(db, uid));
    if (!row) throw new InstanceMissingError(uid);
    return readAll(await storage.get(row.storage_key));
  };
}
