import { HttpError } from '../src/http/errors.js';
import { PixelDataUnavailable, pixelDataLayout as layoutOf, type PixelDataLayout, type RangeStore } from '../src/dicom/pixel-data.js';

/**
 * The kernel's pixel-data walker (src/dicom/pixel-data.ts) as DICOMweb answers it: no pixel data
 * is 404 and a damaged object 500 (the HTTP table's 'not-found' and 'internal'); frames this node
 * cannot cut out are 501, which DICOMweb says for what is not implemented (the table's
 * 'unsupported' is a 415, about the request's media type).
 */
export async function pixelDataLayout(storage: RangeStore, key: string, ts: string): Promise<PixelDataLayout> {
  try {
    return await layoutOf(storage, key, ts);
  } catch (err) {
    if (err instanceof PixelDataUnavailable && err.reason === 'not-implemented') throw new HttpError(501, 'not_implemented', err.message);
    throw err;
  }
}
