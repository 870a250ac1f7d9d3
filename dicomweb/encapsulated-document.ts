import type { Readable } from 'node:stream';
import { HttpError } from '../src/http/errors.js';
import type { StoredInstanceRow } from '../src/catalog/catalog.js';
import type { BlobStorage } from '../storage/types.js';
import { DocumentUnavailable, encapsulatedDocumentRange } from '../src/dicom/encapsulated-document.js';
import { ENCAPSULATED_PDF_SOP_CLASS } from '../src/dicom/uids.js';
import { rangesStream } from '../src/dicom/pixel-data.js';

/**
 * Encapsulated PDF (PS3.3 A.45.1): the document is the value of Encapsulated Document
 * (0042,0011), served as its own media type by WADO-RS rendered and WADO-URI, found by the
 * kernel (src/dicom/encapsulated-document.ts) and streamed from storage, as the bulkdata resource
 * serves the same value (the metadata's BulkDataURI for 0042,0011).
 */

export const PDF = 'application/pdf';

export function isEncapsulatedPdf(row: Pick<StoredInstanceRow, 'sop_class_uid'>): boolean {
  return row.sop_class_uid === ENCAPSULATED_PDF_SOP_CLASS;
}

/** The document as a stream and its length in bytes; 404/501 when it cannot be found. */
export async function openEncapsulatedDocument(storage: BlobStorage, row: StoredInstanceRow): Promise<{ body: Readable; length: number }> {
  let range;
  try {
    range = await encapsulatedDocumentRange(storage, row.storage_key, row.transfer_syntax_uid);
  } catch (err) {
    if (!(err instanceof DocumentUnavailable)) throw err;
    throw err.reason === 'not-implemented'
      ? new HttpError(501, 'not_implemented', err.message)
      : new HttpError(404, 'not_found', err.message);
  }
  return { body: rangesStream(storage, row.storage_key, [range]), length: range.end! - range.start + 1 };
}
