import type { Readable } from 'node:stream';
import { HttpError } from '../src/http/errors.js';
import type { StoredInstanceRow } from '../src/catalog/catalog.js';
import type { BlobStorage, ByteRange } from '../storage/types.js';
import { tagNumber } from '../src/dicom/dictionary.js';
import { ENCAPSULATED_PDF_SOP_CLASS } from '../src/dicom/uids.js';
import { RangeReader, findByPath, rangesStream, unsupportedStorage } from '../src/dicom/pixel-data.js';

/**
 * Encapsulated PDF (PS3.3 A.45.1): the document is the value of Encapsulated Document
 * (0042,0011), served as its own media type by WADO-RS rendered and WADO-URI. The value is
 * found by walking element headers through storage byte ranges and streamed from storage, as the
 * bulkdata resource serves the same value (the metadata's BulkDataURI for 0042,0011).
 */

const ENCAPSULATED_DOCUMENT = tagNumber('EncapsulatedDocument');
export const PDF = 'application/pdf';

export function isEncapsulatedPdf(row: Pick<StoredInstanceRow, 'sop_class_uid'>): boolean {
  return row.sop_class_uid === ENCAPSULATED_PDF_SOP_CLASS;
}

/** Where the document's bytes lie in the stored file; 404/501 when they cannot be found. */
export async function encapsulatedDocumentRange(storage: BlobStorage, row: StoredInstanceRow): Promise<ByteRange> {
  const why = unsupportedStorage(row.transfer_syntax_uid);
  if (why) throw new HttpError(501, 'not_implemented', why);
  const info = await storage.stat(row.storage_key);
  if (!info) throw new HttpError(404, 'not_found', 'the instance object is missing from storage');
  const e = await findByPath(new RangeReader(storage, row.storage_key, info.size), row.transfer_syntax_uid, [ENCAPSULATED_DOCUMENT]);
  if (!e || e.length === undefined || e.length === 0) {
    throw new HttpError(404, 'not_found', 'the instance has no Encapsulated Document (0042,0011)');
  }
  return { start: e.valueOffset, end: e.valueOffset + e.length - 1 };
}

/** The document as a stream and its length in bytes. */
export async function openEncapsulatedDocument(storage: BlobStorage, row: StoredInstanceRow): Promise<{ body: Readable; length: number }> {
  const range = await encapsulatedDocumentRange(storage, row);
  return { body: rangesStream(storage, row.storage_key, [range]), length: range.end! - range.start + 1 };
}
