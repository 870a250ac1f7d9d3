import { isPostgres, type Db } from '../db/connection.js';

/** The index's figures for the administration: how much it holds, and the database's size where that is cheap to ask. */

export interface IndexFigures {
  patients: number;
  studies: number;
  series: number;
  instances: number;
  /** Sum of the stored instances' sizes, as the index recorded them. */
  bytes: number;
}

async function count(db: Db, table: string): Promise<number> {
  const [row] = (await db(table).count({ n: '*' })) as Array<{ n: number | string }>;
  return Number(row!.n);
}

export async function indexFigures(db: Db): Promise<IndexFigures> {
  const [sum] = (await db('instances').sum({ b: 'size_bytes' })) as Array<{ b: number | string | null }>;
  return {
    patients: await count(db, 'patients'),
    studies: await count(db, 'studies'),
    series: await count(db, 'series'),
    instances: await count(db, 'instances'),
    bytes: Number(sum?.b ?? 0),
  };
}

/** The database's dialect and size in bytes (PostgreSQL: pg_database_size; SQLite: pages × page size). */
export async function databaseSize(db: Db): Promise<{ dialect: 'postgresql' | 'sqlite'; bytes: number | null }> {
  if (isPostgres(db)) {
    const r = (await db.raw('SELECT pg_database_size(current_database()) AS b')) as { rows: Array<{ b: string | number }> };
    return { dialect: 'postgresql', bytes: Number(r.rows[0]?.b ?? 0) };
  }
  const pages = (await db.raw('PRAGMA page_count')) as Array<{ page_count: number }>;
  const size = (await db.raw('PRAGMA page_size')) as Array<{ page_size: number }>;
  const bytes = (pages[0]?.page_count ?? 0) * (size[0]?.page_size ?? 0);
  return { dialect: 'sqlite', bytes: bytes || null };
}
