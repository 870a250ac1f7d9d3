import { seriesStamps } from '../src/catalog/series-metadata.js';
import { instanceMetadata, seriesMetadataJson } from '../src/metadata/series-metadata.js';
import type { RouteDeps } from '../src/http/deps.js';
import { HttpError } from '../src/http/errors.js';
import type { AppContext } from '../src/http/state.js';
import { resolveInstances, resourcePath, type ResolvedInstance } from './resources.js';
import { negotiateDicomModel, sendNativeXml } from './dicom-model.js';
import type { DicomJsonDataset } from '../src/dicom/dicom-json.js';

/**
 * WADO-RS Retrieve Metadata (PS3.18 §10.4.1.1.2, Annex F.2): `…/metadata` of a study, series or
 * instance as `application/dicom+json` (or as multipart/related; type="application/dicom+xml",
 * dicom-model.ts), an array with one data set per instance holding every
 * attribute of the stored header (File Meta group excluded, as PS3.18 wants the data set).
 *
 * The data set of one instance is built by the kernel (src/dicom/metadata-json.ts): every
 * attribute up to Pixel Data, binary values inline up to 1 KiB, else a BulkDataURI (bulkdata.ts
 * serves each, Pixel Data's too). Series come from the series metadata cache (src/metadata/); the study answer
 * is the concatenation of its series' cached arrays; the instance answer is parsed on demand.
 */

/** Stored BulkDataURIs are relative; the answer's are absolute, against the address the client used. */
export function absolutize(json: string, base: string): string {
  const safe = JSON.stringify(base).slice(1, -1);
  return json.replaceAll('"BulkDataURI":"/studies/', `"BulkDataURI":"${safe}/studies/`);
}

export function metadataHandler(deps: RouteDeps) {
  const { db, storage } = deps;
  return async (ctx: AppContext): Promise<void> => {
    const p = resourcePath(ctx);
    ctx.state.audit = { studyInstanceUid: p.study, details: { level: p.level } };
    const responseType = negotiateDicomModel(ctx.get('accept') || undefined);
    if (!responseType) {
      throw new HttpError(
        406,
        'not_acceptable',
        'metadata is answered as application/dicom+json (or application/json) or multipart/related; type="application/dicom+xml"',
      );
    }
    const instances = await resolveInstances(db, p);
    let json: string;
    let cachedSeries = 0;
    if (p.level === 'instance') {
      json = JSON.stringify([await instanceMetadata(storage, instances[0]!)]);
    } else {
      const bySeries = new Map<number, ResolvedInstance[]>();
      for (const i of instances) {
        const list = bySeries.get(i.series_pk);
        if (list) list.push(i);
        else bySeries.set(i.series_pk, [i]);
      }
      const rows = await seriesStamps(db, [...bySeries.keys()]);
      const byId = new Map(rows.map((r) => [Number(r.id), r]));
      const arrays: string[] = [];
      for (const [pk, list] of bySeries) {
        const row = byId.get(pk);
        if (!row) continue; // deleted meanwhile
        const r = await seriesMetadataJson(db, storage, row, list);
        if (r.cached) cachedSeries++;
        const inner = r.json.slice(1, -1);
        if (inner) arrays.push(inner);
      }
      json = `[${arrays.join(',')}]`;
    }
    const base = `${ctx.state.baseUrl}/dicom-web`;
    ctx.state.audit = { studyInstanceUid: p.study, details: { level: p.level, instances: instances.length, cachedSeries } };
    if (responseType === 'application/dicom+xml') {
      sendNativeXml(ctx, JSON.parse(absolutize(json, base)) as DicomJsonDataset[]);
      return;
    }
    ctx.status = 200;
    ctx.type = responseType;
    ctx.body = absolutize(json, base);
  };
}
