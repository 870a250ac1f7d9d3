import { writeFlatDataset, type FlatElement } from '../src/dicom/flat-dataset.js';

/**
 * DIMSE messages written as P-DATA-TF PDUs here rather than by dcmjs-dimse, for the messages the
 * node sends by the hundred (C-FIND pending responses): the command set (always Implicit VR Little
 * Endian, with its group length, PS3.7 6.3.1) and the data set fragmented to the peer's maximum
 * PDU length (PS3.8 9.3.5), every PDU of a batch in one buffer so one socket write sends them.
 */

/** dcmjs-dimse never sends PDUs larger than this, whatever the peer accepts; neither does the node. */
const PDU_CAP = 4 * 1024 * 1024;
/** CommandDataSetType: a data set follows (any value but 0x0101; 0x0202 as dcmjs-dimse writes). */
const DATASET_PRESENT = 0x0202;
const NO_DATASET = 0x0101;

export interface ResponseCommand {
  affectedSopClassUid: string;
  /** C-FIND-RSP 0x8020, C-MOVE-RSP 0x8021, ... */
  commandField: number;
  messageIdBeingRespondedTo: number;
  status: number;
  hasDataset: boolean;
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
  const syntax = { explicitVr: false, littleEndian: true };
  const body = writeFlatDataset(elements, syntax);
  return Buffer.concat([writeFlatDataset([{ tag: 0, vr: 'UL', value: [body.length] }], syntax), body]);
}

/** One P-DATA-TF PDU holding one PDV (PS3.8 9.3.5.1, E.2). */
function pdu(contextId: number, command: boolean, last: boolean, fragment: Buffer): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt8(0x04, 0);
  head.writeUInt32BE(fragment.length + 6, 2);
  head.writeUInt32BE(fragment.length + 2, 6);
  head.writeUInt8(contextId, 10);
  head.writeUInt8((command ? 1 : 0) | (last ? 2 : 0), 11);
  return Buffer.concat([head, fragment]);
}

/**
 * The PDUs of one message: its command set, then its data set in fragments that fit the peer's
 * maximum PDU length (`maxPdu`; 0 means no limit, PS3.8 D.1).
 */
export function messagePdus(contextId: number, maxPdu: number, command: Buffer, dataset?: Buffer): Buffer[] {
  const limit = maxPdu === 0 ? PDU_CAP : Math.min(maxPdu, PDU_CAP);
  // The PDU length counts the PDV item (4 length bytes, context id, control header) and the fragment.
  const room = limit - 6;
  const out: Buffer[] = [];
  for (let at = 0; at < command.length || at === 0; at += room) {
    out.push(pdu(contextId, true, at + room >= command.length, command.subarray(at, at + room)));
  }
  if (dataset) {
    for (let at = 0; at < dataset.length || at === 0; at += room) {
      out.push(pdu(contextId, false, at + room >= dataset.length, dataset.subarray(at, at + room)));
    }
  }
  return out;
}
