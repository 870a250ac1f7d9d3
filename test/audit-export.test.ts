/**
 * The audit trail in a standard shape (issue 21, item 5): DICOM PS3.15 A.5 audit messages sent
 * over syslog (RFC 5424; UDP, and TCP with octet counting) to a collector run by the test, and
 * exported by GET /api/audit?format=dicom-xml. The XML is read with a strict parser and checked
 * for the elements A.5.1 requires; the collector being down never holds up the audited request.
 */
import { expect } from 'chai';
import dgram from 'node:dgram';
import net from 'node:net';
import { makeCtSeries } from '../fixtures/generate.js';
import { ingestFiles } from './helpers/api.js';
import { baseUrl, bearer, loginFor, tokenFor } from './helpers/http.js';
import { freePort, startTestNode, type TestNode } from './helpers/node.js';
import { onBothDatabases } from './helpers/postgres.js';
import { until } from './helpers/until.js';
import { childrenNamed, parseXml, type XmlElement } from './helpers/xml-tree.js';

const SYSLOG = /^<85>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) (\S+) radiant (\d+) IHE\+RFC-3881 - \uFEFF([\s\S]*)$/;

/** The XML of an RFC 5424 message, its header checked (PRI authpriv.notice, version 1, ATNA's MSGID). */
function xmlOf(message: string): string {
  const m = SYSLOG.exec(message);
  if (!m) throw new Error(`not an RFC 5424 ATNA message: ${message.slice(0, 120)}`);
  return m[4]!;
}

function code(el: XmlElement | undefined): string | undefined {
  return el?.attrs['csd-code'];
}

/** Checks the structure PS3.15 A.5.1 requires of one AuditMessage; answers it. */
function checkAuditMessage(msg: XmlElement): XmlElement {
  expect(msg.name).to.equal('AuditMessage');
  const names = msg.children.map((c) => c.name);
  // Order: EventIdentification, ActiveParticipant+, AuditSourceIdentification, ParticipantObjectIdentification*.
  expect(names.join(' ')).to.match(
    /^EventIdentification( ActiveParticipant)+ AuditSourceIdentification( ParticipantObjectIdentification)*$/,
  );
  const event = msg.children[0]!;
  expect(event.attrs.EventActionCode).to.be.oneOf(['C', 'R', 'U', 'D', 'E']);
  expect(Number.isNaN(Date.parse(event.attrs.EventDateTime ?? ''))).to.equal(false);
  expect(event.attrs.EventOutcomeIndicator).to.be.oneOf(['0', '4', '8', '12']);
  const id = childrenNamed(event, 'EventID');
  expect(id).to.have.length(1);
  for (const c of [...id, ...childrenNamed(event, 'EventTypeCode')]) {
    expect(c.attrs['csd-code']).to.match(/^\d+$/);
    expect(c.attrs.codeSystemName).to.be.a('string').and.not.empty;
    expect(c.attrs.originalText).to.be.a('string').and.not.empty;
  }
  const participants = childrenNamed(msg, 'ActiveParticipant');
  for (const p of participants) {
    expect(p.attrs.UserID).to.be.a('string').and.not.empty;
    expect(p.attrs.UserIsRequestor).to.be.oneOf(['true', 'false']);
  }
  expect(participants.filter((p) => p.attrs.UserIsRequestor === 'true')).to.have.length(1);
  const source = childrenNamed(msg, 'AuditSourceIdentification')[0]!;
  expect(source.attrs.AuditSourceID).to.equal('RADIANT');
  for (const o of childrenNamed(msg, 'ParticipantObjectIdentification')) {
    expect(o.attrs.ParticipantObjectID).to.be.a('string').and.not.empty;
    expect(o.attrs.ParticipantObjectTypeCode).to.be.oneOf(['1', '2', '3', '4']);
    expect(childrenNamed(o, 'ParticipantObjectIDTypeCode')).to.have.length(1);
  }
  return msg;
}

function eventId(msg: XmlElement): string | undefined {
  return code(childrenNamed(msg.children[0]!, 'EventID')[0]);
}

function requestor(msg: XmlElement): XmlElement {
  return childrenNamed(msg, 'ActiveParticipant').find((p) => p.attrs.UserIsRequestor === 'true')!;
}

function objectIds(msg: XmlElement): string[] {
  return childrenNamed(msg, 'ParticipantObjectIdentification').map((o) => o.attrs.ParticipantObjectID!);
}

const patient = { id: 'ATNA-PID-5521', name: 'Atnafamily^Wendeline', birthDate: '19620814', sex: 'F' as const };

