import { expect } from 'chai';
import { negotiateDicomModel } from '../../dicomweb/dicom-model.js';
import { parseRenderParams } from '../../dicomweb/rendered.js';
import { toNativeXml } from '../../src/dicom/native-xml.js';
import { externalAddress, parseForwarded } from '../../src/http/external-url.js';

describe('unit: DICOMweb protocol helpers', () => {
  const direct = { protocol: 'http', host: 'node:8042' };

  it('external address: the request own unless the proxy is trusted; Forwarded before X-Forwarded-*', () => {
    const headers = { forwarded: 'for=1.2.3.4;proto=https;host=pacs.example.org', 'x-forwarded-prefix': '/r/' };
    expect(externalAddress(headers, direct, false)).to.deep.equal({ base: 'http://node:8042', prefix: '' });
    expect(externalAddress(headers, direct, true)).to.deep.equal({ base: 'https://pacs.example.org/r', prefix: '/r' });
    const x = { 'x-forwarded-proto': 'https, http', 'x-forwarded-host': 'a.example:444' };
    expect(externalAddress(x, direct, true).base).to.equal('https://a.example:444');
    expect(externalAddress({ 'x-forwarded-host': 'a b', 'x-forwarded-proto': 'gopher' }, direct, true).base).to.equal('http://node:8042');
    expect(parseForwarded('for="[2001:db8::1]";host="h.example", proto=http')).to.deep.equal({ host: 'h.example' });
  });

  it('DICOM model negotiation: JSON by default, XML as multipart/related or bare, else undefined', () => {
    expect(negotiateDicomModel(undefined)).to.equal('application/dicom+json');
    expect(negotiateDicomModel('application/json')).to.equal('application/json');
    expect(negotiateDicomModel('multipart/related; type="application/dicom+xml"')).to.equal('application/dicom+xml');
    expect(negotiateDicomModel('application/dicom+xml;q=0.5, application/dicom+json')).to.equal('application/dicom+json');
    expect(negotiateDicomModel('text/html')).to.equal(undefined);
  });

  it('Native DICOM Model: values numbered, PN components, sequences, bulk data, private creator, escaping', () => {
    const xml = toNativeXml({
      '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Doe^John^^Dr' }] },
      '00080008': { vr: 'CS', Value: ['ORIGINAL', null, 'AXIAL'] },
      '00081030': { vr: 'LO', Value: ['A<B & "C"'] },
      '00081140': { vr: 'SQ', Value: [{ '00081155': { vr: 'UI', Value: ['1.2.3'] } }] },
      '00091001': { vr: 'LO', Value: ['x'] },
      '00090010': { vr: 'LO', Value: ['ACME'] },
      '7FE00010': { vr: 'OW', BulkDataURI: 'http://h/bulkdata/7FE00010' },
      '00200013': { vr: 'IS' },
    });
    expect(xml).to.contain('<NativeDicomModel xmlns="http://dicom.nema.org/PS3.19/models/NativeDICOM" xml:space="preserve">');
    expect(xml).to.contain(
      '<PersonName number="1"><Alphabetic><FamilyName>Doe</FamilyName><GivenName>John</GivenName><NamePrefix>Dr</NamePrefix></Alphabetic></PersonName>',
    );
    expect(xml).to.contain('<Value number="1">ORIGINAL</Value><Value number="2"/><Value number="3">AXIAL</Value>');
    expect(xml).to.contain('A&lt;B &amp; &quot;C&quot;');
    expect(xml).to.contain('<Item number="1"><DicomAttribute tag="00081155" vr="UI" keyword="ReferencedSOPInstanceUID">');
    expect(xml).to.contain('<DicomAttribute tag="00090001" vr="LO" privateCreator="ACME"><Value number="1">x</Value>');
    expect(xml).to.contain('<BulkData uri="http://h/bulkdata/7FE00010"/>');
    expect(xml).to.contain('<DicomAttribute tag="00200013" vr="IS" keyword="InstanceNumber"></DicomAttribute>');
  });

  it('rendered window: linear (default), linear-exact, sigmoid; anything else is 400', () => {
    expect(parseRenderParams({ window: '40,400' }).window).to.deep.equal({ center: 40, width: 400, fn: 'LINEAR' });
    expect(parseRenderParams({ window: '40,400,linear-exact' }).window?.fn).to.equal('LINEAR_EXACT');
    expect(parseRenderParams({ window: '40,400,SIGMOID' }).window?.fn).to.equal('SIGMOID');
    expect(() => parseRenderParams({ window: '40,400,cubic' })).to.throw(/linear-exact/);
  });
});
