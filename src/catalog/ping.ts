import type { Db } from '../db/connection.js';

/** The readiness probe's question to the index: does the database answer? Rejects when it does not. */
export async function ping(db: Db): Promise<void> {
  await db.raw('select 1');
}
