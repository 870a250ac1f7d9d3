import type { Db } from '../db/connection.js';

/** The volumes table: one assembled volume per series (src/volumes/volume-store.ts encodes and decodes them). */

export interface VolumeRow {
  id: number | string;
  study_instance_uid: string;
  series_instance_uid: string;
  kind: string;
  rows: number | string;
  columns: number | string;
  slice_count: number | string;
  spacing_row: number | string | null;
  spacing_column: number | string | null;
  spacing_slice: number | string | null;
  /** JSON text, as the JSON columns below. */
  orientation: string | null;
  normal: string | null;
  origin: string | null;
  instance_order: string;
  problems: string;
  created_at: unknown;
}

export type NewVolumeRow = Omit<VolumeRow, 'id' | 'created_at'> & { created_at: string };

/** Saves the row in place of the series' earlier one, in one transaction. Returns the row id. */
export async function replaceVolumeRow(db: Db, row: NewVolumeRow): Promise<number> {
  return db.transaction(async (trx) => {
    await trx('volumes').where('series_instance_uid', row.series_instance_uid).delete();
    const [res] = (await trx('volumes').insert(row).returning('id')) as Array<{ id: number | string } | number>;
    return typeof res === 'object' ? Number(res.id) : Number(res);
  });
}

/** The series' latest saved row, or undefined. */
export async function volumeRow(db: Db, seriesInstanceUid: string): Promise<VolumeRow | undefined> {
  return (await db('volumes').where('series_instance_uid', seriesInstanceUid).orderBy('id', 'desc').first()) as VolumeRow | undefined;
}
