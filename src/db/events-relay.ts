import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { backoffDelay } from '../backoff.js';
import type { DatabaseOptions } from '../config.js';
import { errorMessage } from '../errors.js';
import type { AnalysisProgressEvent, EventBus, NodeEvents, ReportChangedEvent } from '../events.js';
import type { Logger } from '../logger.js';
import type { Db } from './connection.js';

/**
 * The bus's announcements for people (the worklist's live rows, GET /api/events) across the
 * processes of one PostgreSQL database: a worker's analysis progress, a report another node
 * published, instances another node stored. Each process NOTIFYs what its own bus emits and
 * LISTENs on a connection of its own, re-emitting what other processes sent on its bus; its own
 * notifications come back to it too and are dropped by their origin id, and what it re-emits is
 * never sent again, so nothing loops. Payloads are ids, UIDs and states only (no PHI), well
 * under NOTIFY's 8000 bytes. Arrivals are coalesced per series (one notification per
 * INSTANCE_RELAY_MS, like the SSE stream's own per-study coalescing). Like every event these are
 * hints: a notification lost while the listening connection reconnects costs a live row update,
 * never work. job-due is not relayed: other processes' workers poll.
 * SQLite is one machine and one process that serves: its bus is enough (no relay).
 */

const CHANNEL = 'radiant_events';
/** Arrivals of one series relayed at most this often. */
const INSTANCE_RELAY_MS = 500;
const RECONNECT = { baseMs: 500, maxMs: 30_000 };

type Relayed = 'instance-stored' | 'analysis-progress' | 'report-changed';

interface Message {
  /** The sending process's relay. */
  o: string;
  e: Relayed;
  d: NodeEvents[Relayed][0];
}

export class EventsRelay {
  private readonly origin = randomUUID();
  private client: pg.Client | undefined;
  private stopped = false;
  private attempts = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  /** True while a notification from elsewhere is re-emitted: the bus's listeners run synchronously. */
  private inbound = false;
  private readonly pendingSeries = new Map<string, NodeJS.Timeout>();
  private readonly unsubscribe: () => void;

  private constructor(
    private readonly db: Db,
    private readonly connection: Extract<DatabaseOptions, { client: 'pg' }>['connection'],
    private readonly bus: EventBus,
    private readonly log: Logger,
  ) {
    const onStored = (e: NodeEvents['instance-stored'][0]) => {
      if (this.inbound) return;
      const key = `${e.studyInstanceUid}/${e.seriesInstanceUid}`;
      if (this.pendingSeries.has(key)) return;
      const { studyInstanceUid, seriesInstanceUid, sopInstanceUid } = e;
      // The first arrival goes at once (a new study shows up), the rest of the burst at most once per interval.
      this.notify('instance-stored', { studyInstanceUid, seriesInstanceUid, sopInstanceUid });
      const t = setTimeout(() => this.pendingSeries.delete(key), INSTANCE_RELAY_MS);
      t.unref();
      this.pendingSeries.set(key, t);
    };
    const onAnalysis = (e: AnalysisProgressEvent) => {
      if (this.inbound) return;
      const { analysisId, studyInstanceUid, status, progress } = e;
      this.notify('analysis-progress', { analysisId, studyInstanceUid, status, progress });
    };
    const onReport = (e: ReportChangedEvent) => {
      if (this.inbound) return;
      const { reportId, studyInstanceUid, version, status, event } = e;
      this.notify('report-changed', { reportId, studyInstanceUid, version, status, event });
    };
    bus.on('instance-stored', onStored);
    bus.on('analysis-progress', onAnalysis);
    bus.on('report-changed', onReport);
    this.unsubscribe = () => {
      bus.off('instance-stored', onStored);
      bus.off('analysis-progress', onAnalysis);
      bus.off('report-changed', onReport);
    };
  }

  /** The relay of this database, listening once it resolves; undefined on SQLite. */
  static async start(db: Db, database: DatabaseOptions, bus: EventBus, log: Logger): Promise<EventsRelay | undefined> {
    if (database.client !== 'pg') return undefined;
    const relay = new EventsRelay(db, database.connection, bus, log);
    await relay.listen().catch((err: unknown) => {
      log.warn({ err: errorMessage(err) }, 'event relay not listening yet; retrying');
      relay.scheduleReconnect();
    });
    return relay;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe();
    clearTimeout(this.reconnectTimer);
    for (const t of this.pendingSeries.values()) clearTimeout(t);
    this.pendingSeries.clear();
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => undefined);
  }

  private notify<E extends Relayed>(e: E, d: NodeEvents[E][0]): void {
    const msg: Message = { o: this.origin, e, d };
    this.db.raw('select pg_notify(?, ?)', [CHANNEL, JSON.stringify(msg)]).then(
      () => undefined,
      (err: unknown) => this.log.debug({ err: errorMessage(err), event: e }, 'event not relayed to other processes'),
    );
  }

  private async listen(): Promise<void> {
    // The driver is loaded here, on PostgreSQL only (knex loads it for its own pool likewise).
    const { default: driver } = await import('pg');
    const client = new driver.Client(typeof this.connection === 'string' ? { connectionString: this.connection } : this.connection);
    client.on('notification', (n) => this.received(n.channel, n.payload));
    // A dropped connection (database restart) is reconnected with back-off; the events in between are lost hints.
    const lost = (err?: Error) => {
      if (this.client !== client) return;
      this.client = undefined;
      client.end().catch(() => undefined);
      if (this.stopped) return;
      this.log.warn({ err: err ? errorMessage(err) : 'connection ended' }, 'event relay connection lost; reconnecting');
      this.scheduleReconnect();
    };
    client.on('error', lost);
    client.on('end', () => lost());
    await client.connect();
    await client.query(`LISTEN ${CHANNEL}`);
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.attempts = 0;
  }

  private scheduleReconnect(): void {
    const delay = backoffDelay(RECONNECT, ++this.attempts);
    this.reconnectTimer = setTimeout(() => {
      this.listen().catch((err: unknown) => {
        this.log.debug({ err: errorMessage(err) }, 'event relay not reconnected yet');
        if (!this.stopped) this.scheduleReconnect();
      });
    }, delay);
    this.reconnectTimer.unref();
  }

  private received(channel: string, payload: string | undefined): void {
    if (channel !== CHANNEL || !payload) return;
    let msg: Message;
    try {
      msg = JSON.parse(payload) as Message;
    } catch {
      return;
    }
    if (msg.o === this.origin) return;
    this.inbound = true;
    try {
      if (msg.e === 'instance-stored') this.bus.emit('instance-stored', msg.d as NodeEvents['instance-stored'][0]);
      else if (msg.e === 'analysis-progress') this.bus.emit('analysis-progress', msg.d as AnalysisProgressEvent);
      else if (msg.e === 'report-changed') this.bus.emit('report-changed', msg.d as ReportChangedEvent);
    } finally {
      this.inbound = false;
    }
  }
}
