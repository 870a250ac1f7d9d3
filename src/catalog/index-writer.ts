import type { Db } from '../db/connection.js';
import { isPostgres } from '../db/connection.js';
import type { Knex } from 'knex';
import { indexInstancesIn, type IndexResult, type InstanceRecord } from './catalog.js';

interface Pending {
  rec: InstanceRecord;
  resolve: (r: IndexResult) => void;
  reject: (e: unknown) => void;
}

/**
 * Writes index rows. On SQLite there is one writer and every commit is an fsync, so instances
 * that arrive together (several associations at once) are committed together: the first waits
 * for nothing, the ones queued behind it share the next transaction. Each caller still gets its
 * answer only after the commit that holds its rows. PostgreSQL takes concurrent transactions
 * itself, so there each instance commits on its own.
 */
/**
 * Work that must commit with the instance's index rows or not at all (a forwarding queue entry:
 * an acknowledged instance must never miss its forward because of a crash in between).
 */
export type IndexHook = (trx: Knex.Transaction, rec: InstanceRecord, res: IndexResult) => Promise<void>;

export class IndexWriter {
  private readonly queue: Pending[] = [];
  private flushing = false;
  private readonly batched: boolean;
  private readonly hooks: IndexHook[] = [];

  constructor(
    private readonly db: Db,
    private readonly maxBatch = 32,
  ) {
    this.batched = !isPostgres(db);
  }

  addHook(hook: IndexHook): void {
    this.hooks.push(hook);
  }

  private indexIn(trx: Knex.Transaction, recs: InstanceRecord[], now: Date): Promise<IndexResult[]> {
    return indexInstancesIn(trx, recs, now, async (rec, res) => {
      for (const hook of this.hooks) await hook(trx, rec, res);
    });
  }

  private async indexAlone(rec: InstanceRecord): Promise<IndexResult> {
    const [res] = await this.db.transaction((trx) => this.indexIn(trx, [rec], new Date()));
    return res!;
  }

  write(rec: InstanceRecord): Promise<IndexResult> {
    if (!this.batched) return this.indexAlone(rec);
    return new Promise((resolve, reject) => {
      this.queue.push({ rec, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
        try {
          const now = new Date();
          const results = await this.db.transaction((trx) =>
            this.indexIn(
              trx,
              batch.map((p) => p.rec),
              now,
            ),
          );
          batch.forEach((p, i) => p.resolve(results[i]!));
        } catch {
          // One bad row must not fail its neighbours: retry each in a transaction of its own.
          for (const p of batch) await this.indexAlone(p.rec).then(p.resolve, p.reject);
        }
      }
    } finally {
      this.flushing = false;
    }
  }
}
