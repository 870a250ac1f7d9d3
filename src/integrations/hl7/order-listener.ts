import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Message } from 'node-hl7-client';
import type { AuditLog } from '../../audit/audit.js';
import type { Db } from '../../db/connection.js';
import { insertOrder } from '../../catalog/orders.js';
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { newControlId } from '../hl7-send.js';
import { messageType, OrderMessageError, orderFromMessage } from './order-message.js';
import { newMessage, parseMessage } from './v2.js';

/**
 * The MLLP listener for orders (HL7_LISTEN_PORT): ORM^O01 and OMI^O23 from the RIS are stored in
 * the index (src/catalog/orders.ts) and ACKed AA once committed; a message it cannot take gets AE
 * (malformed, a required field missing: the sender should fix it) or AR (a type it does not take,
 * a sender not allowed) with the reason in MSA-3 and ERR, and the connection stays open for the
 * next one. Every message is audited; its text (PHI) goes to the index only, never to the log.
 *
 * MLLP framing here, on node:net, rather than node-hl7-server's listener: that one keeps the text
 * of earlier messages on a connection (a RIS sends many on one), answers nothing for a message
 * it cannot parse, and its ACKs carry no reason. Parsing and the ACK are node-hl7-client's.
 */

const START = 0x0b;
const END = Buffer.from([0x1c, 0x0d]);
/** A frame larger than this is not an order: the connection is closed. */
const MAX_FRAME_BYTES = 1024 * 1024;
const IDLE_MS = 10 * 60_000;

export interface OrderListenerDeps {
  db: Db;
  audit: AuditLog;
  log: Logger;
  node: { aeTitle: string; institutionName: string | null };
  /** MSH-3 values accepted; empty: any sender. */
  allowedSenders: readonly string[];
}

interface Outcome {
  code: 'AA' | 'AE' | 'AR';
  errorCode?: string;
  text?: string;
}

/** The ACK of `m` (or of unreadable input: m undefined). */
export function buildAck(node: OrderListenerDeps['node'], m: Message | undefined, o: Outcome): string {
  const v = (path: string) => (m ? m.get(path).toString().trim() : '');
  const ack = newMessage({
    type: ['ACK', v('MSH.9.2') || 'O01', 'ACK'],
    controlId: newControlId('A'),
    processingId: v('MSH.11.1') === 'D' || v('MSH.11.1') === 'T' ? (v('MSH.11.1') as 'D' | 'T') : 'P',
    sendingFacility: node.institutionName ?? node.aeTitle,
    receivingApplication: v('MSH.3.1') || null,
    receivingFacility: v('MSH.4.1') || null,
    at: new Date(),
  });
  const msa = ack.addSegment('MSA');
  msa.set('1', o.code);
  msa.set('2', v('MSH.10'));
  if (o.text) msa.set('3', o.text.slice(0, 80));
  if (o.code !== 'AA') {
    const err = ack.addSegment('ERR');
    err.set('3.1', o.errorCode ?? '207');
    err.set('3.3', 'HL70357');
    err.set('4', 'E');
    if (o.text) err.set('8', o.text.slice(0, 250));
  }
  return ack.toString();
}

export class OrderListener {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly deps: OrderListenerDeps) {}

  async start(port: number, host = '0.0.0.0'): Promise<number> {
    const server = net.createServer((socket) => this.accept(socket));
    server.on('error', (err) => this.deps.log.warn({ err: errorMessage(err) }, 'HL7 listener error'));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    const bound = (server.address() as AddressInfo).port;
    this.deps.log.info({ port: bound }, 'HL7 MLLP listener started');
    return bound;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    const peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    let buffer = Buffer.alloc(0);
    // One message at a time per connection: ACKs go back in the order the messages came.
    let chain = Promise.resolve();
    socket.setTimeout(IDLE_MS, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const start = buffer.indexOf(START);
        if (start < 0) {
          buffer = Buffer.alloc(0);
          return;
        }
        const end = buffer.indexOf(END, start + 1);
        if (end < 0) {
          if (buffer.length - start > MAX_FRAME_BYTES) {
            this.deps.log.warn({ peer }, 'HL7 frame too large: connection closed');
            socket.destroy();
          }
          if (start > 0) buffer = buffer.subarray(start);
          return;
        }
        const text = buffer.subarray(start + 1, end).toString('utf8');
        buffer = buffer.subarray(end + END.length);
        chain = chain.then(async () => {
          const answer = await this.handle(text, peer);
          if (!socket.destroyed) socket.write(Buffer.concat([Buffer.from([START]), Buffer.from(answer, 'utf8'), END]));
        });
      }
    });
  }

  /** One message: stored and AA, or AE/AR with the reason. Never throws. */
  private async handle(raw: string, peer: string): Promise<string> {
    const { db, audit, log, node } = this.deps;
    // Segments end with CR; some senders add LF.
    const text = raw.replace(/\r\n|\n/g, '\r').replace(/^\s+/, '');
    let m: Message | undefined;
    let outcome: Outcome;
    let orderId: number | undefined;
    try {
      m = parseMessage(text);
      const sender = m.get('MSH.3.1').toString().trim();
      if (this.deps.allowedSenders.length > 0 && !this.deps.allowedSenders.includes(sender))
        throw new OrderMessageError('AR', '207', `sending application "${sender}" is not allowed (HL7_ALLOWED_SENDERS)`);
      const order = orderFromMessage(m, text);
      orderId = await insertOrder(db, order);
      outcome = { code: 'AA' };
    } catch (err) {
      if (err instanceof OrderMessageError) outcome = { code: err.ack, errorCode: err.errorCode, text: err.message };
      else if (!m) outcome = { code: 'AE', errorCode: '100', text: `not an HL7 message: ${errorMessage(err)}` };
      // The index could not take it: AE, so the sender keeps it and sends it again.
      else outcome = { code: 'AE', errorCode: '207', text: 'the order could not be stored; send it again later' };
      if (!(err instanceof OrderMessageError) && m) log.error({ err: errorMessage(err), peer }, 'HL7 order not stored');
    }
    const type = m ? messageType(m) : null;
    await audit
      .record({
        actorType: 'system',
        actor: (m?.get('MSH.3.1').toString().trim() || 'unknown').slice(0, 64),
        peer,
        action: 'hl7.order.received',
        resourceType: 'order',
        ...(orderId !== undefined ? { resourceId: String(orderId) } : {}),
        outcome: outcome.code === 'AA' ? 'success' : 'failure',
        details: {
          type,
          controlId: m?.get('MSH.10').toString() ?? null,
          ack: outcome.code,
          ...(outcome.text ? { reason: outcome.text } : {}),
        },
      })
      .catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'HL7 order audit failed'));
    log.info({ peer, type, ack: outcome.code }, 'HL7 message answered');
    try {
      return buildAck(node, m, outcome);
    } catch {
      return buildAck(node, undefined, outcome);
    }
  }
}
