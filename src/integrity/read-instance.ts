import type { Readable } from 'node:stream';
import { recordInstanceSha256 } from '../catalog/catalog.js';
import type { Db } from '../db/connection.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { verifiedGet, verifiedReadAll } from '../../storage/integrity.js';
import type { BlobStorage } from '../../storage/types.js';

/**
 * Whole-instance reads for the retrieve paths (WADO-RS, WADO-URI): the blob checked against the
 * SHA-256 the index keeps (storage/integrity.ts), and the digest of an instance stored before
 * digests were kept recorded on its first complete read (the lazy backfill of migration 028).
 */

export interface InstanceBlob {
  storage_key: string;
  sha256?: string | null;
  /** The indexed size: a whole read can then be one positioned read of exactly that. */
  size_bytes?: number;
}

export interface InstanceReader {
  /** A stream that fails at its end, instead of ending, when the bytes are not those indexed. */
  open(row: InstanceBlob): Promise<Readable>;
  /** The whole instance in memory, checked before it is returned. */
  readAll(row: InstanceBlob): Promise<Buffer>;
}

export function instanceReader(deps: { db: Db; storage: BlobStorage; log: Logger }): InstanceReader {
  const backfill = (key: string) => (sha256: string) => {
    recordInstanceSha256(deps.db, key, sha256).catch((err: unknown) =>
      deps.log.warn({ key, err: errorMessage(err) }, 'could not record an instance digest'),
    );
  };
  return {
    open: (row) => verifiedGet(deps.storage, row.storage_key, row.sha256, backfill(row.storage_key)),
    readAll: (row) => verifiedReadAll(deps.storage, row.storage_key, row.sha256, backfill(row.storage_key), row.size_bytes),
  };
}
