import type { Db } from '../db/connection.js';
import type { StoredInstanceRow } from '../catalog/catalog.js';
import { seriesMetadataRow, storeSeriesMetadata, type SeriesStamp } from '../catalog/series-metadata.js';
import type { DicomJsonDataset } from '../dicom/dicom-json.js';
import { pixelVrFor, readStoredHeader, toDicomJsonDataset } from '../dicom/metadata-json.js';
import type { BlobStorage } from '../../storage/types.js';

/**
 * The series metadata cache: the DICOM JSON of every instance of a series (built by the kernel,
 * src/dicom/metadata-json.ts), cached in `series_metadata` (migration 003) while the series'
 * num_instances and last_received_at are what it was built from. WADO-RS metadata, the prebuild
 * job and the analysis pipeline's series loader all read series through it; BulkDataURIs are
 * stored relative (the protocol makes them absolute).
 */

type ResolvedInstance = StoredInstanceRow;

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
