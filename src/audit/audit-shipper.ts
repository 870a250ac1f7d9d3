import { backoffDelay } from '../backoff.js';
import { auditExportCursor, lastAuditRowId, setAuditExportCursor } from '../catalog/audit.js';
import type { Db } from '../db/connection.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import type { AuditLog, AuditRow } from './audit.js';
import { auditMessageDocument, type AuditSource } from './dicom-audit.js';
import { syslogMessage } from './syslog.js';

/**
 * Ships the audit trail to a syslog collector (ATNA) as DICOM audit messages. The queue is the
 * audit_logs table itself and a cursor (the last row id delivered, in audit_export_cursors): the
 * audited action only writes its row, as always, and never waits for the collector; a collector
 * that is down is retried with back-off and gets every row once it is back, across restarts.
 * Delivery is at least once (a crash between sending and saving the cursor sends a batch again).
 * Serve nodes sharing one database share the cursor: with a `lock` (src/db/session-lock.ts) only
 * the node holding it ships, the others try again each poll and take over, from the saved
 * cursor, when the holder is gone; so a message is not sent once per node.
 */

/** One shipper of the cluster at a time (SessionLock). */
export interface ShipperLock {
  tryHold(): Promise<boolean>;
  release(): Promise<void>;
}

export interface MessageSender {
  send(messages: readonly string[]): Promise<void>;
  close(): void;
}

export interface AuditShipperOptions {
  /** The cursor's name (one per destination). */
  name: string;
  pollMs?: number;
  batch?: number;
  /**
   * A row still `started` (a long request) holds the rows after it back for at most this long, so
   * the message says how the request ended; past it, it is sent as not finished.
   */
  holdStartedMs?: number;
}

export class AuditShipper {
  private cursor = 0;
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private failures = 0;
  /** Whether this process held the lock at its last batch (without a lock: always). */
  private holding = false;

  constructor(
    private readonly deps: { db: Db; audit: AuditLog; log: Logger; sender: MessageSender; source: AuditSource; lock?: ShipperLock },
    private readonly opts: AuditShipperOptions,
  ) {}

  /**
   * Starts shipping. A destination configured for the first time starts at the newest row (the
   * trail before it is in GET /api/audit?format=dicom-xml); after that, where it stopped.
   */
  async start(): Promise<void> {
    const { db } = this.deps;
    const saved = await auditExportCursor(db, this.opts.name);
    if (saved === undefined) {
      this.cursor = await lastAuditRowId(db);
      await setAuditExportCursor(db, this.opts.name, this.cursor, new Date().toISOString());
    } else this.cursor = saved;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
    this.deps.sender.close();
    await this.deps.lock?.release();
  }

  /**
   * Whether this process ships now. With a lock the cursor is read back each time: whoever held
   * the lock before (this process before its connection dropped, or another node) may have moved it.
   */
  private async mayShip(): Promise<boolean> {
    const { lock, db } = this.deps;
    if (!lock) return true;
    const now = await lock.tryHold();
    if (now) {
      const saved = await auditExportCursor(db, this.opts.name);
      if (saved !== undefined) this.cursor = saved;
      if (!this.holding) this.deps.log.info({ destination: this.opts.name }, 'audit export: this node ships');
    }
    this.holding = now;
    return now;
  }

  private async run(): Promise<void> {
    const pollMs = this.opts.pollMs ?? 1000;
    while (this.running) {
      let delay = pollMs;
      try {
        const sent = (await this.mayShip()) ? await this.shipBatch() : 0;
        if (sent === (this.opts.batch ?? 100)) delay = 0;
        if (this.failures > 0) this.deps.log.info({ destination: this.opts.name }, 'audit export: delivering again');
        this.failures = 0;
      } catch (err) {
        this.failures++;
        delay = backoffDelay({ baseMs: pollMs, maxMs: 60_000 }, this.failures);
        // Loud on the first failure, then once a minute or so (the back-off cap).
        if (this.failures === 1 || delay === 60_000)
          this.deps.log.warn({ destination: this.opts.name, err: errorMessage(err), retryInMs: delay }, 'audit export failed');
      }
      if (delay > 0 && this.running) await this.sleep(delay);
    }
  }

  /** Sends the next rows; answers how many. */
  private async shipBatch(): Promise<number> {
    const rows = await this.deps.audit.after(this.cursor, this.opts.batch ?? 100);
    const holdMs = this.opts.holdStartedMs ?? 10 * 60_000;
    const ready: AuditRow[] = [];
    for (const r of rows) {
      if (r.outcome === 'started' && Date.now() - Date.parse(r.at) < holdMs) break;
      ready.push(r);
    }
    if (ready.length === 0) return 0;
    await this.deps.sender.send(ready.map((r) => syslogMessage(auditMessageDocument(r, this.deps.source), new Date(r.at))));
    this.cursor = ready.at(-1)!.id;
    await setAuditExportCursor(this.deps.db, this.opts.name, this.cursor, new Date().toISOString());
    return ready.length;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }
}