describe('Audit export: DICOM audit messages over syslog (ATNA) and from the API', function () {
  this.timeout(120_000);

  describe('over UDP', () => {
    let node: TestNode;
    let udp: dgram.Socket;
    const received: string[] = [];
    const files = makeCtSeries({ seed: 'atna-udp', patient, studyDate: '20240404', slices: 2, size: 32 });

    before(async () => {
      udp = dgram.createSocket('udp4');
      udp.on('message', (m) => received.push(m.toString('utf8')));
      await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
      node = await startTestNode({ AUDIT_SYSLOG_URL: `udp://127.0.0.1:${udp.address().port}` });
      await ingestFiles(node, files);
    });
    after(async () => {
      await node?.cleanup();
      udp?.close();
    });

    it('sends a User Authentication message for a login (and its failure) and an Instances Accessed one for a study read', async () => {
      const user = await loginFor(node, 'radiologist');
      const bad = await fetch(`${baseUrl(node)}/api/auth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ username: user.username, password: 'not-the-password' }),
      });
      expect(bad.status).to.equal(401);
      const study = files[0]!.studyInstanceUid;
      const read = await fetch(`${baseUrl(node)}/dicom-web/studies/${study}/metadata`, { headers: bearer(user.token) });
      expect(read.status).to.equal(200);

      const messages = () => received.map((m) => checkAuditMessage(parseXml(xmlOf(m))));
      const access = await until('study access message', async () =>
        messages().find((m) => eventId(m) === '110103' && objectIds(m).includes(study)),
      );
      const logins = messages().filter((m) => eventId(m) === '110114' && requestor(m).attrs.UserID === user.username);
      expect(logins.map((m) => m.children[0]!.attrs.EventOutcomeIndicator).sort()).to.deep.equal(['0', '4']);
      expect(code(childrenNamed(logins[0]!.children[0]!, 'EventTypeCode')[0])).to.equal('110122');
      expect(requestor(logins[0]!).attrs.NetworkAccessPointID).to.equal('127.0.0.1');

      expect(access.children[0]!.attrs).to.include({ EventActionCode: 'R', EventOutcomeIndicator: '0' });
      expect(requestor(access).attrs.UserID).to.equal(user.username);
      expect(objectIds(access)).to.include(patient.id);
      // Identifiers only: no patient name, no birth date.
      const all = received.join('\n');
      expect(all).to.not.include('Atnafamily').and.not.include('Wendeline').and.not.include(patient.birthDate);
    });

    it('exports the trail as an <AuditMessages> document: GET /api/audit?format=dicom-xml', async () => {
      const admin = await tokenFor(node, 'admin');
      const res = await fetch(`${baseUrl(node)}/api/audit?format=dicom-xml&limit=500`, { headers: bearer(admin) });
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.match(/^application\/xml/);
      const doc = parseXml(await res.text());
      expect(doc.name).to.equal('AuditMessages');
      expect(doc.children.length).to.equal(Number(res.headers.get('x-total-count')));
      for (const m of doc.children) checkAuditMessage(m);
      expect(doc.children.map(eventId)).to.include.members(['110114', '110103']);
      const forbidden = await fetch(`${baseUrl(node)}/api/audit?format=dicom-xml`, {
        headers: bearer(await tokenFor(node, 'radiologist')),
      });
      expect(forbidden.status).to.equal(403);
    });
  });

  onBothDatabases((dbName, dbEnv) =>
    describe(`over TCP, collector down at first, across a restart (${dbName})`, () => {
      let node: TestNode | undefined;
      let server: net.Server | undefined;

      after(async () => {
        await node?.cleanup();
        server?.close();
      });

      it('answers logins at once; what was not delivered before the restart is delivered after it (octet-counted frames)', async () => {
        const port = await freePort();
        const env = { AUDIT_SYSLOG_URL: `tcp://127.0.0.1:${port}`, ...(await dbEnv()) };
        node = await startTestNode(env);
        const started = Date.now();
        const before = await loginFor(node, 'radiologist');
        expect(Date.now() - started).to.be.lessThan(5000);
        // Stopped with the collector still down: the row waits behind the cursor.
        await node.stop();
        node = await startTestNode({ ...env, DATA_DIR: node.dir });
        const afterRestart = await loginFor(node, 'radiologist');

        let buffer = Buffer.alloc(0);
        const frames: string[] = [];
        server = net.createServer((socket) =>
          socket.on('data', (chunk: Buffer) => {
            buffer = Buffer.concat([buffer, chunk]);
            for (;;) {
              const sp = buffer.indexOf(0x20);
              if (sp < 0) break;
              const len = Number(buffer.subarray(0, sp).toString('ascii'));
              if (!Number.isInteger(len) || len <= 0) throw new Error(`bad frame length ${buffer.subarray(0, sp).toString()}`);
              if (buffer.length < sp + 1 + len) break;
              frames.push(buffer.subarray(sp + 1, sp + 1 + len).toString('utf8'));
              buffer = buffer.subarray(sp + 1 + len);
            }
          }),
        );
        await new Promise<void>((r) => server!.listen(port, '127.0.0.1', r));
        const logins = () =>
          frames
            .map((f) => checkAuditMessage(parseXml(xmlOf(f))))
            .filter((m) => eventId(m) === '110114' && m.children[0]!.attrs.EventOutcomeIndicator === '0')
            .map((m) => requestor(m).attrs.UserID);
        await until(
          'both logins delivered',
          async () => logins().includes(afterRestart.username) && logins().includes(before.username),
          60_000,
        );
        expect(logins().indexOf(before.username)).to.be.lessThan(logins().indexOf(afterRestart.username));
      });
    }),
  );
});
