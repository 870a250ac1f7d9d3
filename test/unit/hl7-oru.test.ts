import { expect } from 'chai';
import HL7 from 'hl7-standard';
import { buildOru, resultStatus, type OruInput } from '../../src/integrations/hl7/oru.js';
import { orderFromMessage, OrderMessageError } from '../../src/integrations/hl7/order-message.js';
import { buildAck } from '../../src/integrations/hl7/order-listener.js';
import { parseAck } from '../../src/integrations/hl7/mllp-client.js';
import { parseMessage } from '../../src/integrations/hl7/v2.js';
import { field } from '../helpers/hl7.js';

/** The ORU^R01 builder and the order/ACK readers, read back with hl7-standard (an independent parser). */

const base: OruInput = {
  controlId: 'R7.abcd1234',
  at: new Date('2024-03-01T10:20:30Z'),
  sendingFacility: 'General Hospital',
  receivingApplication: 'RIS',
  receivingFacility: 'RADIOLOGY',
  patient: { id: 'PAT-1', issuer: 'HOSP', name: 'Doe^Jane^Q^Dr^MD', birthDate: '19600102', sex: 'F' },
  study: { accessionNumber: 'ACC42', studyInstanceUid: '1.2.3', studyDate: '20240301', studyTime: '101500.123' },
  order: null,
  procedure: { code: { value: '24627-2', scheme: 'LN', meaning: 'CT Chest' }, text: 'CT chest w/o contrast' },
  state: 'draft',
  versionAt: '2024-03-01T10:25:00.000Z',
  signer: null,
  findings: [
    {
      number: 1,
      description: 'Small opacity | possibly ^ a nodule.\nSecond line.',
      anatomicalLocation: 'right upper lobe',
      laterality: 'right',
      confidence: 0.6,
      recommendation: 'Follow-up CT.',
      author: 'ai',
    },
  ],
  impression: 'Possible small nodule.',
  disclaimer: 'AI-generated draft: must be reviewed.',
};

function parse(text: string): HL7 {
  const m = new HL7(text);
  m.transform();
  return m;
}

