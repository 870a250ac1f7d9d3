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

/** Connections of the SQLite read pool: reads run beside each other and beside the one writer. */
const SQLITE_READERS = 2;

/**
 * The index as searches see it (QIDO-RS, C-FIND). On SQLite the writer's single connection holds
 * every ingest transaction, so a search sharing it waits for whole index batches and their
 * fsyncs; in WAL mode a reader on its own connection sees the last commit and never waits for the
 * writer. These connections are query-only (a write through them fails instead of racing the
 * writer for the lock). Call after migrating (the writer set journal_mode = WAL, which the file
 * keeps). PostgreSQL, and SQLite in memory (one database per connection), answer `writer` itself.
 */
export function createReadDb(opts: DatabaseOptions, writer: Db): Db {
  if (opts.client !== 'sqlite' || opts.filename === ':memory:') return writer;
  const reader = knexFactory({
    client: 'sqlite3',
    connection: { filename: opts.filename },
    useNullAsDefault: true,
    pool: {
      min: 0,
      max: SQLITE_READERS,
      afterCreate: (conn: SqliteConnection, done: (err: Error | null, conn: SqliteConnection) => void) => {
        exec(conn, 'PRAGMA query_only = ON')
          .then(() => exec(conn, 'PRAGMA busy_timeout = 10000'))
          .then(
            () => done(null, conn),
            (err: Error) => done(err, conn),
          );
      },
    },
  });
  // Searches' queries are spans too, under their request or association.
  traceQueries(reader, 'sqlite');
  return reader;
}

/**
 * Applies pending migrations once, however many processes start together (two `radiant serve`
 * replicas and a worker on one database). knex's own lock (a row in knex_migrations_lock) comes
 * too late: the first run creates knex's tables unguarded, and two processes doing so at once
 * fail ("relation knex_migrations already exists") or insert two lock rows, after which every
 * migration is refused as locked. So the whole run is serialised first:
 * - PostgreSQL: a transaction-scoped advisory lock held on a connection of its own (released by
 *   the server if the process dies, unlike knex's row);
 * - SQLite (one machine): an exclusive lock file beside the database, taken over when the process
 *   that wrote it is gone.
 * The processes that waited then find the migrations applied and do nothing.
 */
export async function migrateLatest(db: Db): Promise<string[]> {
  const run = async () => {
    const [, applied] = (await db.migrate.latest({ migrationSource })) as [number, string[]];
    return applied;
  };
  const config = db.client.config as Knex.Config;
  if (config.client === 'pg') {
    const lockDb = knexFactory({ client: 'pg', connection: config.connection, pool: { min: 0, max: 1 } });
    try {
      return await lockDb.transaction(async (trx) => {
        await trx.raw('select pg_advisory_xact_lock(?)', [MIGRATION_LOCK_KEY]);
        return run();
      });
    } finally {
      await lockDb.destroy();
    }
  }
  const filename = (config.connection as { filename?: string } | undefined)?.filename;
  if (!filename || filename === ':memory:') return run();
  const release = await lockFile(`${filename}.migrate.lock`);
  try {
    return await run();
  } finally {
    release();
  }
}

/** An arbitrary constant naming the migration lock among the database's advisory locks. */
const MIGRATION_LOCK_KEY = 7_352_019_028;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Waits (up to 5 min) for an exclusive lock file; a file whose writer is gone is taken over. */
async function lockFile(file: string): Promise<() => void> {
  const deadline = Date.now() + 300_000;
  for (;;) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      return () => fs.rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let holder = Number.NaN;
    try {
      holder = Number(fs.readFileSync(file, 'utf8').trim() || 'NaN');
    } catch {
      continue; // released in between: try again at once
    }
    // A file being written has no pid yet: wait for it rather than take it over.
    if (Number.isInteger(holder) && holder > 0 && !processAlive(holder)) fs.rmSync(file, { force: true });
    else if (Date.now() > deadline) throw new Error(`migrations locked by process ${holder} (${file})`);
    else await new Promise((r) => setTimeout(r, 100));
  }
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
