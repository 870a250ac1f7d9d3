import { deleteIndexRows, type DeletedRows, type DeletionScope } from '../catalog/deletion.js';
import type { Db, Trx } from '../db/connection.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import type { BlobStorage } from '../../storage/types.js';

export type { DeletionScope };

/**
 * The one delete path for instances, series, studies and patients (DICOMweb DELETE and
 * DELETE /api/patients/:id both come here). Index rows go first, in one transaction, with
 * everything keyed to them (series metadata, volumes, unsent forwards, pending jobs, and the
 * analyses and reports of a study removed entirely: src/catalog/deletion.ts); then the blobs.
 * A blob whose delete fails is an orphan (logged, counted), never an index row pointing at
 * nothing. The callers audit the summary.
 */

export interface DeleteDeps {
  db: Db;
  storage: BlobStorage;
  log: Logger;
}

export interface DeletionSummary extends Omit<DeletedRows, 'storageKeys'> {
  blobsDeleted: number;
  /** Keys of blobs that could not be deleted (orphans). */
  failedKeys: string[];
}

/**
 * Deletes the scope. `guard`, run first in the same transaction, may refuse (throw) or report
 * that there is nothing to delete (undefined: no row is touched and the result is undefined).
 */
export async function deleteStored<T>(
  deps: DeleteDeps,
  scope: DeletionScope,
  guard: (trx: Trx) => Promise<T | undefined>,
  logContext: Record<string, unknown> = {},
): Promise<{ subject: T; summary: DeletionSummary } | undefined> {
  const indexed = await deps.db.transaction(async (trx) => {
    const subject = await guard(trx);
    if (subject === undefined) return undefined;
    return { subject, rows: await deleteIndexRows(trx, scope) };
  });
  if (!indexed) return undefined;
  const { storageKeys, ...rows } = indexed.rows;
  let blobsDeleted = 0;
  const failedKeys: string[] = [];
  for (const key of storageKeys) {
    try {
      await deps.storage.delete(key);
      blobsDeleted++;
    } catch (err) {
      failedKeys.push(key);
      deps.log.error({ ...logContext, key, err: errorMessage(err) }, 'delete: blob not removed (orphan)');
    }
  }
  return { subject: indexed.subject, summary: { ...rows, blobsDeleted, failedKeys } };
}
