import { writeFlatDataset, type FlatElement } from '../src/dicom/flat-dataset.js';

/**
 * DIMSE messages written as P-DATA-TF PDUs here rather than by dcmjs-dimse, for the messages the
 * node sends by the hundred (C-FIND pending responses, C-STORE requests of C-MOVE/C-GET and their
 * pending responses, C-STORE responses): the command set (always Implicit VR Little Endian, with
 * its group length, PS3.7 6.3.1) and the data set fragmented to the peer's maximum PDU length
 * (PS3.8 9.3.5). dcmjs-dimse copies its whole tag dictionary for every command set it writes
 * (about 2 ms) and copies every fragment through its own buffer class.
 */

/** dcmjs-dimse never sends PDUs larger than this, whatever the peer accepts; neither does the node. */
const PDU_CAP = 4 * 1024 * 1024;
/** CommandDataSetType: a data set follows (any value but 0x0101; 0x0202 as dcmjs-dimse writes). */
const DATASET_PRESENT = 0x0202;
const NO_DATASET = 0x0101;

/** CommandField of a C-STORE-RQ (PS3.7 E.1). */
const C_STORE_RQ = 0x0001;

/** Sub-operation counts of a C-MOVE/C-GET response (PS3.7 C.4.2.1.6-9); Remaining only where it applies. */
export interface SubOperationCounts {
  remaining?: number;
  completed: number;
  failed: number;
  warning: number;
}

export interface ResponseCommand {
  affectedSopClassUid: string;
  /** C-FIND-RSP 0x8020, C-MOVE-RSP 0x8021, ... */
  commandField: number;
  messageIdBeingRespondedTo: number;
  status: number;
  hasDataset: boolean;
  /** C-STORE-RSP: the instance answered for. */
  affectedSopInstanceUid?: string;
  /** LO, 64 characters at most: the caller shortens it. */
  errorComment?: string;
  counts?: SubOperationCounts;
}

/** Implicit VR Little Endian, as every command set is written (PS3.7 6.3.1). */
const COMMAND_SYNTAX = { explicitVr: false, littleEndian: true };

/** A command set with its (0000,0000) CommandGroupLength first. */
function commandSet(elements: FlatElement[]): Buffer {
  const body = writeFlatDataset(elements, COMMAND_SYNTAX);
  return Buffer.concat([writeFlatDataset([{ tag: 0, vr: 'UL', value: [body.length] }], COMMAND_SYNTAX), body]);
}

/** A response's command set, Implicit VR Little Endian, (0000,0000) CommandGroupLength first. */
export function responseCommandSet(c: ResponseCommand): Buffer {
  const elements: FlatElement[] = [
    { tag: 0x00000002, vr: 'UI', value: c.affectedSopClassUid },
    { tag: 0x00000100, vr: 'US', value: [c.commandField] },
    { tag: 0x00000120, vr: 'US', value: [c.messageIdBeingRespondedTo] },
    { tag: 0x00000800, vr: 'US', value: [c.hasDataset ? DATASET_PRESENT : NO_DATASET] },
    { tag: 0x00000900, vr: 'US', value: [c.status] },
  ];
  if (c.errorComment) elements.push({ tag: 0x00000902, vr: 'LO', value: c.errorComment });
  if (c.affectedSopInstanceUid) elements.push({ tag: 0x00001000, vr: 'UI', value: c.affectedSopInstanceUid });
  if (c.counts) {
    if (c.counts.remaining !== undefined) elements.push({ tag: 0x00001020, vr: 'US', value: [c.counts.remaining] });
    elements.push({ tag: 0x00001021, vr: 'US', value: [c.counts.completed] });
    elements.push({ tag: 0x00001022, vr: 'US', value: [c.counts.failed] });
    elements.push({ tag: 0x00001023, vr: 'US', value: [c.counts.warning] });
  }
  return commandSet(elements);
}

export interface StoreRequestCommand {
  sopClassUid: string;
  sopInstanceUid: string;
  messageId: number;
  /** A C-MOVE's sub-operation names the C-MOVE it serves (PS3.7 9.3.1.1). */
  moveOriginator?: { aeTitle: string; messageId: number };
}

/** A C-STORE-RQ command set, priority MEDIUM, a data set following (PS3.7 9.3.1.1). */
export function storeRequestCommandSet(c: StoreRequestCommand): Buffer {
  const elements: FlatElement[] = [
    { tag: 0x00000002, vr: 'UI', value: c.sopClassUid },
    { tag: 0x00000100, vr: 'US', value: [C_STORE_RQ] },
    { tag: 0x00000110, vr: 'US', value: [c.messageId] },
    { tag: 0x00000700, vr: 'US', value: [0] },
    { tag: 0x00000800, vr: 'US', value: [DATASET_PRESENT] },
    { tag: 0x00001000, vr: 'UI', value: c.sopInstanceUid },
  ];
  if (c.moveOriginator) {
    elements.push({ tag: 0x00001030, vr: 'AE', value: c.moveOriginator.aeTitle });
    elements.push({ tag: 0x00001031, vr: 'US', value: [c.moveOriginator.messageId] });
  }
  return commandSet(elements);
}

