import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { AuditLog } from '../src/audit/audit.js';
import { can } from '../src/auth/permissions.js';
import type { Principal } from '../src/auth/tokens.js';
import { eventsAfter, lastEventId, pruneEvents, subscribersOf } from '../src/catalog/workitems.js';
import type { Db } from '../src/db/connection.js';
import { aeTitleSchema } from '../src/dicom/ae-title.js';
import { errorMessage } from '../src/errors.js';
import type { Logger } from '../src/logger.js';

/**
 * The UPS-RS event channel (PS3.18 §11.10 Open Event Channel, §8.10.5 Send Event Report): a
 * WebSocket at /dicom-web/subscribers/{AETitle}, opened with the node's bearer token (images:read),
 * over which every event report for that AE title's subscriptions goes as a text frame of DICOM
 * JSON. Reports are rows of ups_events, written with the change that caused them by whichever
 * process made it; the channels read them in order (every POLL_MS while one is open), so a
 * report reaches the channels open when it is read. A subscriber that reconnects gets the
 * reports written meanwhile that the node has not passed yet.
 */

const POLL_MS = 200;
const BATCH = 500;
const RETENTION_MS = 24 * 3600_000;
const PRUNE_EVERY_MS = 10 * 60_000;
const PATH = /\/dicom-web\/subscribers\/([^/?]+)$/;

export interface ChannelDeps {
  db: Db;
  audit: AuditLog;
  log: Logger;
  /** The principal of the request, or why not (the HTTP face's token check). */
  authenticate(req: IncomingMessage): Promise<{ ok: true; principal: Principal } | { ok: false; reason: string }>;
}

export class UpsChannels {
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly sockets = new Map<string, Set<WebSocket>>();
  private lastId: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private lastPrune = 0;

  constructor(private readonly deps: ChannelDeps) {}

  /** Handles an HTTP upgrade to the channel's path; false for any other path (the caller closes it). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const path = new URL(req.url ?? '/', 'http://node').pathname;
    const m = PATH.exec(path);
    if (!m) return false;
    void this.open(req, socket, head, decodeURIComponent(m[1]!));
    return true;
  }

  private async open(req: IncomingMessage, socket: Duplex, head: Buffer, rawAe: string): Promise<void> {
    const refuse = (status: number, text: string) => {
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    let principal: Principal | undefined;
    try {
      const auth = await this.deps.authenticate(req);
      if (!auth.ok) return refuse(401, 'Unauthorized');
      principal = auth.principal;
      const ae = aeTitleSchema.safeParse(rawAe);
      if (!ae.success) return refuse(400, 'Bad Request');
      const permitted = can(principal.role, 'images:read');
      await this.deps.audit.record({
        actorType: 'user',
        actor: principal.username,
        peer: req.socket.remoteAddress,
        action: 'ups.channel',
        resourceType: 'workitem',
        resourceId: ae.data,
        outcome: permitted ? 'success' : 'failure',
        status: permitted ? 101 : 403,
      });
      if (!permitted) return refuse(403, 'Forbidden');
      this.lastId ??= await lastEventId(this.deps.db);
      this.wss.handleUpgrade(req, socket, head, (ws) => this.attach(ae.data, ws));
    } catch (err) {
      this.deps.log.warn({ err: errorMessage(err) }, 'UPS event channel not opened');
      refuse(503, 'Service Unavailable');
    }
  }

  private attach(ae: string, ws: WebSocket): void {
    let set = this.sockets.get(ae);
    if (!set) this.sockets.set(ae, (set = new Set()));
    set.add(ws);
    ws.on('close', () => {
      set.delete(ws);
      if (set.size === 0) this.sockets.delete(ae);
    });
    ws.on('error', () => ws.terminate());
    this.timer ??= setInterval(() => void this.poll(), POLL_MS);
  }

  /** Sends the reports written since the last poll to the open channels of their subscribers. */
  private async poll(): Promise<void> {
    if (this.polling) return;
    if (this.sockets.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
      return;
    }
    this.polling = true;
    try {
      const events = await eventsAfter(this.deps.db, this.lastId ?? 0, BATCH);
      for (const e of events) {
        const targets = e.ae_title ? [e.ae_title] : await subscribersOf(this.deps.db, e.workitem_uid);
        for (const ae of targets) for (const ws of this.sockets.get(ae) ?? []) ws.send(e.report);
        this.lastId = Number(e.id);
      }
      if (Date.now() - this.lastPrune > PRUNE_EVERY_MS) {
        this.lastPrune = Date.now();
        await pruneEvents(this.deps.db, new Date(Date.now() - RETENTION_MS).toISOString());
      }
    } catch (err) {
      this.deps.log.warn({ err: errorMessage(err) }, 'UPS event reports not read');
    } finally {
      this.polling = false;
    }
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    for (const set of this.sockets.values()) for (const ws of set) ws.terminate();
    this.sockets.clear();
    this.wss.close();
  }
}
