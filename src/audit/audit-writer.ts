import type { Db } from '../db/connection.js';
import type { Logger } from '../logger.js';
import { errorMessage } from '../errors.js';
import { insertAuditRows, type AuditLogColumns } from '../catalog/audit.js';

/** Rows per INSERT: 14 columns each, well under SQLite's bound-parameter limit. */
const MAX_BATCH = 500;
/** Uncommitted rows held at most; past this every writer waits for the commit (backpressure). */
const MAX_BACKLOG = 5000;

interface Pending {
  row: AuditLogColumns;
  queuedAt: number;
  done: Promise<void>;
  committed: () => void;
}

/** What is queued but not yet committed: the rows a crash right now would lose. */
export interface AuditBacklog {
  rows: number;
  /** Age of the oldest uncommitted row, ms (0 when none). */
  oldestMs: number;
}

/**
 * Group commit of audit rows. On SQLite every write shares the one writer connection with
 * ingest's index transactions, so one INSERT (and one fsync) per request made every audited
 * request wait behind ingest, one by one. Here rows that arrive while a commit is running go
 * together into the next one: however many requests end at once, the audit trail costs one
 * writer turn per batch.
 *
 * `add` resolves when the row's batch has committed (or failed: logged loudly, as a lost row
 * must never go unnoticed, but it does not fail the request it describes). `addQueued` resolves
 * at once while the backlog is within `maxLagMs` and MAX_BACKLOG rows, otherwise when the row is
 * committed: rows are never held longer than that bound without the callers waiting, which is
 * what bounds the loss of a crash (see AuditLog.record).
 */
export class AuditWriter {
  private queue: Pending[] = [];
  private inflight: Pending[] = [];
  private flushing = false;

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
    /** How long an uncommitted row may wait before callers wait for commits; 0: callers always wait. */
    private readonly maxLagMs: number,
  ) {}

  /** Resolves once the row's batch committed (or failed, logged). */
  add(row: AuditLogColumns): Promise<void> {
    let committed!: () => void;
    const done = new Promise<void>((resolve) => (committed = resolve));
    this.queue.push({ row, queuedAt: Date.now(), done, committed });
    this.pump();
    return done;
  }

  /** Resolves at once while the backlog is within bounds, otherwise when the row is committed. */
  addQueued(row: AuditLogColumns): Promise<void> {
    const lagging = this.maxLagMs === 0 || this.backlog().oldestMs > this.maxLagMs || this.queue.length >= MAX_BACKLOG;
    const committed = this.add(row);
    return lagging ? committed : Promise.resolve();
  }

  backlog(): AuditBacklog {
    const oldest = this.inflight[0] ?? this.queue[0];
    return { rows: this.inflight.length + this.queue.length, oldestMs: oldest ? Date.now() - oldest.queuedAt : 0 };
  }

  /**
   * Resolves when every row added so far is committed (readers of the trail, shutdown); batches
   * commit in order, so that is when the newest one is, however busy the writer stays.
   */
  drain(): Promise<void> {
    return (this.queue.at(-1) ?? this.inflight.at(-1))?.done ?? Promise.resolve();
  }

  private pump(): void {
    if (this.flushing || !this.queue.length) return;
    this.flushing = true;
    this.inflight = this.queue.splice(0, MAX_BATCH);
    const batch = this.inflight;
    insertAuditRows(
      this.db,
      batch.map((p) => p.row),
    )
      .catch((err: unknown) => {
        this.log.error(
          { err: errorMessage(err), rows: batch.length, actions: [...new Set(batch.map((p) => p.row.action))] },
          'AUDIT WRITE FAILED',
        );
      })
      .finally(() => {
        this.inflight = [];
        this.flushing = false;
        for (const p of batch) p.committed();
        this.pump();
      });
  }
}
