import { expect } from 'chai';
import http from 'node:http';
import { makeCrImage, makeCtSeries, makeMrSeries } from '../fixtures/generate.js';
import { apiClient, auditRows, ingestFiles, uploadForm, type ApiClient } from './helpers/api.js';
import { baseUrl, bearer, tokenFor } from './helpers/http.js';
import { listFiles, startTestNode, type TestNode } from './helpers/node.js';
import { onBothDatabases } from './helpers/postgres.js';

/**
 * /api/studies on a real node (SQLite): upload through multipart/form-data into the one ingest
 * path, list and get, role checks, audit rows and hostile inputs.
 */

const MAX_UPLOAD = 1024 * 1024;
const MAX_INSTANCE = 16 * 1024;

/** Studies and upload against the embedded index and a real PostgreSQL. */
function describeStudies(name: string, envFactory: () => Promise<Record<string, string>>): void {
  describe(`REST API: studies and upload (${name})`, function () {
    this.timeout(60_000);
    let node: TestNode;
    let admin: ApiClient;
    let techToken: string;

    before(async () => {
      node = await startTestNode({
        ...(await envFactory()),
        MAX_UPLOAD_BYTES: String(MAX_UPLOAD),
        MAX_INSTANCE_BYTES: String(MAX_INSTANCE),
      });
      admin = apiClient(node, await tokenFor(node, 'admin'));
      techToken = await tokenFor(node, 'technician');
    });
    after(async () => {
      await node?.cleanup();
    });

    /** Temp files left behind by an upload (there must be none, not even empty ones). */
    const partialTempFiles = () => listFiles(node.config.tempDir);

    const upload = (form: FormData, token = techToken) =>
      fetch(`${baseUrl(node)}/api/studies/upload`, { method: 'POST', headers: bearer(token), body: form });

    it('uploads DICOM files and reports a non-DICOM file by name; the others are indexed', async () => {
      const patient = { id: 'UP-1', name: 'Upload^Una', birthDate: '19900101', sex: 'F' as const };
      const files = makeCtSeries({ slices: 3, size: 16, patient, accessionNumber: 'ACC-UP1', studyDate: '20240102' });
      const form = uploadForm({
        patientId: 'UP-1',
        files: [
          { name: 'a.dcm', bytes: files[0]!.bytes },
          { name: 'notes.txt', bytes: 'this is not DICOM', type: 'text/plain' },
          { name: 'b.dcm', bytes: files[1]!.bytes },
          { name: 'c.dcm', bytes: files[2]!.bytes },
        ],
      });
      const res = await upload(form);
      const body = (await res.json()) as any;
      expect(res.status, JSON.stringify(body)).to.equal(201);
      const study = await node.db('studies').where({ study_instance_uid: files[0]!.studyInstanceUid }).first();
      expect(body).to.include({
        study_id: study.id,
        study_instance_uid: files[0]!.studyInstanceUid,
        patient_id: 'UP-1',
        series_count: 1,
        total_images: 3,
        status: 'partial',
      });
      expect(body.files.map((f: any) => [f.name, f.status])).to.deep.equal([
        ['a.dcm', 'stored'],
        ['notes.txt', 'failed'],
        ['b.dcm', 'stored'],
        ['c.dcm', 'stored'],
      ]);
      expect(body.files[1].error).to.be.a('string').and.not.empty;
      expect(body.files[0].warnings).to.equal(undefined);
      expect(body.files[0].sop_instance_uid).to.equal(files[0]!.sopInstanceUid);

      const rows = (await node.db('instances').whereIn(
        'sop_instance_uid',
        files.map((f) => f.sopInstanceUid),
      )) as Array<{
        source: string;
        storage_key: string;
      }>;
      expect(rows).to.have.length(3);
      expect(rows.every((r) => r.source === 'upload')).to.equal(true);
      for (const r of rows) expect(await node.storage.exists(r.storage_key)).to.equal(true);

      // The uploaded study appears in the patient's history.
      const pat = (await admin.get('/api/patients?q=UP-1')).body.items[0];
      const history = await admin.get(`/api/patients/${pat.id}/history`);
      expect(history.body.items.map((s: any) => s.num_instances)).to.deep.equal([3]);
    });

    it('stores files whose PatientID differs from the form as received, with a warning', async () => {
      const files = makeMrSeries({ slices: 2, size: 16, patient: { id: 'UP-2', name: 'Other^Otto' } });
      const res = await upload(uploadForm({ patientId: 'UP-1', files: files.map((f, i) => ({ name: `mr${i}.dcm`, bytes: f.bytes })) }));
      const body = (await res.json()) as any;
      expect(res.status).to.equal(201);
      expect(body).to.include({ status: 'stored', total_images: 2, patient_id: 'UP-2' });
      for (const f of body.files) expect(f.warnings.join(' ')).to.match(/PatientID in the file is "UP-2", not "UP-1"; stored as received/);
      const p = await node.db('patients').where({ patient_id: 'UP-2' }).first();
      expect(p).to.include({ patient_name: 'Other^Otto' });
    });

    it('answers 422 when no file is stored, 400 without files, 415 without multipart, 403 for a viewer', async () => {
      const junk = await upload(
        uploadForm({
          files: [
            { name: 'x.bin', bytes: new Uint8Array(300).fill(7) },
            { name: 'y.txt', bytes: 'y' },
          ],
        }),
      );
      const body = (await junk.json()) as any;
      expect(junk.status).to.equal(422);
      expect(body.error.code).to.equal('upload_failed');
      expect(body.status).to.equal('failed');
      expect(body.files.map((f: any) => f.status)).to.deep.equal(['failed', 'failed']);

      const empty = new FormData();
      empty.append('patient_id', 'UP-1');
      expect((await upload(empty)).status).to.equal(400);

      const notForm = await fetch(`${baseUrl(node)}/api/studies/upload`, {
        method: 'POST',
        headers: { ...bearer(techToken), 'content-type': 'application/json' },
        body: '{}',
      });
      expect(notForm.status).to.equal(415);

      const badBoundary = await fetch(`${baseUrl(node)}/api/studies/upload`, {
        method: 'POST',
        headers: { ...bearer(techToken), 'content-type': 'multipart/form-data; boundary=xyz' },
        body: 'garbage without any boundary',
      });
      expect(badBoundary.status).to.equal(400);

      const badPatient = await upload(
        uploadForm({ patientId: 'bad\\id', files: [{ name: 'a.dcm', bytes: makeCrImage({ size: 16 })[0]!.bytes }] }),
      );
      expect(badPatient.status).to.equal(400);

      const viewer = await tokenFor(node, 'viewer');
      const forbidden = await upload(uploadForm({ files: [{ name: 'a.dcm', bytes: 'x' }] }), viewer);
      expect(forbidden.status).to.equal(403);
      const anonymous = await fetch(`${baseUrl(node)}/api/studies/upload`, { method: 'POST', body: uploadForm({ files: [] }) });
      expect(anonymous.status).to.equal(401);
    });

    it('enforces MAX_UPLOAD_BYTES with 413, declared or streamed', async () => {
      const before = Number((await node.db('instances').count({ n: '*' }))[0]!.n);
      const big = await upload(uploadForm({ files: [{ name: 'big.dcm', bytes: new Uint8Array(MAX_UPLOAD + 1) }] }));
      expect(big.status).to.equal(413);
      expect(((await big.json()) as any).error.code).to.equal('payload_too_large');

      // Chunked (no Content-Length): counted while it streams.
      const boundary = 'radiantboundary';
      const status = await new Promise<number>((resolve, reject) => {
        const req = http.request(
          `${baseUrl(node)}/api/studies/upload`,
          { method: 'POST', headers: { ...bearer(techToken), 'content-type': `multipart/form-data; boundary=${boundary}` } },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.write(
          `--${boundary}\r\nContent-Disposition: form-data; name="files"; filename="huge.dcm"\r\nContent-Type: application/dicom\r\n\r\n`,
        );
        const chunk = Buffer.alloc(64 * 1024);
        let sent = 0;
        const pump = () => {
          while (sent < 2 * MAX_UPLOAD) {
            sent += chunk.length;
            if (!req.write(chunk)) return void req.once('drain', pump);
          }
          req.end(`\r\n--${boundary}--\r\n`);
        };
        pump();
      });
      expect(status).to.equal(413);
      expect(Number((await node.db('instances').count({ n: '*' }))[0]!.n)).to.equal(before);
    });

    it('streams many files one after the other, and goes on after a file over MAX_INSTANCE_BYTES', async () => {
      const many = makeCtSeries({ slices: 60, size: 32, patient: { id: 'MANY-1', name: 'Many^Max' } });
      const tooBig = makeCtSeries({ slices: 1, size: 128, patient: { id: 'MANY-1', name: 'Many^Max' } })[0]!;
      expect(tooBig.bytes.length).to.be.greaterThan(MAX_INSTANCE);
      const parts = many.map((f, i) => ({ name: `s${i}.dcm`, bytes: f.bytes }));
      parts.splice(10, 0, { name: 'too-big.dcm', bytes: tooBig.bytes });
      const res = await upload(uploadForm({ patientId: 'MANY-1', files: parts }));
      const body = (await res.json()) as any;
      expect(res.status).to.equal(201);
      expect(body).to.include({ status: 'partial', total_images: 60, series_count: 1 });
      expect(body.files[10]).to.include({ name: 'too-big.dcm', status: 'failed' });
      expect(body.files[10].error).to.match(/larger than/);
      const study = await node.db('studies').where({ study_instance_uid: many[0]!.studyInstanceUid }).first();
      expect(Number(study.num_instances)).to.equal(60);
      expect(partialTempFiles()).to.deep.equal([]);
    });

    it('survives a client that goes away in the middle of an upload', async () => {
      const boundary = 'abortboundary';
      const file = makeCtSeries({ slices: 1, size: 64, patient: { id: 'ABORT-1' } })[0]!;
      // Earlier tests left 400 rows of one file too (a bad patient_id): wait for this request's own.
      const earlier = (await auditRows(node, 'study.upload')).filter((r) => r.status === 400).length;
      await new Promise<void>((resolve) => {
        const req = http.request(`${baseUrl(node)}/api/studies/upload`, {
          method: 'POST',
          headers: { ...bearer(techToken), 'content-type': `multipart/form-data; boundary=${boundary}` },
        });
        req.on('error', () => resolve());
        req.write(`--${boundary}\r\nContent-Disposition: form-data; name="files"; filename="cut.dcm"\r\n\r\n`);
        req.write(file.bytes.subarray(0, 4000), () => setTimeout(() => req.destroy(), 100));
      });
      let rows: Awaited<ReturnType<typeof auditRows>> = [];
      for (let i = 0; i < 50 && rows.length <= earlier; i++) {
        rows = (await auditRows(node, 'study.upload')).filter((r) => r.status === 400);
        if (rows.length <= earlier) await new Promise((r) => setTimeout(r, 100));
      }
      expect(rows.length).to.equal(earlier + 1);
      expect(rows.at(-1)!.details).to.include('"files":1');
      expect(await node.db('instances').where({ sop_instance_uid: file.sopInstanceUid })).to.have.length(0);
      expect(partialTempFiles()).to.deep.equal([]);
      // And the next upload works.
      const ok = await upload(uploadForm({ files: [{ name: 'whole.dcm', bytes: file.bytes }] }));
      expect(ok.status).to.equal(201);
    });

    it('lists studies with filters and paging, and gets one by id or UID with its series', async () => {
      const patient = { id: 'LIST-1', name: 'List^Lena' };
      const ct = makeCtSeries({ slices: 2, size: 16, patient, studyDate: '20220303', accessionNumber: 'ACC-L1' });
      const mr = makeMrSeries({ slices: 1, size: 16, patient, studyDate: '20230404', accessionNumber: 'ACC-L2' });
      const cr = makeCrImage({
        size: 16,
        patient,
        studyInstanceUid: mr[0]!.studyInstanceUid,
        studyDate: '20230404',
        accessionNumber: 'ACC-L2',
      });
      await ingestFiles(node, [...ct, ...mr, ...cr]);

      const mine = await admin.get('/api/studies?patient_id=LIST-1');
      expect(mine.status).to.equal(200);
      expect(mine.body.total).to.equal(2);
      expect(mine.body.items.map((s: any) => s.accession_number)).to.deep.equal(['ACC-L2', 'ACC-L1']);
      expect(mine.body.items[0]).to.deep.include({
        modalities_in_study: ['CR', 'MR'],
        num_series: 2,
        num_instances: 2,
        study_date: '2023-04-04',
      });
      expect(mine.body.items[0].patient).to.include({ patient_id: 'LIST-1', patient_name: 'List^Lena' });

      const q = async (query: string) => ((await admin.get(`/api/studies?${query}`)).body.items as any[]).map((s) => s.accession_number);
      expect(await q('patient_id=LIST-1&modality=CT')).to.deep.equal(['ACC-L1']);
      expect(await q('patient_id=LIST-1&modality=cr')).to.deep.equal(['ACC-L2']);
      expect(await q('accession=ACC-L1')).to.deep.equal(['ACC-L1']);
      expect(await q('patient_id=LIST-1&date_from=2023-01-01')).to.deep.equal(['ACC-L2']);
      expect(await q('patient_id=LIST-1&date_to=2022-12-31')).to.deep.equal(['ACC-L1']);
      expect(await q('patient_id=LIST-1&date_from=2022-03-03&date_to=2023-04-04')).to.deep.equal(['ACC-L2', 'ACC-L1']);
      expect(await q("patient_id=' OR 1=1 --")).to.deep.equal([]);
      expect(await q('accession=%25')).to.deep.equal([]);

      const all = await admin.get('/api/studies?limit=2&offset=1');
      expect(all.body).to.include({ limit: 2, offset: 1 });
      expect(all.body.total).to.be.greaterThanOrEqual(4);
      expect(all.body.items).to.have.length(2);
      for (const bad of [
        'date_from=2023-13-01',
        'date_to=20230101',
        'modality=C%25',
        'limit=500',
        'offset=x',
        'patient_id=%00',
        'accession=a%01',
      ]) {
        expect((await admin.get(`/api/studies?${bad}`)).status, bad).to.equal(400);
      }

      const byUid = await admin.get(`/api/studies/${mr[0]!.studyInstanceUid}`);
      expect(byUid.status).to.equal(200);
      expect(byUid.body.series.map((s: any) => s.modality).sort()).to.deep.equal(['CR', 'MR']);
      expect(byUid.body.series[0]).to.include.keys('series_instance_uid', 'series_number', 'num_instances');
      const byId = await admin.get(`/api/studies/${byUid.body.id}`);
      expect(byId.body).to.deep.equal(byUid.body);
    });

    it('answers junk and traversal ids with 400 and unknown ones with 404', async () => {
      for (const id of ['..%2F..%2Fetc', '..%2f..%2fetc%2fpasswd', 'abc', '1.2.03', '0', '1.2.3.', `1.${'2'.repeat(70)}`, '%00']) {
        const res = await admin.get(`/api/studies/${id}`);
        expect(res.status, id).to.equal(400);
        expect(res.body.error.code).to.equal('invalid_id');
      }
      expect((await admin.get('/api/studies/1.2.3.999999')).status).to.equal(404);
      expect((await admin.get('/api/studies/999999')).status).to.equal(404);
      const raw = await admin.raw('/api/studies/..%2F..%2Fetc%2Fpasswd');
      expect([400, 404]).to.include(raw.status);
    });

    it('audits uploads and study reads with the Study UID and Patient ID', async () => {
      const uploads = await auditRows(node, 'study.upload');
      const stored = uploads.filter((r) => r.status === 201);
      expect(stored.length).to.equal(4);
      expect(stored[0]).to.include({ patient_id: 'UP-1', outcome: 'success' });
      expect(stored[0]!.study_instance_uid).to.match(/^[0-9.]+$/);
      expect(JSON.parse(stored[0]!.details!)).to.include({ files: 4, stored: 3, failed: 1 });
      expect(uploads.some((r) => r.status === 422 && r.outcome === 'failure')).to.equal(true);
      expect(uploads.some((r) => r.status === 413)).to.equal(true);
      expect(uploads.some((r) => r.status === 403)).to.equal(true);

      const reads = (await auditRows(node, 'study.read')).filter((r) => r.status === 200);
      expect(reads.length).to.equal(2);
      expect(reads[0]).to.include({ patient_id: 'LIST-1' });
      expect((await auditRows(node, 'study.list')).some((r) => r.patient_id === 'LIST-1')).to.equal(true);
    });

    it('shows the latest analysis status and report state of each study (null when none)', async () => {
      const patient = { id: 'STATUS-1', name: 'Status^Stan' };
      const analysed = makeCtSeries({ slices: 1, size: 16, patient, studyDate: '20240505', accessionNumber: 'ACC-S1' });
      const bare = makeCtSeries({ slices: 1, size: 16, patient, studyDate: '20240404', accessionNumber: 'ACC-S2' });
      await ingestFiles(node, [...analysed, ...bare]);
      const study = analysed[0]!.studyInstanceUid;
      const ts = new Date().toISOString();
      const analysis = (status: string) => ({
        study_instance_uid: study,
        status,
        analysis_type: 'primary',
        trigger: 'manual',
        created_at: ts,
      });
      const [first] = (await node.db('medgemma_analyses').insert(analysis('succeeded')).returning('id')) as Array<{ id: number }>;
      const report = (state: string) => ({
        study_instance_uid: study,
        analysis_id: Number(first!.id),
        state,
        version: 1,
        include_ai_disclaimer: true,
        content: '{}',
        created_at: ts,
        updated_at: ts,
      });
      await node.db('reports').insert(report('final'));
      await node.db('reports').insert(report('preliminary'));
      await node.db('medgemma_analyses').insert(analysis('running'));

      const list = await admin.get('/api/studies?patient_id=STATUS-1');
      expect(list.status).to.equal(200);
      const byAccession = Object.fromEntries((list.body.items as any[]).map((s) => [s.accession_number, s]));
      expect(byAccession['ACC-S1']).to.include({ analysis_status: 'running', report_status: 'preliminary' });
      expect(byAccession['ACC-S2']).to.include({ analysis_status: null, report_status: null });
      const one = await admin.get(`/api/studies/${study}`);
      expect(one.body).to.include({ analysis_status: 'running', report_status: 'preliminary' });
      const history = await admin.get(`/api/patients/${one.body.patient.id}/history`);
      expect(history.status).to.equal(200);
      expect((history.body.items as any[]).map((s) => [s.analysis_status, s.report_status])).to.deep.equal([
        ['running', 'preliminary'],
        [null, null],
      ]);
    });
  });
}

onBothDatabases(describeStudies, 'radiant_api_studies');

describe('REST API: OpenAPI document and Swagger UI', function () {
  this.timeout(60_000);
  let node: TestNode;

  before(async () => {
    node = await startTestNode();
  });
  after(async () => {
    await node?.cleanup();
  });

  it('serves /openapi.json without auth, describing /api', async () => {
    const res = await fetch(`${baseUrl(node)}/openapi.json`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^application\/json/);
    const doc = (await res.json()) as any;
    expect(doc.openapi).to.match(/^3\.1\./);
    for (const p of [
      '/api/patients',
      '/api/patients/{id}',
      '/api/patients/{id}/history',
      '/api/studies',
      '/api/studies/{id}',
      '/api/studies/upload',
      '/api/auth/token',
      '/api/audit',
      '/api/nodes',
      '/api/forwarding',
      '/api/forwarding/rules',
      '/api/engine',
      '/healthz',
    ]) {
      expect(doc.paths, p).to.have.property(p);
    }
    expect(doc.paths['/api/patients'].post['x-permission']).to.equal('patients:write');
    expect(doc.paths['/api/patients/{id}'].delete['x-permission']).to.equal('patients:delete');
    expect(doc.components.securitySchemes.bearerAuth).to.include({ type: 'http', scheme: 'bearer' });
    expect(doc.components.schemas.PatientCreate.required).to.include.members(['patient_id', 'first_name', 'last_name']);
    // Every $ref resolves.
    const refs = JSON.stringify(doc).match(/"#\/components\/schemas\/[A-Za-z]+"/g) ?? [];
    for (const r of refs) expect(doc.components.schemas, r).to.have.property(r.slice(22, -1));
  });

  it('documents every route on the routers, and no path the routers do not serve', async () => {
    // The browser pages (Swagger UI and the OHIF viewer) are served by routes too, but are not the API.
    const pages = new Set([
      'GET /docs',
      'GET /docs/',
      'GET /docs/index.html',
      'GET /docs/swagger-initializer.js',
      'GET /docs/{asset}',
      'GET /viewer',
      'GET /viewer/',
      'GET /viewer/login',
      'GET /viewer/app-config.js',
      'GET /viewer/{rest}',
      // The web UI (src/http/routes/web-ui.ts): its page, its hashed assets, the fallback to its page.
      'GET /',
      'GET /index.html',
      'GET /assets/{file}',
      'GET /{rest}',
    ]);
    const routed = new Set<string>();
    for (const router of node.http.routers) {
      for (const layer of router.stack) {
        // koa path parameters (`:id`) and wildcards (`*path`) as OpenAPI writes them (`{id}`).
        const path = String(layer.path).replace(/[:*]([A-Za-z_]\w*)/g, '{$1}');
        for (const method of layer.methods) if (method !== 'HEAD') routed.add(`${method} ${path}`);
      }
    }
    const doc = (await (await fetch(`${baseUrl(node)}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const documented = new Set(
      Object.entries(doc.paths).flatMap(([path, item]) =>
        Object.keys(item)
          .filter((k) => k !== 'parameters')
          .map((m) => `${m.toUpperCase()} ${path}`),
      ),
    );
    expect(routed.size).to.be.greaterThan(70);
    const undocumented = [...routed].filter((r) => !documented.has(r) && !pages.has(r));
    expect(undocumented, 'routes without documentation').to.deep.equal([]);
    const unrouted = [...documented].filter((d) => !routed.has(d));
    expect(unrouted, 'documented paths no router serves').to.deep.equal([]);
    const gone = [...pages].filter((p) => !routed.has(p));
    expect(gone, 'pages that are no longer routes').to.deep.equal([]);
    const samples = ['GET /dicom-web/studies', 'POST /dicom-web/studies', 'GET /wado', 'GET /metrics', 'GET /readyz'];
    expect([...documented]).to.include.members(samples);
  });

  it('serves /docs from the bundled swagger-ui-dist assets', async () => {
    const page = await fetch(`${baseUrl(node)}/docs`);
    expect(page.status).to.equal(200);
    expect(page.headers.get('content-type')).to.match(/^text\/html/);
    const html = await page.text();
    expect(html)
      .to.include('/docs/swagger-ui-bundle.js')
      .and.include('/docs/swagger-ui.css')
      .and.not.match(/https?:\/\//);

    const bundle = await fetch(`${baseUrl(node)}/docs/swagger-ui-bundle.js`);
    expect(bundle.status).to.equal(200);
    expect(bundle.headers.get('content-type')).to.match(/javascript/);
    expect((await bundle.arrayBuffer()).byteLength).to.be.greaterThan(100_000);
    const css = await fetch(`${baseUrl(node)}/docs/swagger-ui.css`);
    expect(css.headers.get('content-type')).to.match(/^text\/css/);
    await css.arrayBuffer();
    const init = await (await fetch(`${baseUrl(node)}/docs/swagger-initializer.js`)).text();
    expect(init).to.include("url: '/openapi.json'");

    for (const p of ['/docs/package.json', '/docs/..%2Fpackage.json', '/docs/..%2F..%2Fpackage.json', '/docs/index.js']) {
      const res = await fetch(`${baseUrl(node)}${p}`);
      expect(res.status, p).to.equal(404);
      await res.arrayBuffer();
    }
  });
});
