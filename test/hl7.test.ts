import { expect } from 'chai';
import fsp from 'node:fs/promises';
import net from 'node:net';
import { makeCtSeries, writeSeries } from '../fixtures/generate.js';
import { apiClient, auditRows } from './helpers/api.js';
import { storescu } from './helpers/dcmtk.js';
import { noduleAnswer, autoAnalysisEnv } from './helpers/ai-results.js';
import { fakeEndpoint, okReply } from './helpers/fake-openai.js';
import { field, mllpExchange, startRisPeer, type ReceivedHl7, type RisPeer } from './helpers/hl7.js';
import { loginFor, tokenFor } from './helpers/http.js';
import { startTestNode, tempDir, type TestNode } from './helpers/node.js';
import { onBothDatabases } from './helpers/postgres.js';
import { until } from './helpers/until.js';

/**
 * Issue 19, HL7 v2: a RIS stand-in (an MLLP listener reading with hl7-standard, an independent
 * parser) receives and ACKs the ORU^R01 of a report: P for the AI draft (trigger on), F when a
 * radiologist signs, C when amended; the RIS down → the delivery is retried and arrives when it
 * is back; an AR → the dead letter in the delivery log, retried by the API. The node's own MLLP
 * listener takes an ORM^O01 (AA) whose clinical indication reaches the model's request for the
 * study with that Accession Number, answers a malformed message AE and keeps serving. On SQLite
 * and on PostgreSQL.
 */

const ACCESSION = 'HL7ACC1';
const INDICATION = 'Persistent cough for three weeks';

const ORM = [
  'MSH|^~\\&|HOSPRIS|HOSP|RadiantAI|RAD|20240301090000||ORM^O01^ORM_O01|ORD0001|P|2.5.1',
  'PID|1||HL7PAT^^^HOSP||Test^Patient',
  'ORC|NW|PLACER-77|FILLER-88|||||||||1234^Smith^Ann',
  `OBR|1|PLACER-77|FILLER-88|24627-2^CT Chest^LN||||||||||||||${ACCESSION}|||||||||||||${INDICATION}`,
].join('\r');

interface DeliveryView {
  id: number;
  status: string;
  dead_letter: boolean;
  attempts: number;
  report_id: number;
  report_version: number;
  response_code: string | null;
  error: string | null;
  message: string | null;
}

