import { expect } from 'chai';
import type { AuditRow } from '../../src/audit/audit.js';
import { auditMessageXml, eventOf } from '../../src/audit/dicom-audit.js';
import { parseSyslogUrl, syslogMessage } from '../../src/audit/syslog.js';

const row = (over: Partial<AuditRow>): AuditRow => ({
  id: 1,
  at: '2026-01-02T03:04:05.000Z',
  actorType: 'user',
  actor: 'alice',
  peer: '10.1.2.3:51234',
  action: 'dicomweb.retrieve',
  outcome: 'success',
  details: null,
  ...over,
});

describe('DICOM audit messages (PS3.15 A.5) from audit rows', () => {
  it("maps the node's actions to CID 400 event IDs and action codes", () => {
    const cases: Array<[string, string, string]> = [
      ['auth.login', '110114', 'E'],
      ['dicomweb.stow', '110107', 'C'],
      ['dimse.association', '110107', 'C'],
      ['dicomweb.qido', '110112', 'E'],
      ['dimse.find', '110112', 'E'],
      ['dicomweb.retrieve', '110103', 'R'],
      ['wado.uri', '110103', 'R'],
      ['dimse.move', '110104', 'R'],
      ['dicomweb.delete', '110105', 'D'],
      ['patient.update', '110110', 'U'],
      ['patient.create', '110110', 'C'],
      ['report.sign', '110111', 'U'],
      ['report.decisions.export', '110106', 'R'],
      ['audit.read', '110101', 'R'],
      ['dimse.association-rejected', '110113', 'E'],
      ['something.new', '110100', 'E'],
    ];
    for (const [action, id, code] of cases) expect([eventOf(action).id.code, eventOf(action).action], action).to.deep.equal([id, code]);
  });

  it('names the requestor with its address, the node as the other participant, the study and patient as objects; escapes markup', () => {
    const xml = auditMessageXml(row({ actor: 'a<b>&"c', studyInstanceUid: '1.2.3', patientId: 'P&1', status: 503, outcome: 'failure' }), {
      sourceId: 'RADIANT',
      siteId: 'St. Elsewhere',
    });
    expect(xml).to.match(
      /^<AuditMessage><EventIdentification EventActionCode="R" EventDateTime="2026-01-02T03:04:05.000Z" EventOutcomeIndicator="8">/,
    );
    expect(xml).to.include(
      '<ActiveParticipant UserID="a&lt;b&gt;&amp;&quot;c" UserIsRequestor="true" NetworkAccessPointID="10.1.2.3" NetworkAccessPointTypeCode="2">',
    );
    expect(xml).to.include('<AuditSourceIdentification AuditEnterpriseSiteID="St. Elsewhere" AuditSourceID="RADIANT">');
    expect(xml).to.include('ParticipantObjectID="1.2.3" ParticipantObjectTypeCode="2" ParticipantObjectTypeCodeRole="3"');
    expect(xml).to.include('ParticipantObjectID="P&amp;1" ParticipantObjectTypeCode="1" ParticipantObjectTypeCodeRole="1"');
    expect(xml).to.include('<EventOutcomeDescription>dicomweb.retrieve: failed (503)</EventOutcomeDescription>');
  });

  it('frames RFC 5424 (authpriv.notice, ATNA MSGID, BOM) and reads udp/tcp/tls URLs', () => {
    expect(syslogMessage('<x/>', new Date('2026-01-02T03:04:05Z'))).to.match(
      /^<85>1 2026-01-02T03:04:05\.000Z \S+ radiant \d+ IHE\+RFC-3881 - \uFEFF<x\/>$/,
    );
    expect(parseSyslogUrl('udp://collector')).to.deep.equal({ protocol: 'udp', host: 'collector', port: 514 });
    expect(parseSyslogUrl('tls://10.0.0.5')).to.deep.equal({ protocol: 'tls', host: '10.0.0.5', port: 6514 });
    expect(parseSyslogUrl('tcp://h:1601')).to.deep.equal({ protocol: 'tcp', host: 'h', port: 1601 });
    expect(() => parseSyslogUrl('http://h:1')).to.throw(/udp, tcp or tls/);
  });
});
