import { Readable } from 'node:stream';
import type { DicomJsonDataset } from '../src/dicom/dicom-json.js';
import { toNativeXml } from '../src/dicom/native-xml.js';
import type { AppContext } from '../src/http/state.js';
import { parseAccept } from './accept.js';
import { multipartStream, newBoundary } from './multipart-writer.js';

/**
 * The two representations of DICOM data sets that metadata and QIDO-RS answer in (PS3.18 §8.7.3.4,
 * Table 8.7.3-2): `application/dicom+json` (Annex F.2; `application/json` too, for clients that
 * name only that), an array of data sets; or `multipart/related; type="application/dicom+xml"`
 * (PS3.19 Native DICOM Model, src/dicom/native-xml.ts), one data set per part. A bare
 * `application/dicom+xml` is answered as the multipart form, the only one the standard defines
 * for more than one data set.
 */

export type DicomModelType = 'application/dicom+json' | 'application/json' | 'application/dicom+xml';

const XML = 'application/dicom+xml';

/** The first acceptable range's representation (no Accept: DICOM JSON); undefined: 406. */
export function negotiateDicomModel(header: string | undefined): DicomModelType | undefined {
  for (const r of parseAccept(header)) {
    const t = r.type.toLowerCase();
    if (t === '*/*' || t === 'application/*' || t === 'application/dicom+json') return 'application/dicom+json';
    if (t === 'application/json') return 'application/json';
    if (t === XML) return XML;
    if ((t === 'multipart/related' || t === 'multipart/*') && r.params.type?.toLowerCase() === XML) return XML;
  }
  return undefined;
}

/** Answers the data sets as multipart/related; type="application/dicom+xml", one document per part. */
export function sendNativeXml(ctx: AppContext, datasets: readonly DicomJsonDataset[]): void {
  const boundary = newBoundary();
  const { stream, done } = multipartStream(
    boundary,
    datasets.map((ds) => ({
      headers: { 'Content-Type': `${XML}; charset=utf-8` },
      open: async () => Readable.from([Buffer.from(toNativeXml(ds), 'utf8')]),
    })),
  );
  const res = ctx.res;
  // In-memory parts: the only failure left is the client going away.
  done.catch(() => {
    if (!res.destroyed) res.destroy();
  });
  ctx.status = 200;
  ctx.body = stream;
  ctx.set('Content-Type', `multipart/related; type="${XML}"; boundary=${boundary}`);
}
