import type { Db } from '../db/connection.js';
import { findInstance } from '../catalog/catalog.js';
import { readAll } from '../../dicomweb/read-all.js';
import type { BlobStorage } from '../../storage/types.js';

export class InstanceMissingError extends Error {
  constructor(readonly sopInstanceUid: string) {
    super(`instance ${sopInstanceUid} is not in the index`);
    this.name = 'InstanceMissingError';
  }
}

/** The stored Part 10 bytes of an indexed instance. */
export async function readInstanceBytes(db: Db, storage: BlobStorage, sopInstanceUid: string): Promise<Buffer> {
  const row = await findInstance(db, sopInstanceUid);
  if (!row) throw new InstanceMissingError(sopInstanceUid);
  return readAll(await storage.get(row.storage_key));
}