describe('HL7 ORU^R01 builder (v2.5.1)', () => {
  it('writes MSH, PID, PV1, ORC and OBR as mapped, read back by hl7-standard', () => {
    const m = parse(buildOru(base));
    expect(field(m, 'MSH.3')).to.equal('RadiantAI');
    expect(field(m, 'MSH.5')).to.equal('RIS');
    expect(field(m, 'MSH.6')).to.equal('RADIOLOGY');
    expect(field(m, 'MSH.7')).to.equal('20240301102030+0000');
    expect(m.get('MSH.9')).to.deep.equal({ 'MSH.9.1': 'ORU', 'MSH.9.2': 'R01', 'MSH.9.3': 'ORU_R01' });
    expect(field(m, 'MSH.10')).to.equal('R7.abcd1234');
    expect(field(m, 'MSH.11')).to.equal('P');
    expect(field(m, 'MSH.12')).to.equal('2.5.1');
    expect(field(m, 'PID.3.1')).to.equal('PAT-1');
    expect(field(m, 'PID.3.4')).to.equal('HOSP');
    expect(field(m, 'PID.5.1')).to.equal('Doe');
    expect(field(m, 'PID.5.2')).to.equal('Jane');
    expect(field(m, 'PID.5.4')).to.equal('MD');
    expect(field(m, 'PID.5.5')).to.equal('Dr');
    expect(field(m, 'PID.7')).to.equal('19600102');
    expect(field(m, 'PID.8')).to.equal('F');
    expect(field(m, 'PV1.2')).to.equal('U');
    expect(field(m, 'ORC.1')).to.equal('RE');
    // No order received: both order numbers are the Accession Number.
    expect(field(m, 'OBR.2')).to.equal('ACC42');
    expect(field(m, 'OBR.3')).to.equal('ACC42');
    expect(field(m, 'OBR.4.1')).to.equal('24627-2');
    expect(field(m, 'OBR.4.3')).to.equal('LN');
    expect(field(m, 'OBR.7')).to.equal('20240301101500');
    expect(field(m, 'OBR.22')).to.equal('20240301102500+0000');
    expect(field(m, 'OBR.25')).to.equal('P');
    expect(field(m, 'OBR.32')).to.equal('');
  });

  it('OBX: impression and each finding verbatim (escaped, FT line breaks), confidence as NM, status P for a draft', () => {
    const text = buildOru(base);
    const m = parse(text);
    const obx = m.getSegments('OBX');
    expect(obx.map((s) => s.get('OBX.2'))).to.deep.equal(['FT', 'FT', 'NM', 'FT']);
    expect(obx.map((s) => s.get('OBX.11'))).to.deep.equal(['P', 'P', 'P', 'P']);
    expect(obx[0]!.get('OBX.3')).to.deep.include({ 'OBX.3.1': '19005-8', 'OBX.3.3': 'LN' });
    expect(obx[0]!.get('OBX.5')).to.equal('Possible small nodule.');
    expect(obx[1]!.get('OBX.4')).to.equal('1');
    // The delimiters in the model's words are escaped, its line break is FT's \.br\.
    expect(obx[1]!.get('OBX.5')).to.equal('Small opacity \\F\\ possibly \\S\\ a nodule.\\.br\\Second line.');
    expect(obx[1]!.get('OBX.20')).to.deep.include({ 'OBX.20.2': 'right right upper lobe' });
    expect(obx[2]!.get('OBX.5')).to.equal('0.60');
    expect(obx[3]!.get('OBX.5')).to.equal('Follow-up CT.');
    expect(field(m, 'NTE.3')).to.equal('AI-generated draft: must be reviewed.');
    // node-hl7-client reads the same text back unescaped.
    expect(parseMessage(text).get('OBX.5').toString()).to.equal('Possible small nodule.');
  });

  it('signed: F with the interpreter (OBR-32) and the order numbers of the order received; amended: C', () => {
    const signed = parse(
      buildOru({
        ...base,
        state: 'final',
        signer: { username: 'drhouse', name: 'House^Gregory^^^MD' },
        order: { placerOrderNumber: 'PL-9', fillerOrderNumber: 'FI-9' },
      }),
    );
    expect(field(signed, 'OBR.25')).to.equal('F');
    expect(field(signed, 'ORC.5')).to.equal('CM');
    expect(field(signed, 'OBR.2')).to.equal('PL-9');
    expect(field(signed, 'OBR.3')).to.equal('FI-9');
    // OBR-32 (NDL): its name is a CNN in sub-components (ID & family & given).
    const obr = signed.getSegment('OBR');
    expect(JSON.stringify(obr.get('OBR.32'))).to.include('drhouse');
    const raw = buildOru({ ...base, state: 'final', signer: { username: 'drhouse', name: 'House^Gregory^^^MD' } });
    expect(
      raw
        .split('\r')
        .find((l) => l.startsWith('OBR|'))!
        .split('|')[32],
    ).to.equal('drhouse&House&Gregory');
    expect(signed.getSegments('OBX').every((s) => s.get('OBX.11') === 'F')).to.equal(true);
    expect(resultStatus('amended')).to.equal('C');
    const amended = parse(buildOru({ ...base, state: 'amended', signer: { username: 'drhouse', name: 'House^Gregory' } }));
    expect(field(amended, 'OBR.25')).to.equal('C');
    expect(amended.getSegments('OBX').every((s) => s.get('OBX.11') === 'C')).to.equal(true);
  });

  it('orders: ORM^O01 and OMI^O23 read (accession, order numbers, indication, provider); bad ones say why', () => {
    const orm =
      'MSH|^~\\&|RIS|HOSP|RadiantAI||20240101||ORM^O01|C1|P|2.5.1\rPID|1||P1^^^H\rORC|NW|PL1|FI1|||||||||DOC1^Smith^Ann\r' +
      'OBR|1|PL1|FI1|24627-2^CT Chest^LN|||||||||Cough|||||ACC1|||||||||||||Persistent cough \\T\\ fever';
    const o = orderFromMessage(parseMessage(orm), orm);
    expect(o).to.include({
      accessionNumber: 'ACC1',
      placerOrderNumber: 'PL1',
      fillerOrderNumber: 'FI1',
      orderControl: 'NW',
      requestedProcedure: 'CT Chest (24627-2)',
      orderingProvider: 'Ann Smith (DOC1)',
      patientId: 'P1',
      messageType: 'ORM^O01',
    });
    expect(o.clinicalIndication).to.equal('Persistent cough & fever');
    const omi =
      'MSH|^~\\&|RIS|HOSP|X||20240101||OMI^O23|C2|P|2.5.1\rORC|NW|PL2|FI2\rOBR|1|PL2|FI2||||||||||Headache\rIPC|ACC2|RP1|1.2.3|SPS1';
    expect(orderFromMessage(parseMessage(omi), omi)).to.include({ accessionNumber: 'ACC2', clinicalIndication: 'Headache' });
    const adt = 'MSH|^~\\&|RIS|HOSP|X||20240101||ADT^A01|C3|P|2.5.1\rPID|1||P1';
    expect(() => orderFromMessage(parseMessage(adt), adt))
      .to.throw(OrderMessageError)
      .with.property('ack', 'AR');
    const noAcc = 'MSH|^~\\&|RIS|HOSP|X||20240101||ORM^O01|C4|P|2.5.1\rORC|NW\rOBR|1';
    expect(() => orderFromMessage(parseMessage(noAcc), noAcc))
      .to.throw(/no Accession Number/)
      .with.property('ack', 'AE');
  });

  it('ACKs: MSA-1/2 and the reason in MSA-3 and ERR, read by hl7-standard and by the MLLP client', () => {
    const orm = 'MSH|^~\\&|RIS|HOSP|RadiantAI||20240101||ORM^O01|C9|P|2.5.1\rORC|NW';
    const text = buildAck({ aeTitle: 'RADIANT', institutionName: null }, parseMessage(orm), {
      code: 'AE',
      errorCode: '101',
      text: 'no Accession Number',
    });
    const m = parse(text);
    expect(field(m, 'MSA.1')).to.equal('AE');
    expect(field(m, 'MSA.2')).to.equal('C9');
    expect(field(m, 'MSA.3')).to.equal('no Accession Number');
    expect(field(m, 'MSH.5')).to.equal('RIS');
    expect(JSON.stringify(m.get('ERR.3'))).to.include('101');
    expect(parseAck(text)).to.include({ code: 'AE', controlId: 'C9' });
    expect(parseAck(text).text).to.include('no Accession Number');
  });
});
