import { expect } from 'chai';
import dimse from 'dcmjs-dimse';
import { messagePdus, readResponsePdu, responseCommandSet, storeRequestCommandSet, writeMessage } from '../../dimse/pdata.js';
import { writeFlatDataset, type FlatElement } from '../../src/dicom/flat-dataset.js';
import { TS } from '../../src/dicom/transfer-syntax.js';

/**
 * The flat data set writer (C-FIND identifiers, DIMSE command sets) writes the bytes dcmjs writes
 * for the same elements, in each native syntax; the P-DATA-TF PDUs fragment to the peer's limit.
 */

const ELEMENTS: FlatElement[] = [
  { tag: 0x0020000d, vr: 'UI', value: '1.2.826.0.1.3680043.10.4242.5' },
  { tag: 0x00080005, vr: 'CS', value: 'ISO_IR 192' },
  { tag: 0x00100010, vr: 'PN', value: 'Müller^José=山田^太郎' },
  { tag: 0x00080061, vr: 'CS', value: 'CT\\MR' },
  { tag: 0x00280010, vr: 'US', value: [512] },
  { tag: 0x00200013, vr: 'IS', value: '12' },
  { tag: 0x00080020, vr: 'DA', value: '' },
  { tag: 0x00081190, vr: 'UR', value: 'http://x/y' },
];
const NATURALIZED = {
  StudyInstanceUID: '1.2.826.0.1.3680043.10.4242.5',
  SpecificCharacterSet: 'ISO_IR 192',
  PatientName: [{ Alphabetic: 'Müller^José', Ideographic: '山田^太郎' }],
  ModalitiesInStudy: ['CT', 'MR'],
  Rows: 512,
  InstanceNumber: 12,
  StudyDate: '',
  RetrieveURL: 'http://x/y',
};