onBothDatabases((db, dbEnv) =>
  describe(`HL7 v2 (issue 19, ${db}): ORU^R01 to a RIS over MLLP, orders in over the listener`, function () {
    this.timeout(300_000);
    let node: TestNode;
    let ris: RisPeer;
    const requests: string[] = [];
    let fake: Awaited<ReturnType<typeof fakeEndpoint>>;
    const work: string[] = [];
    let admin: ReturnType<typeof apiClient>;
    let integrationId = 0;
    let reportId = 0;

    const orus = (): ReceivedHl7[] => ris.received.filter((r) => field(r.msg, 'MSH.11') === 'P' && r.raw.includes('ORU^R01'));
    const deliveries = async (status?: string) =>
      (await admin.get<{ items: DeliveryView[] }>(`/api/integrations/${integrationId}/deliveries${status ? `?status=${status}` : ''}`)).body
        .items;

    before(async () => {
      fake = await fakeEndpoint((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          requests.push(Buffer.concat(chunks).toString('utf8'));
          res.setHeader('content-type', 'application/json');
          res.end(okReply(JSON.stringify(noduleAnswer([80, 80, 180, 180]))));
        });
      });
      ris = await startRisPeer();
      node = await startTestNode({
        ...(await dbEnv()),
        ...autoAnalysisEnv(fake.url),
        FORWARD_POLL_MS: '100',
        HL7_LISTEN_PORT: '0',
        HL7_RETRY_BASE_MS: '300',
        HL7_MAX_ATTEMPTS: '6',
      });
      admin = apiClient(node, await tokenFor(node, 'admin'));
    });

    after(async () => {
      await node?.cleanup();
      await ris?.stop();
      await fake?.close();
      for (const d of work) await fsp.rm(d, { recursive: true, force: true });
    });

    it('registers the RIS (admin API, audited), its test message is ACKed AA; a viewer may not touch integrations', async () => {
      const created = await admin.post<{ id: number; triggers: string[] }>('/api/integrations', {
        kind: 'hl7-mllp',
        name: 'Main RIS',
        host: '127.0.0.1',
        port: ris.port,
        receiving_application: 'TESTRIS',
        receiving_facility: 'HOSP',
        triggers: ['sign', 'draft'],
        timeout_ms: 2000,
      });
      expect(created.status, JSON.stringify(created.body)).to.equal(201);
      integrationId = created.body.id;
      expect(created.body.triggers).to.deep.equal(['sign', 'draft']);
      const bad = await admin.post('/api/integrations', { kind: 'hl7-mllp', name: 'x', host: 'bad host!', port: 1 });
      expect(bad.status).to.equal(400);
      const fhir = await admin.post<Record<string, unknown>>('/api/integrations', {
        kind: 'fhir',
        name: 'EHR',
        base_url: 'http://127.0.0.1:9/fhir',
        bearer_token: 'secret-token',
      });
      expect(fhir.status).to.equal(201);
      expect(fhir.body).to.include({ bearer_token_set: true });
      expect(JSON.stringify((await admin.get('/api/integrations')).body)).to.not.include('secret-token');
      expect((await admin.del(`/api/integrations/${fhir.body.id}`)).status).to.equal(204);

      const test = await admin.post<{ ok: boolean; code: string }>(`/api/integrations/${integrationId}/test`, {});
      expect(test.body).to.include({ ok: true, code: 'AA' });
      const probe = ris.received.at(-1)!;
      expect(field(probe.msg, 'MSH.11')).to.equal('D');
      expect(field(probe.msg, 'MSH.5')).to.equal('TESTRIS');

      const viewer = apiClient(node, await tokenFor(node, 'viewer'));
      expect((await viewer.get('/api/integrations')).status).to.equal(403);
      const rows = await auditRows(node, 'integration.create');
      expect(rows.length).to.be.greaterThan(0);
    });

    it('the listener ACKs an ORM^O01 AA, a malformed message AE with the reason, and keeps serving on the connection', async () => {
      const socket = net.connect(node.hl7Port!, '127.0.0.1');
      await new Promise((r) => socket.once('connect', r));
      const ack1 = await mllpExchange(node.hl7Port!, ORM, socket);
      expect(ack1).to.match(/\rMSA\|AA\|ORD0001/);
      const bad = await mllpExchange(node.hl7Port!, 'this is not HL7', socket);
      expect(bad).to.match(/\rMSA\|AE\|/);
      expect(bad).to.include('not an HL7 message');
      const noAcc = await mllpExchange(node.hl7Port!, 'MSH|^~\\&|HOSPRIS|HOSP|||20240301||ORM^O01|ORD0002|P|2.5.1\rORC|NW\rOBR|1', socket);
      expect(noAcc).to.match(/\rMSA\|AE\|ORD0002\|no Accession Number/);
      const adt = await mllpExchange(node.hl7Port!, 'MSH|^~\\&|HOSPRIS|HOSP|||20240301||ADT^A01|ORD0003|P|2.5.1\rPID|1', socket);
      expect(adt).to.match(/\rMSA\|AR\|ORD0003\|unsupported message type/);
      // Still serving, on the same connection and on a new one.
      expect(await mllpExchange(node.hl7Port!, ORM.replace('ORD0001', 'ORD0004'), socket)).to.match(/\rMSA\|AA\|ORD0004/);
      socket.end();
      expect(await mllpExchange(node.hl7Port!, ORM.replace('ORD0001', 'ORD0005'))).to.match(/\rMSA\|AA\|ORD0005/);
      const audited = await auditRows(node, 'hl7.order.received');
      expect(audited.map((r) => r.outcome))
        .to.include('success')
        .and.include('failure');
    });

    it('a pushed study is analysed with the order’s indication, and the RIS gets the draft ORU (P) linked to the order', async () => {
      const files = makeCtSeries({ seed: 'hl7-ct', slices: 6, size: 64, accessionNumber: ACCESSION, bodyPartExamined: 'CHEST' });
      const dir = await tempDir('hl7-push');
      work.push(dir);
      const sent = await storescu(node.dicomPort, await writeSeries(dir, files));
      expect(sent.code, sent.stderr).to.equal(0);
      const draft = await until('draft ORU at the RIS', async () => orus()[0], 120_000, 100);
      // The model was asked with the order's indication (not the study description).
      expect(requests.some((b) => b.includes(INDICATION))).to.equal(true);
      const m = draft.msg;
      expect(field(m, 'MSH.9')).to.include('ORU').and.include('R01');
      expect(field(m, 'MSH.12')).to.equal('2.5.1');
      expect(field(m, 'OBR.2')).to.equal('PLACER-77');
      expect(field(m, 'OBR.3')).to.equal('FILLER-88');
      expect(field(m, 'OBR.4.1')).to.equal('24627-2');
      expect(field(m, 'OBR.25')).to.equal('P');
      const obx = m.getSegments('OBX');
      expect(obx.every((s) => s.get('OBX.11') === 'P')).to.equal(true);
      expect(obx.map((s) => s.get('OBX.5'))).to.include('Possible small nodule in the right upper lobe.');
      expect(obx.map((s) => s.get('OBX.5'))).to.include('Small rounded opacity, possibly a nodule.');
      expect(field(m, 'NTE.3')).to.match(/AI-generated draft/);
      const list = await deliveries();
      expect(list[0]).to.include({ status: 'delivered', response_code: 'AA', attempts: 1 });
      expect(list[0]!.message).to.equal(draft.raw);
      reportId = list[0]!.report_id;
    });

    it('signed: the RIS gets the final ORU (F, interpreter); RIS down on amend → retried, delivered (C) once it is back', async () => {
      const login = await loginFor(node, 'radiologist');
      const rad = apiClient(node, login.token);
      // Signing is confirmed with the signer's password (re-authentication).
      const signed = await rad.post(`/api/reports/${reportId}/sign`, { password: login.password });
      expect(signed.status, JSON.stringify(signed.body)).to.be.oneOf([200, 202]);
      const final = await until('final ORU', async () => orus().find((r) => field(r.msg, 'OBR.25') === 'F'), 60_000, 100);
      expect(final.msg.getSegments('OBX').every((s) => s.get('OBX.11') === 'F')).to.equal(true);
      expect(JSON.stringify(final.msg.get('OBR.32'))).to.match(/radiologist-/);

      await ris.stop();
      const amended = await rad.post(`/api/reports/${reportId}/amend`, { reason: 'laterality checked' });
      expect(amended.status, JSON.stringify(amended.body)).to.be.oneOf([200, 202]);
      const waiting = await until(
        'a failed attempt while the RIS is down',
        async () => (await deliveries()).find((d) => d.status === 'queued' && d.attempts >= 2),
        60_000,
        100,
      );
      expect(waiting.error).to.match(/connection failed|no ACK/);
      await ris.restart();
      const corrected = await until('corrected ORU', async () => orus().find((r) => field(r.msg, 'OBR.25') === 'C'), 60_000, 100);
      expect(corrected.msg.getSegments('OBX').every((s) => s.get('OBX.11') === 'C')).to.equal(true);
      const done = await until(
        'delivered after retries',
        async () => (await deliveries()).find((d) => d.id === waiting.id && d.status === 'delivered'),
        30_000,
        100,
      );
      expect(done.attempts).to.be.greaterThan(2);
    });

    it('AR: the dead letter at once (not retried), shown in the delivery log; retried through the API it is delivered', async () => {
      ris.answer = () => ({ code: 'AR', text: 'unknown order' });
      const rad = apiClient(node, await tokenFor(node, 'radiologist'));
      const before = ris.received.length;
      expect((await rad.post(`/api/reports/${reportId}/amend`, { reason: 'second amendment' })).status).to.be.oneOf([200, 202]);
      const dead = await until('dead letter', async () => (await deliveries('failed'))[0], 30_000, 100);
      expect(dead).to.include({ dead_letter: true, response_code: 'AR', attempts: 1 });
      expect(dead.error).to.include('unknown order');
      expect(ris.received.length - before).to.equal(1);
      ris.answer = () => ({ code: 'AA' });
      const retried = await admin.post<DeliveryView>(`/api/integrations/${integrationId}/deliveries/${dead.id}/retry`, {});
      expect(retried.status).to.equal(200);
      expect(retried.body.status).to.equal('queued');
      const ok = await until(
        'dead letter delivered',
        async () => (await deliveries()).find((d) => d.id === dead.id && d.status === 'delivered'),
        30_000,
        100,
      );
      expect(ok).to.include({ response_code: 'AA', attempts: 2 });
      expect((await admin.post(`/api/integrations/${integrationId}/deliveries/${dead.id}/retry`, {})).status).to.equal(409);
    });
  }),
);
