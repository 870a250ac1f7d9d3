import type pg from 'pg';
import type { DatabaseOptions } from '../config.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';

/**
 * "Only one process of the cluster does this at a time" (the audit export to one collector):
 * on PostgreSQL a session advisory lock held on a connection of its own, so it is the server's,
 * released the moment the holder's process dies or its connection drops, with no lease to
 * expire and no row to clean up; another process takes it at its next try. The key is the
 * two-int4 form (a class and the name's hash), a key space apart from the migration lock's bigint.
 * SQLite is one machine: every try holds.
 */
export class SessionLock {
  private client: pg.Client | undefined;
  private held = false;

  constructor(
    private readonly database: DatabaseOptions,
    private readonly name: string,
    private readonly log: Logger,
  ) {}

  /** Holds the lock (already, or now); false while another process holds it or the database is unreachable. */
  async tryHold(): Promise<boolean> {
    if (this.database.client !== 'pg') return true;
    if (this.held && this.client) return true;
    const connection = this.database.connection;
    // The driver is loaded on first use, on PostgreSQL only.
    const client =
      this.client ??
      new (await import('pg')).default.Client(typeof connection === 'string' ? { connectionString: connection } : connection);
    if (!this.client) {
      const lost = () => {
        if (this.client !== client) return;
        if (this.held) this.log.warn({ lock: this.name }, 'cluster lock lost with its connection');
        this.client = undefined;
        this.held = false;
        client.end().catch(() => undefined);
      };
      client.on('error', lost);
      client.on('end', lost);
      try {
        await client.connect();
      } catch (err) {
        this.log.debug({ lock: this.name, err: errorMessage(err) }, 'cluster lock: database unreachable');
        client.end().catch(() => undefined);
        return false;
      }
      this.client = client;
    }
    try {
      const r = await client.query<{ held: boolean }>('select pg_try_advisory_lock($1, hashtext($2)) as held', [LOCK_CLASS, this.name]);
      this.held = r.rows[0]?.held === true;
    } catch (err) {
      this.log.debug({ lock: this.name, err: errorMessage(err) }, 'cluster lock not tried');
      this.held = false;
    }
    return this.held;
  }

  /** Gives the lock back (closing its connection releases it). */
  async release(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    this.held = false;
    await c?.end().catch(() => undefined);
  }
}

/** The first int4 of the node's session locks. */
const LOCK_CLASS = 7_352_021;
