import { expect } from 'chai';
import fsp from 'node:fs/promises';
import { makeCtSeries, writeSeries } from '../fixtures/generate.js';
import { apiClient, auditRows, type ApiClient } from './helpers/api.js';
import { answeringEndpoint, noduleAnswer, autoAnalysisEnv } from './helpers/ai-results.js';
import { storescu } from './helpers/dcmtk.js';
import { fhirSchemaErrors, startFhirServer, warmFhirValidator, type FhirStandIn } from './helpers/fhir.js';
import { baseUrl, loginFor, tokenFor } from './helpers/http.js';
import { freePort, startTestNode, tempDir, type TestNode } from './helpers/node.js';
import { onBothDatabases } from './helpers/postgres.js';
import { until } from './helpers/until.js';

/**
 * FHIR R4 (issue 19, items 2 and 4), on SQLite and on PostgreSQL: the EHR's FHIR server is an
 * integration of the registry (POST /api/integrations, kind fhir; its test button reads
 * [base]/metadata). A study pushed by storescu is analysed (a stand-in model endpoint), its draft
 * auto-published and later signed by a radiologist. The stand-in FHIR server is down at first:
 * the draft's delivery (a fhir.push job) fails, is retried and delivered once it is up
 * (preliminary), and the signature pushes again (final); every push is a row of the delivery log
 * with the Bundle sent and the server's answer. A 4xx is the dead letter at once; retried through
 * the API it is delivered. The node's own /fhir reads and searches answer resources that validate
 * against the official R4 JSON schema.
 */

interface DeliveryView {
  id: number;
  status: string;
  dead_letter: boolean;
  attempts: number;
  job_id: number;
  report_id: number;
  report_version: number;
  trigger: string;
  message_id: string | null;
  message: string | null;
  response_code: string | null;
  response: string | null;
  error: string | null;
}

const FHIR = 'application/fhir+json';
const NODULE = noduleAnswer([80, 80, 180, 180]);
const SECOND = {
  ...NODULE.findings[0]!,
  description: 'Minimal pleural thickening.',
  anatomical_location: 'left lower lobe',
  laterality: 'left',
};
const ANSWER = { ...NODULE, findings: [NODULE.findings[0]!, SECOND] };