describe('unit: flat data set writer and P-DATA-TF PDUs', () => {
  for (const [name, uid, syntax] of [
    ['Implicit VR Little Endian', TS.ImplicitVRLittleEndian, { explicitVr: false, littleEndian: true }],
    ['Explicit VR Little Endian', TS.ExplicitVRLittleEndian, { explicitVr: true, littleEndian: true }],
    ['Explicit VR Big Endian', TS.ExplicitVRBigEndian, { explicitVr: true, littleEndian: false }],
  ] as const) {
    it(`writes what dcmjs writes, ${name}`, () => {
      const ours = writeFlatDataset(ELEMENTS, syntax);
      const theirs = new dimse.Dataset(NATURALIZED, uid).getDenaturalizedDataset();
      expect(ours.toString('hex')).to.equal(Buffer.from(theirs).toString('hex'));
    });
  }

  it('a response command set reads back through dcmjs-dimse with its group length', () => {
    const bytes = responseCommandSet({
      affectedSopClassUid: '1.2.840.10008.5.1.4.1.2.2.1',
      commandField: 0x8020,
      messageIdBeingRespondedTo: 7,
      status: 0xff00,
      hasDataset: true,
    });
    const ds = new dimse.Dataset(bytes, TS.ImplicitVRLittleEndian);
    expect(ds.getElement('CommandGroupLength')).to.equal(bytes.length - 12);
    expect(ds.getElement('CommandField')).to.equal(0x8020);
    expect(ds.getElement('MessageIDBeingRespondedTo')).to.equal(7);
    expect(ds.getElement('Status')).to.equal(0xff00);
    expect(ds.getElement('CommandDataSetType')).to.not.equal(0x0101);
  });

  it('fragments the data set to the peer maximum PDU length, the last fragment flagged', () => {
    const command = Buffer.alloc(40, 1);
    const dataset = Buffer.alloc(1000, 2);
    const pdus = messagePdus(3, 256, command, dataset);
    expect(pdus.length).to.equal(1 + Math.ceil(1000 / 250));
    const fragments: Buffer[] = [];
    for (const [i, p] of pdus.entries()) {
      expect(p.readUInt8(0)).to.equal(0x04);
      expect(p.readUInt32BE(2)).to.be.at.most(256);
      expect(p.readUInt32BE(2)).to.equal(p.length - 6);
      expect(p.readUInt8(10)).to.equal(3);
      const control = p.readUInt8(11);
      expect(control & 1, 'command bit').to.equal(i === 0 ? 1 : 0);
      expect(Boolean(control & 2), 'last bit').to.equal(i === 0 || i === pdus.length - 1);
      if (i > 0) fragments.push(p.subarray(12));
    }
    expect(Buffer.concat(fragments).equals(dataset)).to.equal(true);
    expect(messagePdus(1, 0, command).length).to.equal(1);
  });

  it('a C-STORE-RQ command set (with the move originator) reads back through dcmjs-dimse', () => {
    const bytes = storeRequestCommandSet({
      sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
      sopInstanceUid: '1.2.3.4.5',
      messageId: 42,
      moveOriginator: { aeTitle: 'MOVESCU', messageId: 7 },
    });
    const ds = new dimse.Dataset(bytes, TS.ImplicitVRLittleEndian);
    expect(ds.getElement('CommandGroupLength')).to.equal(bytes.length - 12);
    expect(ds.getElement('CommandField')).to.equal(0x0001);
    expect(ds.getElement('MessageID')).to.equal(42);
    expect(ds.getElement('AffectedSOPClassUID')).to.equal('1.2.840.10008.5.1.4.1.1.2');
    expect(ds.getElement('AffectedSOPInstanceUID')).to.equal('1.2.3.4.5');
    expect(ds.getElement('Priority')).to.equal(0);
    expect(ds.getElement('CommandDataSetType')).to.not.equal(0x0101);
    expect(ds.getElement('MoveOriginatorApplicationEntityTitle')).to.equal('MOVESCU');
    expect(ds.getElement('MoveOriginatorMessageID')).to.equal(7);
  });

  it('C-STORE and C-MOVE responses carry the instance, the error comment and the sub-operation counts', () => {
    const store = new dimse.Dataset(
      responseCommandSet({
        affectedSopClassUid: '1.2.840.10008.5.1.4.1.1.2',
        commandField: 0x8001,
        messageIdBeingRespondedTo: 3,
        status: 0xa900,
        hasDataset: false,
        affectedSopInstanceUid: '1.2.3',
        errorComment: 'Affected SOP Instance UID differs',
      }),
      TS.ImplicitVRLittleEndian,
    );
    expect(store.getElement('AffectedSOPInstanceUID')).to.equal('1.2.3');
    expect(store.getElement('ErrorComment')).to.equal('Affected SOP Instance UID differs');
    expect(store.getElement('CommandDataSetType')).to.equal(0x0101);
    const move = new dimse.Dataset(
      responseCommandSet({
        affectedSopClassUid: '1.2.840.10008.5.1.4.1.2.2.2',
        commandField: 0x8021,
        messageIdBeingRespondedTo: 9,
        status: 0xff00,
        hasDataset: false,
        counts: { remaining: 5, completed: 3, failed: 1, warning: 2 },
      }),
      TS.ImplicitVRLittleEndian,
    );
    expect(move.getElement('NumberOfRemainingSuboperations')).to.equal(5);
    expect(move.getElement('NumberOfCompletedSuboperations')).to.equal(3);
    expect(move.getElement('NumberOfFailedSuboperations')).to.equal(1);
    expect(move.getElement('NumberOfWarningSuboperations')).to.equal(2);
  });

  it('writes a message as the same PDUs, corked, the data set not copied', () => {
    const command = Buffer.alloc(40, 1);
    const dataset = Buffer.alloc(1000, 2);
    const written: Buffer[] = [];
    const calls: string[] = [];
    const sink = {
      cork: () => calls.push('cork'),
      uncork: () => calls.push('uncork'),
      write: (b: Buffer) => {
        written.push(b);
        return true;
      },
    };
    writeMessage(sink, 3, 256, command, dataset);
    expect(calls).to.deep.equal(['cork', 'uncork']);
    expect(Buffer.concat(written).equals(Buffer.concat(messagePdus(3, 256, command, dataset)))).to.equal(true);
    // The fragments are views of the data set's memory.
    expect(written.some((b) => b.buffer === dataset.buffer && b.length === 250)).to.equal(true);
  });

  it('reads a C-STORE-RSP back from its PDU; a PDU that is not one whole command set is left alone', () => {
    const command = responseCommandSet({
      affectedSopClassUid: '1.2.840.10008.5.1.4.1.1.2',
      commandField: 0x8001,
      messageIdBeingRespondedTo: 513,
      status: 0xb007,
      hasDataset: false,
      affectedSopInstanceUid: '1.2.3',
      errorComment: 'coerced',
    });
    const [pdu] = messagePdus(5, 16384, command);
    expect(readResponsePdu(pdu!)).to.deep.equal({
      commandField: 0x8001,
      messageIdBeingRespondedTo: 513,
      status: 0xb007,
      errorComment: 'coerced',
    });
    // Split over two PDUs, or followed by a data set: dcmjs-dimse reads those.
    const split = messagePdus(5, 64, command);
    expect(split.length).to.be.greaterThan(1);
    expect(split.map((p) => readResponsePdu(p))).to.deep.equal(split.map(() => undefined));
    const withData = responseCommandSet({
      ...{ affectedSopClassUid: '1.2', commandField: 0x8020, messageIdBeingRespondedTo: 1 },
      status: 0xff00,
      hasDataset: true,
    });
    expect(readResponsePdu(messagePdus(1, 0, withData)[0]!)).to.equal(undefined);
  });
});
