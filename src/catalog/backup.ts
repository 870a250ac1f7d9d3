import type { Db } from '../db/connection.js';

/**
 * What backup and restore (src/backup/backup.ts) ask of the index: a consistent copy of a SQLite
 * database while the node writes to it, the rows counted per table (the restore's check), and the
 * SHA-256 the index keeps per instance blob (instances.sha256), so the manifest reuses it.
 */

/** The tables whose row counts a backup records and a restore must reproduce. */
export const COUNTED_TABLES = ['patients', 'studies', 'series', 'instances', 'reports', 'users', 'audit_logs'] as const;
export type IndexCounts = Record<(typeof COUNTED_TABLES)[number], number>;

export async function indexCounts(db: Db): Promise<IndexCounts> {
  const out = {} as IndexCounts;
  for (const t of COUNTED_TABLES) out[t] = Number(((await db(t).count('* as n').first()) as { n: number | string }).n);
  return out;
}

/**
 * SQLite's VACUUM INTO: one read transaction, so the copy is the database at one instant while
 * the node keeps writing (WAL); `file` must not exist.
 */
export async function sqliteVacuumInto(db: Db, file: string): Promise<void> {
  await db.raw('VACUUM INTO ?', [file]);
}

/** instances.sha256 by storage key, where the index has it (older rows are backfilled lazily). */
export async function instanceHashes(db: Db): Promise<Map<string, string>> {
  const rows = (await db('instances').whereNotNull('sha256').select('storage_key', 'sha256')) as Array<{
    storage_key: string;
    sha256: string;
  }>;
  return new Map(rows.map((r) => [r.storage_key, r.sha256]));
}

/** Whether any table of the index holds a row: a restore refuses such a target unless forced. */
export async function indexHasRows(db: Db): Promise<boolean> {
  for (const t of COUNTED_TABLES) {
    if (!(await db.schema.hasTable(t))) continue;
    if ((await db(t).first()) !== undefined) return true;
  }
  return false;
}
