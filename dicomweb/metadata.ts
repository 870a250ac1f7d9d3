import type { Db } from '../src/db/connection.js';
import { seriesMetadataRow, seriesStamps, storeSeriesMetadata, type SeriesStamp } from '../src/catalog/series-metadata.js';
import type { RouteDeps } from '../src/http/server.js';
import { HttpError } from '../src/http/errors.js';
import type { AppContext } from '../src/http/state.js';
import type { DicomJsonDataset } from '../src/dicom/dicom-json.js';
import { pixelVrFor, readStoredHeader, toDicomJsonDataset } from '../src/dicom/metadata-json.js';
import type { BlobStorage } from '../storage/types.js';
import { resolveInstances, resourcePath, type ResolvedInstance } from './resources.js';

/**
 * WADO-RS Retrieve Metadata (PS3.18 §10.4.1.1.2, Annex F.2): `…/metadata` of a study, series or
 * instance as `application/dicom+json`, an array with one data set per instance holding every
 * attribute of the stored header (File Meta group excluded, as PS3.18 wants the data set).
 *
 * The data set of one instance is built by the kernel (src/dicom/metadata-json.ts): every
 * attribute up to Pixel Data, binary values inline up to 1 KiB, else a BulkDataURI; Pixel Data's is
 * the instance URL.
 *
 * Series metadata is built once and cached in `series_metadata` (migration 003), valid while the
 * series' num_instances and last_received_at are what it was built from; the study answer is the
 * concatenation of its series' cached arrays; the instance answer is parsed on demand.
 */

const BUILD_CONCURRENCY = 4;

export function relativeInstanceUri(i: ResolvedInstance): string {
  return `/studies/${i.study_instance_uid}/series/${i.series_instance_uid}/instances/${i.sop_instance_uid}`;
}

export async function instanceMetadata(storage: BlobStorage, i: ResolvedInstance): Promise<DicomJsonDataset> {
  const dict = await readStoredHeader(storage, i);
  return toDicomJsonDataset(dict, { uri: relativeInstanceUri(i), pixelVr: pixelVrFor(dict, i.transfer_syntax_uid) });
}

async function mapLimited<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

function iso(v: unknown): string {
  return v instanceof Date ? v.toISOString() : String(v);
}

/** The JSON array (relative BulkDataURIs) of one series, from the cache or built and cached. */
export async function seriesMetadataJson(
  db: Db,
  storage: BlobStorage,
  series: SeriesStamp,
  instances: ResolvedInstance[],
): Promise<{ json: string; cached: boolean }> {
  const stamp = iso(series.last_received_at);
  const row = await seriesMetadataRow(db, series.series_instance_uid);
  if (row && Number(row.instance_count) === Number(series.num_instances) && row.series_last_received_at === stamp) {
    return { json: row.json, cached: true };
  }
  const datasets = await mapLimited(instances, BUILD_CONCURRENCY, (i) => instanceMetadata(storage, i));
  const json = JSON.stringify(datasets);
  // An instance arrived between listing and reading the series row: serve, but do not cache.
  if (instances.length !== Number(series.num_instances)) return { json, cached: false };
  await storeSeriesMetadata(db, series.series_instance_uid, {
    instance_count: Number(series.num_instances),
    series_last_received_at: stamp,
    json,
  });
  return { json, cached: false };
}

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
    const responseType = ctx.accepts('application/dicom+json', 'application/json');
    if (!responseType) {
      throw new HttpError(406, 'not_acceptable', 'metadata is answered as application/dicom+json (or application/json)');
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
    const base = `${ctx.protocol}://${ctx.host}/dicom-web`;
    ctx.state.audit = { studyInstanceUid: p.study, details: { level: p.level, instances: instances.length, cachedSeries } };
    ctx.status = 200;
    ctx.type = responseType;
    ctx.body = absolutize(json, base);
  };
}
