import net from 'node:net';
import type { AddressInfo } from 'node:net';
import HL7 from 'hl7-standard';

/**
 * A RIS stand-in for the tests: an MLLP listener that reads each message with hl7-standard (an
 * HL7 parser independent of the node's node-hl7-client) and answers an ACK it writes itself, with
 * the code `answer` decides. Closing and starting it again on the same port is the RIS down and back.
 */

export interface ReceivedHl7 {
  raw: string;
  msg: HL7;
}

export interface RisPeer {
  port: number;
  received: ReceivedHl7[];
  /** AA by default; AE/AR with a reason to test failures. */
  answer: (m: HL7) => { code: 'AA' | 'AE' | 'AR'; text?: string };
  stop(): Promise<void>;
  restart(): Promise<void>;
}

export const START = '\x0b';
export const END = '\x1c\r';

/** hl7-standard's value at `field` of segment number `index` (0-based) as text. */
export function field(m: HL7, f: string, index?: number): string {
  const v = index === undefined ? m.get(f) : m.get(f, index);
  return typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v);
}

function ack(m: HL7, code: string, text?: string): string {
  const ctl = field(m, 'MSH.10');
  return [`MSH|^~\\&|TESTRIS|HOSP|RadiantAI||20240101120000||ACK^R01^ACK|ACK${ctl}|P|2.5.1`, `MSA|${code}|${ctl}|${text ?? ''}`].join('\r');
}

export async function startRisPeer(port = 0): Promise<RisPeer> {
  const sockets = new Set<net.Socket>();
  const peer: RisPeer = {
    port: 0,
    received: [],
    answer: () => ({ code: 'AA' }),
    stop: async () => undefined,
    restart: async () => undefined,
  };
  const listen = async (p: number): Promise<net.Server> => {
    const server = net.createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
      let buf = '';
      s.on('data', (d) => {
        buf += d.toString('utf8');
        for (;;) {
          const end = buf.indexOf(END);
          if (end < 0) return;
          const raw = buf.slice(buf.indexOf(START) + 1, end);
          buf = buf.slice(end + END.length);
          const msg = new HL7(raw);
          msg.transform();
          peer.received.push({ raw, msg });
          const a = peer.answer(msg);
          s.write(`${START}${ack(msg, a.code, a.text)}${END}`);
        }
      });
    });
    await new Promise<void>((r) => server.listen(p, '127.0.0.1', r));
    return server;
  };
  let server = await listen(port);
  peer.port = (server.address() as AddressInfo).port;
  peer.stop = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  };
  peer.restart = async () => {
    server = await listen(peer.port);
  };
  return peer;
}

/** One MLLP exchange with a listener: sends `text` framed, resolves with the raw answer. */
export async function mllpExchange(port: number, text: string, socket?: net.Socket): Promise<string> {
  const s = socket ?? net.connect(port, '127.0.0.1');
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString('utf8');
      const end = buf.indexOf(END);
      if (end >= 0) {
        s.off('data', onData);
        if (!socket) s.end();
        resolve(buf.slice(buf.indexOf(START) + 1, end));
      }
    };
    s.on('data', onData);
    s.once('error', reject);
    s.write(`${START}${text}${END}`);
  });
}
