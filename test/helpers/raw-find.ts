import net from 'node:net';
import { writeFlatDataset, type FlatElement } from '../../src/dicom/flat-dataset.js';

/**
 * A C-FIND SCU written from the bytes up (PS3.8 9.3, PS3.7 9.1.2): one association, one C-FIND, the
 * time of the first pending response and of the final one measured on the wire. The test and the
 * bench use it to time the node (or Orthanc) alone: DCMTK findscu adds its process start, and the
 * dcmjs-dimse Client decodes each answer through dcmjs, which costs more than the node's answer.
 */

const APPLICATION_CONTEXT = '1.2.840.10008.3.1.1.1';
const IMPLICIT_LE = '1.2.840.10008.1.2';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';

function item(type: number, body: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt8(type, 0);
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([head, body]);
}

const text = (type: number, value: string) => item(type, Buffer.from(value, 'ascii'));
const ae = (title: string) => Buffer.from(title.padEnd(16, ' ').slice(0, 16), 'ascii');

function associateRq(calling: string, called: string, sopClass: string, syntax: string): Buffer {
  const fixed = Buffer.alloc(4);
  fixed.writeUInt16BE(1, 0);
  const pc = item(0x20, Buffer.concat([Buffer.from([1, 0, 0, 0]), text(0x30, sopClass), text(0x40, syntax)]));
  const max = Buffer.alloc(4);
  max.writeUInt32BE(65536, 0);
  const user = item(0x50, Buffer.concat([item(0x51, max), text(0x52, '1.2.826.0.1.3680043.9.7433.1.2')]));
  const body = Buffer.concat([fixed, ae(called), ae(calling), Buffer.alloc(32), text(0x10, APPLICATION_CONTEXT), pc, user]);
  const head = Buffer.alloc(6);
  head.writeUInt8(0x01, 0);
  head.writeUInt32BE(body.length, 2);
  return Buffer.concat([head, body]);
}

function pdv(command: boolean, data: Buffer): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt8(0x04, 0);
  head.writeUInt32BE(data.length + 6, 2);
  head.writeUInt32BE(data.length + 2, 6);
  head.writeUInt8(1, 10);
  head.writeUInt8((command ? 1 : 0) | 2, 11);
  return Buffer.concat([head, data]);
}

function findRq(sopClass: string, messageId: number): Buffer {
  const implicit = { explicitVr: false, littleEndian: true };
  const body = writeFlatDataset(
    [
      { tag: 0x00000002, vr: 'UI', value: sopClass },
      { tag: 0x00000100, vr: 'US', value: [0x0020] },
      { tag: 0x00000110, vr: 'US', value: [messageId] },
      { tag: 0x00000700, vr: 'US', value: [0] },
      { tag: 0x00000800, vr: 'US', value: [0x0102] },
    ],
    implicit,
  );
  return Buffer.concat([writeFlatDataset([{ tag: 0, vr: 'UL', value: [body.length] }], implicit), body]);
}

/** (0000,0900) Status of an Implicit VR Little Endian command set. */
function statusOf(command: Buffer): number | undefined {
  for (let at = 0; at + 8 <= command.length; ) {
    const tag = (command.readUInt16LE(at) << 16) | command.readUInt16LE(at + 2);
    const len = command.readUInt32LE(at + 4);
    if (tag === 0x0900) return command.readUInt16LE(at + 8);
    at += 8 + len;
  }
  return undefined;
}

export interface RawFindResult {
  /** The status of every response, the final one last. */
  statuses: number[];
  /** Each pending response's identifier, as it arrived. */
  identifiers: Buffer[];
  /** From sending the C-FIND-RQ to the first response, and to the final one. */
  firstMs: number;
  totalMs: number;
}

export interface RawFindOptions {
  calledAe?: string;
  callingAe?: string;
  /** The identifier's transfer syntax (the only one proposed): Explicit VR Little Endian by default. */
  explicitVr?: boolean;
  timeoutMs?: number;
}

/** One association, one C-FIND with `identifier`, then release. */
export function rawFind(port: number, sopClass: string, identifier: FlatElement[], opts: RawFindOptions = {}): Promise<RawFindResult> {
  const explicitVr = opts.explicitVr ?? true;
  const syntax = explicitVr ? EXPLICIT_LE : IMPLICIT_LE;
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    const timer = setTimeout(() => fail(new Error('C-FIND timed out')), opts.timeoutMs ?? 60_000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    let pending = Buffer.alloc(0);
    let command: Buffer[] = [];
    let dataset: Buffer[] = [];
    const statuses: number[] = [];
    const identifiers: Buffer[] = [];
    let sentAt = 0n;
    let firstMs = 0;
    let totalMs = 0;
    socket.on('error', fail);
    socket.on('connect', () => socket.write(associateRq(opts.callingAe ?? 'RAWFIND', opts.calledAe ?? 'RADIANT', sopClass, syntax)));
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 6 && pending.length >= 6 + pending.readUInt32BE(2)) {
        const type = pending.readUInt8(0);
        const body = pending.subarray(6, 6 + pending.readUInt32BE(2));
        pending = pending.subarray(6 + body.length);
        if (type === 0x02) {
          sentAt = process.hrtime.bigint();
          socket.write(pdv(true, findRq(sopClass, 1)));
          socket.write(pdv(false, writeFlatDataset(identifier, { explicitVr, littleEndian: true })));
        } else if (type === 0x03 || type === 0x07) {
          return fail(new Error(type === 0x03 ? 'association rejected' : 'association aborted'));
        } else if (type === 0x06) {
          clearTimeout(timer);
          socket.end();
          return resolve({ statuses, identifiers, firstMs, totalMs });
        } else if (type === 0x04) {
          for (let at = 0; at < body.length; ) {
            const len = body.readUInt32BE(at);
            const control = body.readUInt8(at + 5);
            const data = body.subarray(at + 6, at + 4 + len);
            at += 4 + len;
            if (control & 1) command.push(data);
            else dataset.push(data);
            if (!(control & 2)) continue;
            if (!(control & 1)) {
              identifiers.push(Buffer.concat(dataset));
              dataset = [];
              continue;
            }
            const status = statusOf(Buffer.concat(command));
            command = [];
            if (status === undefined) return fail(new Error('a response without a status'));
            const ms = Number(process.hrtime.bigint() - sentAt) / 1e6;
            if (statuses.length === 0) firstMs = ms;
            statuses.push(status);
            if ((status & 0xff00) !== 0xff00) {
              totalMs = ms;
              socket.write(Buffer.from([0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0]));
            }
          }
        }
      }
    });
  });
}
