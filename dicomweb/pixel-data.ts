import { HttpError } from '../src/http/errors.js';
import { PixelDataUnavailable, pixelDataLayout as layoutOf, type PixelDataLayout, type RangeStore } from '../src/dicom/pixel-data.js';

/**
 * The kernel's pixel-data walker (src/dicom/pixel-data.ts) as DICOMweb answers it: no pixel data
 * is 404, frames this node cannot cut out are 501 (a damaged object stays a 500).
 */
export async function pixelDataLayout(storage: RangeStore, key: string, ts: string): Promise<PixelDataLayout> {
  try {
    return await layoutOf(storage, key, ts);
  } catch (err) {
    if (err instanceof PixelDataUnavailable) {
      throw err.reason === 'not-found' ? new HttpError(404, 'not_found', err.message) : new HttpError(501, 'not_implemented', err.message);
    }
    throw err;
  }
}