/** The 12 bytes before a fragment: P-DATA-TF PDU header and its one PDV item's header (PS3.8 9.3.5.1, E.2). */
function pduHead(contextId: number, command: boolean, last: boolean, fragmentLength: number): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt8(0x04, 0);
  head.writeUInt32BE(fragmentLength + 6, 2);
  head.writeUInt32BE(fragmentLength + 2, 6);
  head.writeUInt8(contextId, 10);
  head.writeUInt8((command ? 1 : 0) | (last ? 2 : 0), 11);
  return head;
}

/**
 * The bytes of one message as a list of parts (PDU head, fragment, PDU head, fragment, ...): its
 * command set, then its data set in fragments that fit the peer's maximum PDU length (`maxPdu`; 0
 * means no limit, PS3.8 D.1). Fragments are views of `dataset`, never copies.
 */
function messageParts(contextId: number, maxPdu: number, command: Buffer, dataset?: Buffer): Buffer[] {
  const limit = maxPdu === 0 ? PDU_CAP : Math.min(maxPdu, PDU_CAP);
  // The PDU length counts the PDV item (4 length bytes, context id, control header) and the fragment.
  const room = limit - 6;
  const out: Buffer[] = [];
  const add = (isCommand: boolean, bytes: Buffer) => {
    for (let at = 0; at < bytes.length || at === 0; at += room) {
      const fragment = bytes.subarray(at, at + room);
      out.push(pduHead(contextId, isCommand, at + room >= bytes.length, fragment.length), fragment);
    }
  };
  add(true, command);
  if (dataset) add(false, dataset);
  return out;
}

/** The PDUs of one message, each in one buffer (C-FIND joins a page of them into one write). */
export function messagePdus(contextId: number, maxPdu: number, command: Buffer, dataset?: Buffer): Buffer[] {
  const parts = messageParts(contextId, maxPdu, command, dataset);
  const out: Buffer[] = [];
  for (let i = 0; i < parts.length; i += 2) out.push(Buffer.concat([parts[i]!, parts[i + 1]!]));
  return out;
}

/** What a message is written to: a socket (corked so the parts go out in one writev). */
export interface MessageSink {
  cork(): void;
  uncork(): void;
  write(chunk: Buffer): boolean;
}

/**
 * Writes one message to the socket without copying its data set: the parts are queued while the
 * socket is corked and leave in one gathered write. Returns what the socket's write returned for
 * the last part (false: its buffer is full, wait for 'drain').
 */
export function writeMessage(socket: MessageSink, contextId: number, maxPdu: number, command: Buffer, dataset?: Buffer): boolean {
  socket.cork();
  let ok = true;
  for (const part of messageParts(contextId, maxPdu, command, dataset)) ok = socket.write(part);
  socket.uncork();
  return ok;
}

/** A response command set read straight from a P-DATA-TF PDU (only what a C-STORE SCU needs of it). */
export interface ReceivedResponse {
  commandField: number;
  messageIdBeingRespondedTo: number;
  status: number;
  errorComment?: string;
}

/**
 * The response in a P-DATA-TF PDU that holds exactly one PDV, a whole command set (command and
 * last bits set) with no data set to follow; anything else is undefined, for dcmjs-dimse to read.
 * The command set is Implicit VR Little Endian (PS3.7 6.3.1).
 */
export function readResponsePdu(pdu: Buffer): ReceivedResponse | undefined {
  if (pdu.length < 12 || pdu.readUInt8(0) !== 0x04) return undefined;
  const itemLength = pdu.readUInt32BE(6);
  if (itemLength + 10 !== pdu.length || pdu.readUInt8(11) !== 0x03) return undefined;
  const out: Partial<ReceivedResponse> & { dataSetType?: number } = {};
  for (let at = 12; at + 8 <= pdu.length; ) {
    const group = pdu.readUInt16LE(at);
    const element = pdu.readUInt16LE(at + 2);
    const length = pdu.readUInt32LE(at + 4);
    const value = at + 8;
    if (group !== 0 || value + length > pdu.length) return undefined;
    if (length === 2 && element === 0x0100) out.commandField = pdu.readUInt16LE(value);
    else if (length === 2 && element === 0x0120) out.messageIdBeingRespondedTo = pdu.readUInt16LE(value);
    else if (length === 2 && element === 0x0800) out.dataSetType = pdu.readUInt16LE(value);
    else if (length === 2 && element === 0x0900) out.status = pdu.readUInt16LE(value);
    else if (element === 0x0902) out.errorComment = pdu.toString('latin1', value, value + length).replace(/[\0 ]+$/, '') || undefined;
    at = value + length;
  }
  if (out.commandField === undefined || out.messageIdBeingRespondedTo === undefined || out.status === undefined) return undefined;
  // A data set to follow (no C-STORE-RSP has one): left to dcmjs-dimse, which reads both parts.
  if (out.dataSetType !== NO_DATASET) return undefined;
  return {
    commandField: out.commandField,
    messageIdBeingRespondedTo: out.messageIdBeingRespondedTo,
    status: out.status,
    errorComment: out.errorComment,
  };
}
