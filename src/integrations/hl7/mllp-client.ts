import { Client, type Connection, type InboundResponse } from 'node-hl7-client';
import { errorMessage } from '../../errors.js';
import { parseMessage } from './v2.js';

/**
 * One message over MLLP to a peer and its ACK, through node-hl7-client's connection (framing,
 * TLS, the wait for the answer). The library's own reconnecting and in-memory queue are kept out
 * of the way (one connection per message, closed when answered): retries are the job runner's,
 * durable, with the node's back-off.
 */

export interface MllpTarget {
  host: string;
  port: number;
  tls: boolean;
  timeoutMs: number;
}

export interface Ack {
  /** MSA-1: AA, AE, AR (or CA, CE, CR). */
  code: string;
  /** MSA-2: the control ID of the message acknowledged. */
  controlId: string;
  /** MSA-3 and ERR-8 (user message), what the peer says went wrong. */
  text: string;
  /** The ACK as received. */
  raw: string;
}

/** No ACK: the peer could not be reached, closed the connection, or did not answer in time. */
export class MllpError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MllpError';
  }
}

export function parseAck(raw: string): Ack {
  const m = parseMessage(raw);
  const code = m.get('MSA.1').toString().trim().toUpperCase();
  if (!code) throw new MllpError('the answer has no MSA-1 (not an ACK)');
  const text = [m.get('MSA.3').toString(), m.get('ERR.8').toString()].filter((s) => s.trim()).join('; ');
  return { code, controlId: m.get('MSA.2').toString().trim(), text, raw };
}

/** Sends `text` and resolves with the peer's ACK; rejects with MllpError when none came. */
export async function sendMllp(target: MllpTarget, text: string): Promise<Ack> {
  // connectionTimeout > 0 makes the library report a refused or dropped connection (client.error)
  // instead of waiting silently; it is capped at 60 s by the library.
  const client = new Client({
    host: target.host,
    connectionTimeout: Math.min(60_000, target.timeoutMs),
    ...(target.tls ? { tls: true } : {}),
  });
  return new Promise<Ack>((resolve, reject) => {
    let settled = false;
    let conn: Connection | undefined;
    const finish = (err: Error | undefined, ack?: Ack) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void conn?.close().catch(() => undefined);
      if (err) reject(err);
      else resolve(ack!);
    };
    const timer = setTimeout(() => finish(new MllpError(`no ACK within ${target.timeoutMs} ms`)), target.timeoutMs);
    conn = client.createConnection(
      { port: target.port, autoConnect: false, maxConnectionAttempts: 1, waitAck: true },
      async (res: InboundResponse) => {
        try {
          finish(undefined, parseAck(res.getMessage().toString()));
        } catch (err) {
          finish(err instanceof MllpError ? err : new MllpError(`unreadable ACK: ${errorMessage(err)}`));
        }
      },
    );
    conn.on('client.error', (err: unknown) => finish(new MllpError(`connection failed: ${errorMessage(err)}`)));
    conn.sendMessage(parseMessage(text)).catch((err: unknown) => finish(new MllpError(`send failed: ${errorMessage(err)}`)));
  });
}
