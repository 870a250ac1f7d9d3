import type { Knex } from 'knex';
import { isPostgres, type Db } from '../db/connection.js';

/**
 * Portable prefix and substring matching with user input as bound parameters only.
 * PostgreSQL: LIKE with '!' as the escape character (served by the varchar_pattern_ops indexes).
 * SQLite: GLOB, which is case-sensitive like PostgreSQL's LIKE (SQLite's LIKE is not) and can
 * use the plain index for a prefix; its wildcards are escaped by bracketing them.
 */
export function escapeLike(s: string): string {
  return s.replace(/[!%_]/g, (c) => `!${c}`);
}

export function escapeGlob(s: string): string {
  return s.replace(/[*?[]/g, (c) => `[${c}]`);
}

export type MatchKind = 'prefix' | 'contains';

/** Adds `OR column matches value` to the builder (inside a grouped where). */
export function orWhereMatches(db: Db, b: Knex.QueryBuilder, column: string, value: string, kind: MatchKind): void {
  if (isPostgres(db)) {
    const pattern = `${kind === 'contains' ? '%' : ''}${escapeLike(value)}%`;
    b.orWhereRaw(`?? LIKE ? ESCAPE '!'`, [column, pattern]);
  } else {
    const pattern = `${kind === 'contains' ? '*' : ''}${escapeGlob(value)}*`;
    b.orWhereRaw('?? GLOB ?', [column, pattern]);
  }
}

/** Newest first with NULLs last, the same on both databases (knex's `nulls last` is wrong on SQLite). */
export function orderByDescNullsLast(b: Knex.QueryBuilder, column: string): void {
  b.orderByRaw('CASE WHEN ?? IS NULL THEN 1 ELSE 0 END', [column]).orderBy(column, 'desc');
}

export function orderByAscNullsLast(b: Knex.QueryBuilder, column: string): void {
  b.orderByRaw('CASE WHEN ?? IS NULL THEN 1 ELSE 0 END', [column]).orderBy(column, 'asc');
}

/** Timestamps: ISO strings on SQLite (as written), Date objects from PostgreSQL. */
export function isoTimestamp(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return v.toISOString();
  return String(v);
}

/** A duplicate key, on either database. */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | undefined;
  return e?.code === '23505' || (e?.code === 'SQLITE_CONSTRAINT' && /UNIQUE/i.test(e.message ?? ''));
}

export async function countOf(q: Knex.QueryBuilder): Promise<number> {
  const [row] = (await q.clone().clearSelect().clearOrder().count({ n: '*' })) as Array<{ n: number | string }>;
  return Number(row?.n ?? 0);
}