onBothDatabases((db, dbEnv) =>
  describe(`FHIR R4 (${db}): reads under /fhir and push to a FHIR server (an integration) on publish and sign`, function () {
    this.timeout(300_000);
    let model: Awaited<ReturnType<typeof answeringEndpoint>>;
    let ehr: FhirStandIn | undefined;
    let node: TestNode;
    let viewer: ApiClient;
    let fhirPort = 0;
    let study = '';
    let reportId = 0;
    let admin: ApiClient;
    let integrationId = 0;
    const work: string[] = [];
    const deliveries = async (status?: string) => {
      const res = await admin.get<{ items: DeliveryView[] }>(
        `/api/integrations/${integrationId}/deliveries${status ? `?status=${status}` : ''}`,
      );
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      return res.body.items;
    };

    const fhir = async (path: string, token: string | null, accept = FHIR) => {
      const res = await fetch(`${baseUrl(node)}/fhir${path}`, {
        headers: { accept, ...(token ? { authorization: `Bearer ${token}` } : {}) },
      });
      return { status: res.status, type: res.headers.get('content-type') ?? '', body: (await res.json()) as any };
    };
    let token = '';
    const valid = (r: { resourceType?: string }) => expect(fhirSchemaErrors(r), `${r.resourceType} validates against R4`).to.deep.equal([]);

    before(async () => {
      warmFhirValidator();
      model = await answeringEndpoint(ANSWER);
      fhirPort = await freePort();
      node = await startTestNode({
        ...(await dbEnv()),
        ...autoAnalysisEnv(model.url),
        FORWARD_POLL_MS: '100',
        INSTITUTION_NAME: 'Test Hospital',
        FHIR_PUSH_RETRY_BASE_MS: '500',
      });
      token = await tokenFor(node, 'viewer');
      viewer = apiClient(node, token);
      admin = apiClient(node, await tokenFor(node, 'admin'));
    });

    after(async () => {
      await ehr?.close();
      await node?.cleanup();
      await model?.close();
      for (const d of work) await fsp.rm(d, { recursive: true, force: true });
    });

    it('the FHIR server is configured through POST /api/integrations; its test button reads [base]/metadata', async () => {
      const created = await admin.post<{ id: number; kind: string; triggers: string[]; bearer_token_set: boolean }>('/api/integrations', {
        kind: 'fhir',
        name: 'EHR',
        base_url: `http://127.0.0.1:${fhirPort}/fhir`,
        bearer_token: 'ehr-secret-token',
        triggers: ['draft', 'sign'],
        timeout_ms: 5000,
      });
      expect(created.status, JSON.stringify(created.body)).to.equal(201);
      expect(created.body).to.include({ kind: 'fhir', bearer_token_set: true });
      integrationId = created.body.id;
      // Nothing listens yet: the test button says so, with no status.
      const down = await admin.post<{ ok: boolean; code: string | null; detail: string }>(`/api/integrations/${integrationId}/test`, {});
      expect(down.status).to.equal(200);
      expect(down.body).to.include({ ok: false, code: null });
      expect(down.body.detail).to.be.a('string').and.not.equal('');
      const probe = await startFhirServer(0);
      try {
        const moved = await admin.put(`/api/integrations/${integrationId}`, { base_url: probe.url });
        expect(moved.status, JSON.stringify(moved.body)).to.equal(200);
        const up = await admin.post<{ ok: boolean; code: string; detail: string }>(`/api/integrations/${integrationId}/test`, {});
        expect(up.body).to.include({ ok: true, code: '200', detail: 'Stand-in FHIR server' });
        expect(probe.metadataRequests).to.deep.equal([{ authorization: 'Bearer ehr-secret-token' }]);
      } finally {
        await probe.close();
      }
      const back = await admin.put(`/api/integrations/${integrationId}`, { base_url: `http://127.0.0.1:${fhirPort}/fhir` });
      expect(back.status).to.equal(200);
      const tested = await auditRows(node, 'integration.test');
      expect(tested.length).to.equal(2);
    });

    it('the draft push fails while the FHIR server is down, is retried, and arrives (preliminary) once it is up', async () => {
      const files = makeCtSeries({ seed: `fhir-push-${db}`, slices: 8, size: 96 });
      study = files[0]!.studyInstanceUid;
      const dir = await tempDir('fhir-push');
      work.push(dir);
      const sent = await storescu(node.dicomPort, await writeSeries(dir, files));
      expect(sent.code, sent.stderr).to.equal(0);
      // Nothing listens yet: the delivery's first attempt fails and waits for its retry.
      const waiting = await until('a failed push attempt in the delivery log', async () =>
        (await deliveries()).find((d) => d.attempts >= 1 && d.error),
      );
      expect(waiting).to.include({ status: 'queued', dead_letter: false, trigger: 'draft', response_code: null, report_version: 1 });
      expect(waiting.error).to.match(/not reached/);
      const job = (await node.queue.list({ kind: 'fhir.push' })).find((j) => j.id === waiting.job_id)!;
      expect(job.payload).to.deep.equal({ deliveryId: waiting.id });
      ehr = await startFhirServer(fhirPort);
      const push = await until('the draft at the FHIR server', async () => ehr!.received[0]);
      expect(push.method).to.equal('POST');
      expect(push.authorization).to.equal('Bearer ehr-secret-token');
      expect(push.contentType).to.match(/^application\/fhir\+json/);
      expect(push.errors, 'pushed Bundle validates against R4').to.deep.equal([]);
      expect(push.bundle.type).to.equal('transaction');
      const types = push.bundle.entry!.map((e) => e.resource!.resourceType);
      expect(types).to.deep.equal(['Patient', 'ImagingStudy', 'Device', 'Observation', 'Observation', 'DiagnosticReport']);
      for (const e of push.bundle.entry!) {
        expect(e.request!.method).to.equal('PUT');
        expect(e.request!.url).to.match(/^[A-Za-z]+\?identifier=/);
        expect(e.fullUrl).to.match(/^urn:uuid:/);
      }
      const dr = push.bundle.entry!.at(-1)!.resource as fhir4.DiagnosticReport;
      expect(dr.status).to.equal('preliminary');
      expect(dr.conclusion).to.equal(ANSWER.impression);
      const pdf = dr.presentedForm!.find((a) => a.contentType === 'application/pdf')!;
      expect(Buffer.from(pdf.data!, 'base64').subarray(0, 5).toString()).to.equal('%PDF-');
      expect(dr.subject!.reference).to.equal(push.bundle.entry![0]!.fullUrl);
      const obs = push.bundle.entry![3]!.resource as fhir4.Observation;
      expect(obs).to.include({ status: 'preliminary', valueString: ANSWER.findings[0]!.description });
      expect(obs.device!.reference).to.equal(push.bundle.entry![2]!.fullUrl);
      // The delivery log: the Bundle as sent, the server's answer and its status.
      const done = await until('the delivery delivered', async () =>
        (await deliveries()).find((d) => d.id === waiting.id && d.status === 'delivered'),
      );
      expect(done.attempts).to.be.greaterThan(1);
      expect(done.response_code).to.equal('200');
      expect(JSON.parse(done.message!)).to.deep.equal(push.bundle);
      expect(done.message_id).to.equal(push.bundle.identifier!.value);
      expect((JSON.parse(done.response!) as fhir4.Bundle).type).to.equal('transaction-response');
      const finished = await until('the push job done', async () =>
        (await node.queue.list({ kind: 'fhir.push' })).find((j) => j.id === job.id && j.status !== 'running' && j.status !== 'pending'),
      );
      expect(finished.status).to.equal('succeeded');
      expect((finished.result as { status: number }).status).to.equal(200);
      reportId = done.report_id;
      const list = await viewer.get<{ items: Array<{ id: number; trigger: string }> }>(`/api/studies/${study}/analyses`);
      const a = (await viewer.get(`/api/analysis/${list.body.items[0]!.id}`)).body as { auto_publish: { report_id: number } };
      expect(a.auto_publish.report_id).to.equal(reportId);
    });

    it('signing pushes the report again: final, with the radiologist as results interpreter', async () => {
      const login = await loginFor(node, 'radiologist');
      const rad = apiClient(node, login.token);
      // Signing is confirmed with the signer's password (re-authentication).
      const signed = await rad.post(`/api/reports/${reportId}/sign`, { password: login.password });
      expect(signed.status, JSON.stringify(signed.body)).to.equal(200);
      const push = await until('the signed report at the FHIR server', async () => ehr!.received[1]);
      expect(push.errors).to.deep.equal([]);
      const dr = push.bundle.entry!.at(-1)!.resource as fhir4.DiagnosticReport;
      expect(dr.status).to.equal('final');
      expect(dr.resultsInterpreter).to.have.length(1);
      // The same report, updated: the same conditional URL as the draft's.
      expect(push.bundle.entry!.at(-1)!.request!.url).to.equal(ehr!.received[0]!.bundle.entry!.at(-1)!.request!.url);
      const obs = push.bundle.entry!.find((e) => e.resource!.resourceType === 'Observation')!.resource as fhir4.Observation;
      expect(obs.status).to.equal('final');
      const signedDelivery = await until('the signed version delivered', async () =>
        (await deliveries()).find((d) => d.report_version === 2 && d.status === 'delivered'),
      );
      expect(signedDelivery).to.include({ trigger: 'sign', attempts: 1, response_code: '200' });
      expect(await deliveries()).to.have.length(2);
      const rows = await until('two successful delivery audit rows', async () => {
        const r = (await auditRows(node, 'integration.delivery')).filter((x) => x.outcome === 'success');
        return r.length >= 2 && r;
      });
      expect(rows).to.have.length(2);
      expect(rows.every((r) => r.resource_id === String(integrationId))).to.equal(true);
    });

    it('reads: CapabilityStatement, DiagnosticReport, Observation, Device, ImagingStudy, Patient validate against R4', async () => {
      const meta = await fhir('/metadata', null);
      expect(meta.status).to.equal(200);
      expect(meta.type).to.match(/^application\/fhir\+json/);
      valid(meta.body);
      expect(meta.body.rest[0].resource.map((r: { type: string }) => r.type)).to.include.members([
        'Patient',
        'ImagingStudy',
        'DiagnosticReport',
      ]);

      const dr = await fhir(`/DiagnosticReport/${reportId}`, token);
      expect(dr.status).to.equal(200);
      valid(dr.body);
      expect(dr.body).to.include({ status: 'final', conclusion: ANSWER.impression });
      expect(dr.body.code.coding[0]).to.include({ system: 'http://loinc.org' });
      expect(dr.body.imagingStudy[0].reference).to.equal(`ImagingStudy/${study}`);
      expect(dr.body.presentedForm.map((a: { contentType: string }) => a.contentType)).to.deep.equal([
        'application/pdf',
        'application/dicom',
      ]);
      const pdf = await fetch(dr.body.presentedForm[0].url, { headers: { authorization: `Bearer ${token}` } });
      expect(pdf.status).to.equal(200);
      expect(pdf.headers.get('content-type')).to.equal('application/pdf');

      const obs = await fhir(`/${dr.body.result[0].reference}`, token);
      expect(obs.status).to.equal(200);
      valid(obs.body);
      expect(obs.body.valueString).to.equal(ANSWER.findings[0]!.description);
      expect(obs.body.bodySite.text).to.equal(ANSWER.findings[0]!.anatomical_location);
      const confidence = obs.body.component.find((c: any) => c.code.coding?.[0]?.code === '111012');
      expect(confidence.valueQuantity).to.deep.equal({ value: 0.6, unit: '1', system: 'http://unitsofmeasure.org', code: '1' });
      expect(obs.body.derivedFrom[0].reference).to.equal(`ImagingStudy/${study}`);

      const dev = await fhir(`/${obs.body.device.reference}`, token);
      expect(dev.status).to.equal(200);
      valid(dev.body);
      expect(dev.body.note[0].text).to.match(/UNVALIDATED/);

      const is = await fhir(`/ImagingStudy/${study}`, token);
      expect(is.status).to.equal(200);
      valid(is.body);
      expect(is.body.identifier[0]).to.deep.equal({ system: 'urn:dicom:uid', value: `urn:oid:${study}` });
      expect(is.body.contained[0].connectionType.code).to.equal('dicom-wado-rs');
      const ct = is.body.series.find((s: any) => s.modality.code === 'CT');
      expect(ct.modality.system).to.equal('http://dicom.nema.org/resources/ontology/DCM');
      expect(ct.instance).to.have.length(8);
      // The report's SR is in the study: its series lists it.
      const srClass = 'urn:oid:1.2.840.10008.5.1.4.1.1.88.34';
      expect(is.body.series.some((s: any) => s.instance.some((i: any) => i.sopClass.code === srClass))).to.equal(true);

      const pat = await fhir(`/${dr.body.subject.reference}`, token);
      expect(pat.status).to.equal(200);
      valid(pat.body);
      const rows = await auditRows(node, 'fhir.read');
      expect(rows.some((r) => r.resource_id === `DiagnosticReport/${reportId}` && r.study_instance_uid === study)).to.equal(true);
    });

    it('searches return searchset Bundles with total, self and next links', async () => {
      const dr = await fhir(`/DiagnosticReport/${reportId}`, token);
      const patient = dr.body.subject.reference as string;
      const pid = (await fhir(`/${patient}`, token)).body.identifier[0];

      const bySystem = await fhir(`/Patient?identifier=${encodeURIComponent(`${pid.system}|${pid.value}`)}`, token);
      expect(bySystem.body).to.include({ resourceType: 'Bundle', type: 'searchset', total: 1 });
      valid(bySystem.body);
      expect((await fhir(`/Patient?identifier=urn:other|${encodeURIComponent(pid.value)}`, token)).body.total).to.equal(0);

      const studies = await fhir(`/ImagingStudy?patient=${patient}&modality=CT&started=ge1900-01-01`, token);
      expect(studies.body.total).to.equal(1);
      valid(studies.body);
      const byUid = await fhir(`/ImagingStudy?identifier=${encodeURIComponent(`urn:dicom:uid|urn:oid:${study}`)}`, token);
      expect(byUid.body.total).to.equal(1);
      expect((await fhir(`/ImagingStudy?patient=${patient}&modality=MR`, token)).body.total).to.equal(0);
      expect((await fhir(`/ImagingStudy?patient=${patient}&started=lt1900-01-01`, token)).body.total).to.equal(0);

      const finals = await fhir(`/DiagnosticReport?patient=${patient}&status=final&study=ImagingStudy/${study}`, token);
      expect(finals.body.total).to.equal(1);
      valid(finals.body);
      expect((await fhir(`/DiagnosticReport?patient=${patient}&status=preliminary`, token)).body.total).to.equal(0);

      const none = await fhir(`/Observation?derived-from=ImagingStudy/${study}&_count=0`, token);
      expect(none.body.total).to.equal(2);
      expect(none.body.entry).to.have.length(0);
      const obs = await fhir(`/Observation?derived-from=ImagingStudy/${study}&_count=1`, token);
      expect(obs.body.total).to.equal(2);
      expect(obs.body.entry).to.have.length(1);
      valid(obs.body);
      const next = obs.body.link.find((l: any) => l.relation === 'next');
      expect(next, 'a next link while more remain').to.not.equal(undefined);
      const page2 = await fetch(next.url, { headers: { authorization: `Bearer ${token}` } });
      const p2 = (await page2.json()) as any;
      expect(p2.total).to.equal(2);
      expect(p2.entry).to.have.length(1);
      expect(p2.entry[0].resource.valueString).to.equal(SECOND.description);
      expect(p2.link.find((l: any) => l.relation === 'next')).to.equal(undefined);
      expect(p2.link.find((l: any) => l.relation === 'self').url).to.contain('derived-from=');
      expect((await fhir(`/Observation?subject=${patient}`, token)).body.total).to.equal(2);
    });

    it('errors are OperationOutcomes with the right status; no token is 401; every route is audited', async () => {
      const noToken = await fhir(`/Patient`, null);
      expect(noToken.status).to.equal(401);
      expect(noToken.body.resourceType).to.equal('OperationOutcome');
      valid(noToken.body);
      const missing = await fhir(`/DiagnosticReport/999999`, token);
      expect(missing.status).to.equal(404);
      valid(missing.body);
      const badParam = await fhir(`/Patient?gender=male`, token);
      expect(badParam.status).to.equal(400);
      expect(badParam.body.issue[0].diagnostics).to.match(/gender/);
      const badDate = await fhir(`/ImagingStudy?started=yesterday`, token);
      expect(badDate.status).to.equal(400);
      const unknown = await fhir(`/Medication/1`, token);
      expect(unknown.status).to.equal(404);
      const xml = await fhir(`/Patient`, token, 'application/fhir+xml');
      expect(xml.status).to.equal(406);
      valid(xml.body);
      const searches = await auditRows(node, 'fhir.search');
      expect(searches.length).to.be.greaterThan(3);
    });

    it('a 4xx is the dead letter at once (not retried), shown in the delivery log; retried through the API it is delivered', async () => {
      ehr!.answer = () => ({
        status: 422,
        body: {
          resourceType: 'OperationOutcome',
          issue: [{ severity: 'error', code: 'processing', diagnostics: 'unknown patient system' }],
        },
      });
      const before = ehr!.received.length;
      const failuresBefore = (await auditRows(node, 'integration.delivery')).filter((r) => r.outcome === 'failure').length;
      const rad = apiClient(node, await tokenFor(node, 'radiologist'));
      const amended = await rad.post(`/api/reports/${reportId}/amend`, { reason: 'laterality checked' });
      expect(amended.status, JSON.stringify(amended.body)).to.be.oneOf([200, 202]);
      const dead = await until('the dead letter', async () => (await deliveries('failed'))[0]);
      expect(dead).to.include({ dead_letter: true, response_code: '422', attempts: 1, trigger: 'sign', report_version: 3 });
      expect(dead.error).to.include('unknown patient system');
      expect(JSON.parse(dead.response!)).to.include({ resourceType: 'OperationOutcome' });
      expect(ehr!.received.length - before).to.equal(1);
      const failures = (await auditRows(node, 'integration.delivery')).filter((r) => r.outcome === 'failure');
      expect(failures.length - failuresBefore, 'one failed attempt audited').to.equal(1);
      ehr!.answer = () => undefined;
      const retried = await admin.post<DeliveryView>(`/api/integrations/${integrationId}/deliveries/${dead.id}/retry`, {});
      expect(retried.status, JSON.stringify(retried.body)).to.equal(200);
      expect(retried.body).to.include({ status: 'queued', dead_letter: false });
      const ok = await until('the dead letter delivered', async () =>
        (await deliveries()).find((d) => d.id === dead.id && d.status === 'delivered'),
      );
      expect(ok).to.include({ response_code: '200', attempts: 2 });
      // The same Bundle again (built once, kept with the delivery), now as amended.
      const again = ehr!.received.at(-1)!;
      expect(again.bundle).to.deep.equal(JSON.parse(dead.message!));
      expect((again.bundle.entry!.at(-1)!.resource as fhir4.DiagnosticReport).status).to.equal('amended');
      expect((await admin.post(`/api/integrations/${integrationId}/deliveries/${dead.id}/retry`, {})).status).to.equal(409);
      const viewerRetry = await viewer.post(`/api/integrations/${integrationId}/deliveries/${dead.id}/retry`, {});
      expect(viewerRetry.status).to.equal(403);
    });
  }),
);
