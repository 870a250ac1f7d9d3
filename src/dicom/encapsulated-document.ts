import { RadiantError } from '../errors.js';
import { tagNumber } from './dictionary.js';
import { findByPath, RangeReader, unsupportedStorage, type ByteRange, type RangeStore } from './pixel-data.js';

/**
 * The document of a stored Encapsulated Document instance (PS3.3 A.45.1, an Encapsulated PDF):
 * the value of Encapsulated Document (0042,0011), found by walking element headers through
 * storage byte ranges, never by loading the object. WADO-RS rendered, WADO-URI and the report
 * export stream it (dicomweb/encapsulated-document.ts); a FHIR push inlines it.
 */

const ENCAPSULATED_DOCUMENT = tagNumber('EncapsulatedDocument');

/**
 * Why there is no document to give: the object is missing from storage or has no (or an empty)
 * Encapsulated Document ('not-found'), or it is stored in an encoding this walk cannot read
 * ('not-implemented'). Protocols map the reason to their status.
 */
export class DocumentUnavailable extends RadiantError {
  constructor(
    override readonly reason: 'not-found' | 'not-implemented',
    message: string,
  ) {
    super(reason === 'not-found' ? 'not-found' : 'unsupported', message);
    this.name = 'DocumentUnavailable';
  }
}

/** Where the document's bytes lie in the stored object `key` (transfer syntax `ts`). */
export async function encapsulatedDocumentRange(store: RangeStore, key: string, ts: string): Promise<ByteRange> {
  const why = unsupportedStorage(ts);
  if (why) throw new DocumentUnavailable('not-implemented', why);
  const info = await store.stat(key);
  if (!info) throw new DocumentUnavailable('not-found', 'the instance object is missing from storage');
  const e = await findByPath(new RangeReader(store, key, info.size), ts, [ENCAPSULATED_DOCUMENT]);
  if (!e?.length) throw new DocumentUnavailable('not-found', 'the instance has no Encapsulated Document (0042,0011)');
  return { start: e.valueOffset, end: e.valueOffset + e.length - 1 };
}
