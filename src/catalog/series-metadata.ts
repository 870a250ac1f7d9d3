import type { Db } from '../db/connection.js';

/**
 * The series_metadata cache (migration 003): one series' WADO-RS metadata as built JSON, with the
 * series' num_instances and last_received_at it was built from (dicomweb/metadata.ts decides when
 * it is still valid). Deletion drops the rows (deletion.ts).
 */

/** What a cache entry is checked against: the series row's identity and its arrival stamp. */
export interface SeriesStamp {
  id: number;
  series_instance_uid: string;
  num_instances: number;
  last_received_at: unknown;
}

export interface SeriesMetadataRow {
  instance_count: number;
  series_last_received_at: string;
  json: string;
}

export async function seriesMetadataRow(db: Db, seriesInstanceUid: string): Promise<SeriesMetadataRow | undefined> {
  return (await db('series_metadata').where('series_instance_uid', seriesInstanceUid).first()) as SeriesMetadataRow | undefined;
}

/** Writes (or replaces) the series' entry. */
export async function storeSeriesMetadata(db: Db, seriesInstanceUid: string, entry: SeriesMetadataRow): Promise<void> {
  await db('series_metadata')
    .insert({
      series_instance_uid: seriesInstanceUid,
      built_at: new Date().toISOString(),
      instance_count: entry.instance_count,
      series_last_received_at: entry.series_last_received_at,
      json: entry.json,
    })
    .onConflict('series_instance_uid')
    .merge();
}

/** The stamps of the given series rows (by primary key); deleted ones are missing. */
export async function seriesStamps(db: Db, seriesPks: number[]): Promise<SeriesStamp[]> {
  return (await db('series')
    .select('id', 'series_instance_uid', 'num_instances', 'last_received_at')
    .whereIn('id', seriesPks)) as SeriesStamp[];
}

export async function seriesStamp(db: Db, seriesInstanceUid: string): Promise<SeriesStamp | undefined> {
  return (await db('series')
    .select('id', 'series_instance_uid', 'num_instances', 'last_received_at')
    .where('series_instance_uid', seriesInstanceUid)
    .first()) as SeriesStamp | undefined;
}
