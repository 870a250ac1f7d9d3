import { HttpError } from '../src/http/errors.js';
import type { StoredInstanceRow } from '../src/catalog/catalog.js';
import type { Db } from '../src/db/connection.js';
import type { Logger } from '../src/logger.js';
import { instanceReader } from '../src/integrity/read-instance.js';
import type { BlobStorage } from '../storage/types.js';
import { DocumentUnavailable, encapsulatedDocumentRange } from '../src/dicom/encapsulated-document.js';
import { ENCAPSULATED_PDF_SOP_CLASS } from '../src/dicom/uids.js';

/**
 * Encapsulated PDF (PS3.3 A.45.1): the document is the value of Encapsulated Document
 * (0042,0011), served as its own media type by WADO-RS rendered and WADO-URI, found by the
 * kernel (src/dicom/encapsulated-document.ts), the same value the bulkdata resource serves (the
 * metadata's BulkDataURI for 0042,0011). The instance is read whole and checked against its
 * SHA-256 before a byte is sent (documents are small): a damaged PDF is an error, never served.
 */

export const PDF = 'application/pdf';

export function isEncapsulatedPdf(row: Pick<StoredInstanceRow, 'sop_class_uid'>): boolean {
  return row.sop_class_uid === ENCAPSULATED_PDF_SOP_CLASS;
}

/** The document's bytes, checked; 404/501 when it cannot be found, 500 blob_integrity when damaged. */
export async function openEncapsulatedDocument(
  deps: { db: Db; storage: BlobStorage; log: Logger },
  row: StoredInstanceRow,
): Promise<{ body: Buffer; length: number }> {
  let range;
  try {
    range = await encapsulatedDocumentRange(deps.storage, row.storage_key, row.transfer_syntax_uid);
  } catch (err) {
    if (!(err instanceof DocumentUnavailable)) throw err;
    throw err.reason === 'not-implemented'
      ? new HttpError(501, 'not_implemented', err.message)
      : new HttpError(404, 'not_found', err.message);
  }
  const whole = await instanceReader(deps).readAll(row);
  const body = whole.subarray(range.start, range.end! + 1);
  return { body, length: body.length };
}
