import fs from 'node:fs';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import type { DatabaseOptions } from '../config.js';
import { endWithError, SpanKind, startSpan, type Span } from '../observability/tracing.js';
import { migrationSource } from '../../migrations/index.js';

export type Db = Knex;

interface SqliteConnection {
  run(sql: string, cb: (err: Error | null) => void): void;
}

function exec(conn: SqliteConnection, sql: string): Promise<void> {
  return new Promise((resolve, reject) => conn.run(sql, (err) => (err ? reject(err) : resolve())));
}

export function createDb(opts: DatabaseOptions): Db {
  const db = connect(opts);
  traceQueries(db, opts.client === 'sqlite' ? 'sqlite' : 'postgresql');
  return db;
}

interface QueryEvent {
  __knexQueryUid?: string;
  method?: string;
}

/**
 * A span per query (OpenTelemetry; no-op unless a tracer provider is registered), under the span
 * of the request, association or job that ran it. The operation only: the SQL text of a raw query
 * could carry values.
 */
function traceQueries(db: Db, system: string): void {
  const open = new Map<string, Span>();
  db.on('query', (q: QueryEvent) => {
    if (!q.__knexQueryUid) return;
    const op = q.method ?? 'query';
    open.set(q.__knexQueryUid, startSpan(`db ${op}`, { 'db.system.name': system, 'db.operation.name': op }, { kind: SpanKind.CLIENT }));
  });
  db.on('query-response', (_r: unknown, q: QueryEvent) => {
    const span = q.__knexQueryUid ? open.get(q.__knexQueryUid) : undefined;
    if (!span) return;
    open.delete(q.__knexQueryUid!);
    span.end();
  });
  db.on('query-error', (err: unknown, q: QueryEvent) => {
    const span = q.__knexQueryUid ? open.get(q.__knexQueryUid) : undefined;
    if (!span) return;
    open.delete(q.__knexQueryUid!);
    endWithError(span, err);
  });
}

function connect(opts: DatabaseOptions): Db {
  if (opts.client === 'sqlite') {
    if (opts.filename !== ':memory:') fs.mkdirSync(path.dirname(opts.filename), { recursive: true });
    return knexFactory({
      client: 'sqlite3',
      connection: { filename: opts.filename },
      useNullAsDefault: true,
      // One connection: SQLite has one writer anyway, and a single connection turns concurrent
      // writers into a queue instead of SQLITE_BUSY errors.
      pool: {
        min: 1,
        max: 1,
        afterCreate: (conn: SqliteConnection, done: (err: Error | null, conn: SqliteConnection) => void) => {
          // WAL lets readers run beside the writer; synchronous=FULL makes a commit durable
          // before it returns, which is what "acknowledged only after indexed" needs.
          exec(conn, 'PRAGMA journal_mode = WAL')
            .then(() => exec(conn, 'PRAGMA synchronous = FULL'))
            .then(() => exec(conn, 'PRAGMA foreign_keys = ON'))
            .then(() => exec(conn, 'PRAGMA busy_timeout = 10000'))
            .then(
              () => done(null, conn),
              (err: Error) => done(err, conn),
            );
        },
      },
    });
  }
  return knexFactory({
    client: 'pg',
    connection: opts.connection,
    pool: { min: 0, max: opts.poolMax },
  });
}

export async function migrateLatest(db: Db): Promise<string[]> {
  const [, applied] = (await db.migrate.latest({ migrationSource })) as [number, string[]];
  return applied;
}

export async function migrationStatus(db: Db): Promise<{ completed: string[]; pending: string[] }> {
  const [completed, pending] = (await db.migrate.list({ migrationSource })) as [
    Array<{ name: string } | string>,
    Array<{ file: string } | string>,
  ];
  return {
    completed: completed.map((c) => (typeof c === 'string' ? c : c.name)),
    pending: pending.map((p) => (typeof p === 'string' ? p : p.file)),
  };
}

export function isPostgres(db: Db): boolean {
  return db.client.config.client === 'pg';
}

/** Network errors and pg SQLSTATE classes that mean "the database cannot be reached now". */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
]);
const UNAVAILABLE_SQLSTATE = /^(08...|57P0[123]|53300|53000)$/;

/**
 * True when `err` says the database is unreachable or refusing work (down, restarting, out of
 * connections) rather than anything about the request: callers answer 503, not 4xx/500.
 * Looks through `cause` and AggregateError members, as pg and knex wrap socket errors.
 */
export function isDatabaseUnavailable(err: unknown, depth = 0): boolean {
  if (!err || typeof err !== 'object' || depth > 4) return false;
  const e = err as { code?: unknown; name?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
  if (typeof e.code === 'string' && (UNREACHABLE_CODES.has(e.code) || UNAVAILABLE_SQLSTATE.test(e.code))) return true;
  // knex: the pool could not hand out a connection in time (server down or saturated).
  if (e.name === 'KnexTimeoutError') return true;
  if (typeof e.message === 'string' && /^Connection terminated|^Client has encountered a connection error/.test(e.message)) return true;
  if (Array.isArray(e.errors) && e.errors.some((x) => isDatabaseUnavailable(x, depth + 1))) return true;
  return isDatabaseUnavailable(e.cause, depth + 1);
}

/** A transaction of `Db`: services that take part in one name it by this type, not knex's. */
export type Trx = Knex.Transaction;
/** A query being built on `Db`; code outside the index should not need it (see .dependency-cruiser.cjs). */
export type QueryBuilder = Knex.QueryBuilder;
/** A value bound into raw SQL. */
export type RawBinding = Knex.RawBinding;

/** The connection pool now (knex's tarn pool; zeros before its first query or after destroy). */
export function poolFigures(db: Db): { used: number; free: number; pending: number } {
  const pool = (db.client as { pool?: { numUsed(): number; numFree(): number; numPendingAcquires(): number } }).pool;
  return pool ? { used: pool.numUsed(), free: pool.numFree(), pending: pool.numPendingAcquires() } : { used: 0, free: 0, pending: 0 };
}
