import net from 'node:net';

/**
 * Association-level peers built from raw bytes (PS3.8 9.3): for tests of what a hostile or broken
 * peer does with the upper layer itself (connect and say nothing, associate and go quiet), which
 * no well-behaved client library lets one do.
 */

const VERIFICATION = '1.2.840.10008.1.1';
const IMPLICIT_LE = '1.2.840.10008.1.2';
const APPLICATION_CONTEXT = '1.2.840.10008.3.1.1.1';

function item(type: number, body: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt8(type, 0);
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([head, body]);
}

const uid = (type: number, value: string) => item(type, Buffer.from(value, 'ascii'));
const aeField = (ae: string) => Buffer.from(ae.padEnd(16, ' ').slice(0, 16), 'ascii');

/** An A-ASSOCIATE-RQ PDU proposing Verification in Implicit VR Little Endian (PS3.8 9.3.2). */
export function associateRq(callingAe: string, calledAe: string): Buffer {
  const fixed = Buffer.alloc(4);
  fixed.writeUInt16BE(1, 0); // protocol version
  const presentation = item(0x20, Buffer.concat([Buffer.from([1, 0, 0, 0]), uid(0x30, VERIFICATION), uid(0x40, IMPLICIT_LE)]));
  const maxLength = Buffer.alloc(4);
  maxLength.writeUInt32BE(16384, 0);
  const userInfo = item(0x50, Buffer.concat([item(0x51, maxLength), uid(0x52, '1.2.826.0.1.3680043.9.7433.1.1')]));
  const body = Buffer.concat([
    fixed,
    aeField(calledAe),
    aeField(callingAe),
    Buffer.alloc(32),
    uid(0x10, APPLICATION_CONTEXT),
    presentation,
    userInfo,
  ]);
  const head = Buffer.alloc(6);
  head.writeUInt8(0x01, 0);
  head.writeUInt32BE(body.length, 2);
  return Buffer.concat([head, body]);
}

function element(group: number, el: number, value: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt16LE(group, 0);
  head.writeUInt16LE(el, 2);
  head.writeUInt32LE(value.length, 4);
  return Buffer.concat([head, value]);
}

function us(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v, 0);
  return b;
}

/** A P-DATA-TF PDU carrying a C-ECHO-RQ command (PS3.7 9.3.5) on presentation context 1. */
export function echoRq(messageId: number): Buffer {
  const rest = Buffer.concat([
    // UI values are padded to an even length with a NUL (17 characters + 1).
    element(0x0000, 0x0002, Buffer.from(`${VERIFICATION}\0`, 'ascii')),
    element(0x0000, 0x0100, us(0x0030)),
    element(0x0000, 0x0110, us(messageId)),
    element(0x0000, 0x0800, us(0x0101)),
  ]);
  const groupLength = Buffer.alloc(4);
  groupLength.writeUInt32LE(rest.length, 0);
  const command = Buffer.concat([element(0x0000, 0x0000, groupLength), rest]);
  const pdv = Buffer.alloc(6);
  pdv.writeUInt32BE(command.length + 2, 0);
  pdv.writeUInt8(1, 4); // presentation context ID
  pdv.writeUInt8(0x03, 5); // command, last fragment
  const body = Buffer.concat([pdv, command]);
  const head = Buffer.alloc(6);
  head.writeUInt8(0x04, 0);
  head.writeUInt32BE(body.length, 2);
  return Buffer.concat([head, body]);
}

/** A-ABORT by the service user (PS3.8 9.3.8). */
export const ABORT = Buffer.from([0x07, 0, 0, 0, 0, 4, 0, 0, 0, 0]);

/** A-RELEASE-RQ (PS3.8 9.3.6). */
export const RELEASE_RQ = Buffer.from([0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0]);

export type AssociateAnswer =
  | { type: 'accept' }
  | { type: 'reject'; result: number; source: number; reason: number }
  | { type: 'abort' }
  | { type: 'closed' };

/** A raw peer's connection: what came back, and whether the other side is gone. */
export interface RawPeer {
  socket: net.Socket;
  /** Resolves when the node ends or destroys the connection (FIN or RST seen). */
  ended: Promise<void>;
  /** Bytes received so far. */
  received(): Buffer;
}

/**
 * A TCP connection that never closes its own end (allowHalfOpen), so that only the node can take
 * the connection down. `localAddress` picks the source address (127.0.0.x on loopback).
 */
export function connectRaw(port: number, localAddress = '127.0.0.1'): Promise<RawPeer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    const ended = new Promise<void>((r) => {
      socket.once('end', () => r());
      socket.once('close', () => r());
    });
    // A reset by the node is one way it may drop the connection; not a test failure by itself.
    socket.on('error', () => undefined);
    socket.once('connect', () => resolve({ socket, ended, received: () => Buffer.concat(chunks) }));
    socket.once('error', reject);
  });
}

/** Sends an A-ASSOCIATE-RQ and reads the answer PDU (AC, RJ with its result/source/reason, or abort). */
export async function associate(peer: RawPeer, callingAe: string, calledAe = 'RADIANT', timeoutMs = 5000): Promise<AssociateAnswer> {
  peer.socket.write(associateRq(callingAe, calledAe));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const buf = peer.received();
    if (buf.length >= 6 && buf.length >= 6 + buf.readUInt32BE(2)) {
      const type = buf.readUInt8(0);
      if (type === 0x02) return { type: 'accept' };
      if (type === 0x03) return { type: 'reject', result: buf.readUInt8(7), source: buf.readUInt8(8), reason: buf.readUInt8(9) };
      if (type === 0x07) return { type: 'abort' };
      throw new Error(`unexpected PDU type ${type}`);
    }
    if (peer.socket.destroyed || peer.socket.readableEnded) return { type: 'closed' };
    if (Date.now() > deadline) throw new Error('no answer to the A-ASSOCIATE-RQ');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Whether the node has let go of the connection entirely (destroyed, not half-closed): after its
 * FIN, bytes written to a destroyed socket are answered with a reset, while a half-closed one
 * still takes them.
 */
export async function nodeDestroyed(peer: RawPeer, waitMs = 1500): Promise<boolean> {
  if (peer.socket.destroyed) return true;
  let reset = false;
  peer.socket.once('error', () => (reset = true));
  peer.socket.once('close', () => (reset = true));
  // Two writes: the first may be accepted by the kernel before the reset comes back.
  peer.socket.write(Buffer.alloc(16));
  await new Promise((r) => setTimeout(r, 200));
  if (!peer.socket.destroyed) peer.socket.write(Buffer.alloc(16));
  const deadline = Date.now() + waitMs;
  while (!reset && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return reset;
}

/** The types of the complete PDUs received so far, in order. */
export function pduTypes(peer: RawPeer): number[] {
  const buf = peer.received();
  const out: number[] = [];
  for (let at = 0; at + 6 <= buf.length; ) {
    const end = at + 6 + buf.readUInt32BE(at + 2);
    if (end > buf.length) break;
    out.push(buf.readUInt8(at));
    at = end;
  }
  return out;
}
