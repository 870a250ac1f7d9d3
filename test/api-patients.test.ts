import { expect } from 'chai';
import { makeCrImage, makeCtSeries } from '../fixtures/generate.js';
import { apiClient, auditRows, ingestFiles, type ApiClient } from './helpers/api.js';
import { tokenFor } from './helpers/http.js';
import { startTestNode, type TestNode } from './helpers/node.js';
import { onBothDatabases } from './helpers/postgres.js';

/**
 * /api/patients on a real node: CRUD, search and paging, history of ingested studies, delete
 * with and without cascade (rows and blobs). The same suite runs on SQLite and PostgreSQL.
 */

interface Patient {
  id: number;
  patient_id: string;
  first_name: string | null;
  last_name: string | null;
  patient_name: string | null;
  date_of_birth: string | null;
  gender: string | null;
  contact_phone: string | null;
  medical_record_number: string | null;
  study_count: number;
}

interface Page<T> {
  total: number;
  limit: number;
  offset: number;
  items: T[];
}

const jane = {
  patient_id: 'API-0001',
  first_name: 'Jane',
  last_name: 'Doe',
  date_of_birth: '1980-02-29',
  gender: 'F',
  contact_phone: '+1 555 0100',
  medical_record_number: 'MRN-1',
};

function describePatients(name: string, envFactory: () => Promise<Record<string, string>>): void {
  describe(`REST API: patients (${name})`, function () {
    this.timeout(60_000);
    let node: TestNode;
    let api: ApiClient;

    before(async () => {
      node = await startTestNode(await envFactory());
      api = apiClient(node, await tokenFor(node, 'admin'));
    });
    after(async () => {
      await node?.cleanup();
    });

    it('creates a patient, stores DICOM-shaped columns, refuses a duplicate Patient ID with 409', async () => {
      const res = await api.post<Patient>('/api/patients', jane);
      expect(res.status, JSON.stringify(res.body)).to.equal(201);
      expect(res.body).to.include({
        patient_id: 'API-0001',
        first_name: 'Jane',
        last_name: 'Doe',
        patient_name: 'Doe^Jane',
        date_of_birth: '1980-02-29',
        gender: 'F',
        contact_phone: '+1 555 0100',
        medical_record_number: 'MRN-1',
        study_count: 0,
      });
      expect(res.headers.get('location')).to.equal(`/api/patients/${res.body.id}`);
      const row = await node.db('patients').where({ id: res.body.id }).first();
      expect(row).to.include({
        patient_name: 'Doe^Jane',
        patient_name_norm: 'DOE^JANE',
        patient_birth_date: '19800229',
        patient_sex: 'F',
        issuer_of_patient_id: '',
      });

      const dup = await api.post('/api/patients', { ...jane, first_name: 'Other' });
      expect(dup.status).to.equal(409);
      expect(dup.body.error.code).to.equal('patient_exists');
    });

    it('validates bodies with 400 and details', async () => {
      const bad = [
        { ...jane, patient_id: 'X-1', date_of_birth: '1981-02-29' }, // not a leap year
        { ...jane, patient_id: 'X-2', date_of_birth: '19800101' },
        { ...jane, patient_id: 'X-3', gender: 'X' },
        { ...jane, patient_id: 'X-4', last_name: 'Doe^Evil' },
        { ...jane, patient_id: 'X-5', unexpected: true },
        { ...jane, patient_id: 'bad\\id' },
        { ...jane, patient_id: 'X-6', date_of_birth: '2999-01-01' },
        { patient_id: 'X-7', first_name: 'Only' },
        { ...jane, patient_id: 'x'.repeat(65) },
      ];
      for (const body of bad) {
        const res = await api.post('/api/patients', body);
        expect(res.status, JSON.stringify(body)).to.equal(400);
        expect(res.body.error.code).to.equal('invalid_request');
        expect(res.body.error.details).to.be.an('array').that.is.not.empty;
      }
      const notJson = await api.raw('/api/patients', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' });
      expect(notJson.status).to.equal(415);
      const broken = await api.raw('/api/patients', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":' });
      expect(broken.status).to.equal(400);
      expect((await node.db('patients').where('patient_id', 'like', 'X-%')).length).to.equal(0);
    });

    it('gets, updates (PATCH and PUT, partial) and keeps the DICOM name in step', async () => {
      const { body: list } = await api.get<Page<Patient>>('/api/patients?q=API-0001');
      const id = list.items[0]!.id;
      const got = await api.get<Patient>(`/api/patients/${id}`);
      expect(got.status).to.equal(200);
      expect(got.body.patient_name).to.equal('Doe^Jane');

      const patched = await api.patch<Patient>(`/api/patients/${id}`, { first_name: 'Janet', contact_phone: null });
      expect(patched.status).to.equal(200);
      expect(patched.body).to.include({
        first_name: 'Janet',
        last_name: 'Doe',
        patient_name: 'Doe^Janet',
        contact_phone: null,
        gender: 'F',
      });
      const row = await node.db('patients').where({ id }).first();
      expect(row).to.include({ patient_name: 'Doe^Janet', patient_name_norm: 'DOE^JANET', contact_phone: null });

      const put = await api.put<Patient>(`/api/patients/${id}`, { last_name: 'Smith', date_of_birth: '1980-03-01', gender: 'O' });
      expect(put.status).to.equal(200);
      expect(put.body).to.include({
        patient_name: 'Smith^Janet',
        date_of_birth: '1980-03-01',
        gender: 'O',
        medical_record_number: 'MRN-1',
      });

      expect((await api.patch(`/api/patients/${id}`, { gender: 'Q' })).status).to.equal(400);
      expect((await api.patch(`/api/patients/${id}`, { first_name: '' })).status).to.equal(400);
      expect((await api.patch('/api/patients/987654', { first_name: 'Nobody' })).status).to.equal(404);
      // Undo, for the searches below.
      await api.patch(`/api/patients/${id}`, { first_name: 'Jane', last_name: 'Doe' });
    });

    it('lists with paging and searches name and Patient ID prefixes, case-insensitively for names', async () => {
      const people = [
        ['API-0002', 'John', 'Doe'],
        ['API-0003', 'Mary', 'Dodd'],
        ['API-0004', 'Ann', 'Smith'],
        ['API-0005', 'Doris', 'Brown'],
        ['OTHER-01', 'Zed', "O'Hara"],
        ['PCT-50%', 'Per', 'Cent'],
        ['US_1', 'Under', 'Score'],
      ];
      for (const [patient_id, first_name, last_name] of people) {
        expect((await api.post('/api/patients', { patient_id, first_name, last_name })).status).to.equal(201);
      }
      const search = async (q: string) => {
        const res = await api.get<Page<Patient>>(`/api/patients?q=${encodeURIComponent(q)}&limit=200`);
        expect(res.status, q).to.equal(200);
        return res.body.items.map((p) => p.patient_id).sort();
      };
      expect(await search('doe')).to.deep.equal(['API-0001', 'API-0002']);
      expect(await search('DO')).to.deep.equal(['API-0001', 'API-0002', 'API-0003', 'API-0005']); // Doe, Dodd, Doris (given)
      expect(await search('jan')).to.deep.equal(['API-0001']);
      expect(await search('API-000')).to.have.length(5);
      expect(await search('api-000')).to.deep.equal([]); // IDs are case-sensitive
      expect(await search("o'hara")).to.deep.equal(['OTHER-01']);

      // Wildcards and SQL are plain text.
      expect(await search('%')).to.deep.equal([]);
      expect(await search('_')).to.deep.equal([]);
      expect(await search('*')).to.deep.equal([]);
      expect(await search('?')).to.deep.equal([]);
      expect(await search('[A-Z]')).to.deep.equal([]);
      expect(await search("' OR 1=1 --")).to.deep.equal([]);
      expect(await search('"; DROP TABLE patients; --')).to.deep.equal([]);
      expect(await search('PCT-50%')).to.deep.equal(['PCT-50%']);
      expect(await search('US_')).to.deep.equal(['US_1']);
      expect(await search('U_')).to.deep.equal([]);

      const first = await api.get<Page<Patient>>('/api/patients?limit=3&offset=0');
      expect(first.body).to.include({ total: 8, limit: 3, offset: 0 });
      expect(first.body.items).to.have.length(3);
      const rest = await api.get<Page<Patient>>('/api/patients?limit=3&offset=3');
      const last = await api.get<Page<Patient>>('/api/patients?limit=3&offset=6');
      expect(last.body.items).to.have.length(2);
      const ids = [...first.body.items, ...rest.body.items, ...last.body.items].map((p) => p.id);
      expect(new Set(ids).size).to.equal(8);
      // Ordered by name.
      expect(first.body.items.map((p) => p.patient_name)).to.deep.equal(['Brown^Doris', 'Cent^Per', 'Dodd^Mary']);
      const byQuery = await api.get<Page<Patient>>('/api/patients?q=do&limit=1&offset=1');
      expect(byQuery.body).to.include({ total: 4, limit: 1, offset: 1 });
      expect(byQuery.body.items).to.have.length(1);

      for (const q of ['limit=201', 'limit=0', 'offset=-1', 'limit=abc', `q=${'x'.repeat(65)}`, 'q=a&q=b', 'q=%00', 'q=a%0Ab']) {
        expect((await api.get(`/api/patients?${q}`)).status, q).to.equal(400);
      }
    });

    it('shows ingested studies in the history, newest first, and the DICOM patient in the list', async () => {
      const { body: created } = await api.post<Patient>('/api/patients', {
        patient_id: 'HIST-1',
        first_name: 'Hilda',
        last_name: 'Story',
      });
      const patient = { id: 'HIST-1', name: 'Story^Hilda', birthDate: '19600101', sex: 'F' as const };
      const older = makeCtSeries({
        slices: 2,
        size: 16,
        patient,
        studyDate: '20230105',
        accessionNumber: 'ACC-OLD',
        studyDescription: 'CT old',
      });
      const newer = makeCtSeries({
        slices: 3,
        size: 16,
        patient,
        studyDate: '20240610',
        accessionNumber: 'ACC-NEW',
        studyDescription: 'CT new',
      });
      const newerCr = makeCrImage({
        size: 16,
        patient,
        studyInstanceUid: newer[0]!.studyInstanceUid,
        studyDate: '20240610',
        accessionNumber: 'ACC-NEW',
        studyDescription: 'CT new',
      });
      const undated = makeCtSeries({ slices: 1, size: 16, patient, studyDate: '', accessionNumber: 'ACC-NONE' });
      await ingestFiles(node, [...older, ...undated, ...newer, ...newerCr]);

      const res = await api.get(`/api/patients/${created.id}/history`);
      expect(res.status).to.equal(200);
      expect(res.body.patient).to.include({ id: created.id, patient_id: 'HIST-1', study_count: 3 });
      expect(res.body.total).to.equal(3);
      const items = res.body.items as Array<Record<string, unknown>>;
      expect(items.map((s) => s.accession_number)).to.deep.equal(['ACC-NEW', 'ACC-OLD', 'ACC-NONE']);
      expect(items[0]).to.deep.include({
        study_instance_uid: newer[0]!.studyInstanceUid,
        study_date: '2024-06-10',
        study_description: 'CT new',
        modalities_in_study: ['CR', 'CT'],
        num_series: 2,
        num_instances: 4,
        analysis_status: null,
      });
      expect(items[1]).to.deep.include({ study_date: '2023-01-05', num_series: 1, num_instances: 2, modalities_in_study: ['CT'] });
      expect(items[2]).to.deep.include({ study_date: null, num_instances: 1 });

      // A patient that only DICOM created is listed too, its name split from the PN.
      await ingestFiles(node, makeCtSeries({ slices: 1, size: 16, patient: { id: 'DICOM-ONLY', name: 'Ingest^Ivan^M' } }));
      const found = await api.get<Page<Patient>>('/api/patients?q=ivan');
      expect(found.body.items).to.have.length(1);
      expect(found.body.items[0]).to.include({ patient_id: 'DICOM-ONLY', first_name: 'Ivan', last_name: 'Ingest', study_count: 1 });
    });

    it('refuses to delete a patient with studies (409), then cascades rows and blobs', async () => {
      const { body: page } = await api.get<Page<Patient>>('/api/patients?q=HIST-1');
      const id = page.items[0]!.id;
      const keys = (
        (await node
          .db('instances as i')
          .join('series as se', 'se.id', 'i.series_pk')
          .join('studies as st', 'st.id', 'se.study_pk')
          .where('st.patient_pk', id)
          .select('i.storage_key')) as Array<{ storage_key: string }>
      ).map((r) => r.storage_key);
      expect(keys).to.have.length(7);
      for (const k of keys) expect(await node.storage.exists(k), k).to.equal(true);

      const refused = await api.del(`/api/patients/${id}`);
      expect(refused.status).to.equal(409);
      expect(refused.body.error.code).to.equal('patient_has_studies');
      expect((await api.get(`/api/patients/${id}`)).status).to.equal(200);
      expect((await api.del(`/api/patients/${id}?cascade=maybe`)).status).to.equal(400);

      const gone = await api.del(`/api/patients/${id}?cascade=true`);
      expect(gone.status).to.equal(200);
      expect(gone.body).to.include({ deleted: true, studies: 3, series: 4, instances: 7, blobs_deleted: 7, blobs_failed: 0 });
      for (const k of keys) expect(await node.storage.exists(k), k).to.equal(false);
      expect((await api.get(`/api/patients/${id}`)).status).to.equal(404);
      expect((await api.get(`/api/patients/${id}/history`)).status).to.equal(404);
      expect(await node.db('studies').where('patient_pk', id)).to.have.length(0);
      expect(await node.db('instances').whereIn('storage_key', keys)).to.have.length(0);
      // Other patients' data is untouched.
      expect(await node.db('studies')).to.have.length(1);

      const plain = (await api.get<Page<Patient>>('/api/patients?q=API-0005')).body.items[0]!;
      expect((await api.del(`/api/patients/${plain.id}`)).status).to.equal(200);
      expect((await api.del(`/api/patients/${plain.id}`)).status).to.equal(404);
    });

    it('deletes a patient with everything keyed to it: metadata, volumes, unsent forwards, jobs, analyses, reports', async () => {
      const patient = { id: 'DEL-ALL', name: 'Gone^Greta', birthDate: '19700101', sex: 'F' as const };
      const files = makeCtSeries({ slices: 2, size: 16, patient, accessionNumber: 'ACC-DEL' });
      await ingestFiles(node, files);
      const study = files[0]!.studyInstanceUid;
      const series = files[0]!.seriesInstanceUid;
      const sops = files.map((f) => f.sopInstanceUid);
      const keep = makeCtSeries({ slices: 1, size: 16, patient: { id: 'DEL-KEEP', name: 'Kept^Karl' } });
      await ingestFiles(node, keep);
      const ts = new Date().toISOString();

      const meta = await api.get(`/dicom-web/studies/${study}/series/${series}/metadata`);
      expect(meta.status).to.equal(200);
      expect(await node.db('series_metadata').where('series_instance_uid', series)).to.have.length(1);
      await node.db('volumes').insert({
        study_instance_uid: study,
        series_instance_uid: series,
        kind: 'volume',
        rows: 16,
        columns: 16,
        slice_count: 2,
        instance_order: '[]',
        problems: '[]',
        created_at: ts,
      });
      const [nodeRow] = (await node
        .db('remote_nodes')
        .insert({ ae_title: 'DELDEST', host: '127.0.0.1', port: 1 })
        .returning('id')) as Array<{
        id: number;
      }>;
      const forward = (status: string, sop: string) => ({
        node_id: Number(nodeRow!.id),
        sop_instance_uid: sop,
        study_instance_uid: study,
        status,
        next_attempt_at: ts,
        created_at: ts,
      });
      await node.db('forward_items').insert([forward('queued', sops[0]!), forward('failed', sops[1]!), forward('sent', sops[1]!)]);
      const [job] = (await node
        .db('jobs')
        .insert({
          kind: 'analysis.run',
          payload: '{}',
          status: 'pending',
          max_attempts: 1,
          next_run_at: '2999-01-01T00:00:00.000Z',
          created_at: ts,
          updated_at: ts,
        })
        .returning('id')) as Array<{ id: number }>;
      const [analysis] = (await node
        .db('medgemma_analyses')
        .insert({
          study_instance_uid: study,
          status: 'succeeded',
          analysis_type: 'primary',
          trigger: 'manual',
          job_id: Number(job!.id),
          created_at: ts,
        })
        .returning('id')) as Array<{ id: number }>;
      const analysisId = Number(analysis!.id);
      await node.db('findings').insert({ analysis_id: analysisId, idx: 0, description: 'x', confidence: 0.5, image_indices: '[]' });
      await node.db('measurements').insert({ analysis_id: analysisId, idx: 0, quantity: 'length', value: 1, unit: 'mm' });
      const [report] = (await node
        .db('reports')
        .insert({
          study_instance_uid: study,
          analysis_id: analysisId,
          state: 'draft',
          version: 1,
          include_ai_disclaimer: true,
          content: '{}',
          created_at: ts,
          updated_at: ts,
        })
        .returning('id')) as Array<{ id: number }>;
      await node.db('report_versions').insert({
        report_id: Number(report!.id),
        version: 1,
        state: 'draft',
        action: 'create',
        changed_at: ts,
        changes: '[]',
        content: '{}',
      });
      const keys = (
        (await node.db('instances').whereIn('sop_instance_uid', sops).select('storage_key')) as Array<{ storage_key: string }>
      ).map((r) => r.storage_key);
      expect(keys).to.have.length(2);

      const { body: page } = await api.get<Page<Patient>>('/api/patients?q=DEL-ALL');
      const id = page.items[0]!.id;
      const gone = await api.del(`/api/patients/${id}?cascade=true`);
      expect(gone.status, JSON.stringify(gone.body)).to.equal(200);
      expect(gone.body).to.include({ studies: 1, series: 1, instances: 2, blobs_deleted: 2, blobs_failed: 0 });

      const count = async (table: string, column: string, values: Array<string | number>) =>
        ((await node.db(table).whereIn(column, values)) as unknown[]).length;
      expect(await count('patients', 'id', [id])).to.equal(0);
      expect(await count('studies', 'study_instance_uid', [study])).to.equal(0);
      expect(await count('series', 'series_instance_uid', [series])).to.equal(0);
      expect(await count('instances', 'sop_instance_uid', sops)).to.equal(0);
      expect(await count('series_metadata', 'series_instance_uid', [series])).to.equal(0);
      expect(await count('volumes', 'series_instance_uid', [series])).to.equal(0);
      expect(await count('medgemma_analyses', 'study_instance_uid', [study])).to.equal(0);
      expect(await count('findings', 'analysis_id', [analysisId])).to.equal(0);
      expect(await count('measurements', 'analysis_id', [analysisId])).to.equal(0);
      expect(await count('reports', 'study_instance_uid', [study])).to.equal(0);
      expect(await count('report_versions', 'report_id', [Number(report!.id)])).to.equal(0);
      // Unsent forwards go; the record that a copy was sent elsewhere stays.
      expect(await node.db('forward_items').whereIn('sop_instance_uid', sops).select('status')).to.deep.equal([{ status: 'sent' }]);
      expect(await node.db('jobs').where('id', Number(job!.id)).first()).to.include({ status: 'cancelled', error: 'study deleted' });
      // The series' metadata prebuild, scheduled by the ingest, is cancelled too (or already ran).
      expect(
        await node
          .db('jobs')
          .where({ dedupe_key: `prebuild:${series}` })
          .whereIn('status', ['pending', 'running']),
      ).to.have.length(0);
      for (const k of keys) expect(await node.storage.exists(k), k).to.equal(false);
      const audit = (await auditRows(node, 'patient.delete')).at(-1)!;
      expect(audit.status).to.equal(200);
      const details = JSON.parse(String(audit.details)) as Record<string, unknown>;
      expect(details).to.include({ cascade: true, instances: 2, analyses: 1, reports: 1, forward_items: 2 });
      // The analysis job, and the series' metadata prebuild unless its worker took it first.
      expect(details.jobs_cancelled).to.be.oneOf([1, 2]);
      // The other patient's study is untouched.
      expect(await count('instances', 'sop_instance_uid', [keep[0]!.sopInstanceUid])).to.equal(1);
    });

    it('rejects junk ids with 400 and unknown ids with 404', async () => {
      for (const id of ['abc', '0', '-1', '1e3', '01', '99999999999', '1.5', '%2e%2e%2fetc']) {
        expect((await api.get(`/api/patients/${id}`)).status, id).to.equal(400);
      }
      expect((await api.get('/api/patients/2147483647')).status).to.equal(404);
      expect((await api.get('/api/patients/424242/history')).status).to.equal(404);
    });
  });
}

onBothDatabases(describePatients, 'radiant_api');

describe('REST API: patients, roles and audit (SQLite)', function () {
  this.timeout(60_000);
  let node: TestNode;

  before(async () => {
    node = await startTestNode();
  });
  after(async () => {
    await node?.cleanup();
  });

  it('applies the role table: 401 without a token, viewer reads, technician writes, admin deletes', async () => {
    const anonymous = apiClient(node);
    expect((await anonymous.get('/api/patients')).status).to.equal(401);
    expect((await anonymous.post('/api/patients', jane)).status).to.equal(401);
    expect((await anonymous.get('/api/patients/1')).status).to.equal(401);
    expect((await apiClient(node, 'not-a-token').get('/api/patients')).status).to.equal(401);

    const viewer = apiClient(node, await tokenFor(node, 'viewer'));
    const technician = apiClient(node, await tokenFor(node, 'technician'));
    const admin = apiClient(node, await tokenFor(node, 'admin'));

    const forbidden = await viewer.post('/api/patients', jane);
    expect(forbidden.status).to.equal(403);
    expect(forbidden.body.error.code).to.equal('forbidden');
    const created = await technician.post<Patient>('/api/patients', jane);
    expect(created.status).to.equal(201);
    const id = created.body.id;

    expect((await viewer.get('/api/patients')).status).to.equal(200);
    expect((await viewer.get(`/api/patients/${id}`)).status).to.equal(200);
    expect((await viewer.get(`/api/patients/${id}/history`)).status).to.equal(200);
    expect((await viewer.patch(`/api/patients/${id}`, { first_name: 'X' })).status).to.equal(403);
    expect((await technician.patch(`/api/patients/${id}`, { contact_phone: '555 0199' })).status).to.equal(200);
    expect((await viewer.del(`/api/patients/${id}`)).status).to.equal(403);
    expect((await technician.del(`/api/patients/${id}`)).status).to.equal(403);
    expect((await admin.del(`/api/patients/${id}`)).status).to.equal(200);
    // 403 comes before validation: a forbidden caller learns nothing about the body.
    expect((await viewer.post('/api/patients', { junk: true })).status).to.equal(403);
  });

  it('writes one audit row per request, with the Patient ID and never the search text', async () => {
    const admin = apiClient(node, await tokenFor(node, 'admin'));
    await node.audit.flush();
    const before = (await node.db('audit_logs').count({ n: '*' }))[0]!.n;
    const created = await admin.post<Patient>('/api/patients', { ...jane, patient_id: 'AUD-1' });
    const id = created.body.id;
    await admin.get('/api/patients?q=Doe');
    await admin.get(`/api/patients/${id}`);
    await admin.patch(`/api/patients/${id}`, { gender: 'M' });
    await admin.get(`/api/patients/${id}/history`);
    await admin.post('/api/patients', { ...jane, patient_id: 'AUD-1' }); // 409
    await admin.del(`/api/patients/${id}`);
    await node.audit.flush();
    const after = (await node.db('audit_logs').count({ n: '*' }))[0]!.n;
    expect(Number(after) - Number(before)).to.equal(7);

    for (const action of ['patient.create', 'patient.read', 'patient.update', 'patient.history', 'patient.delete']) {
      const rows = (await auditRows(node, action)).filter((r) => r.patient_id === 'AUD-1');
      expect(rows.length, action).to.be.greaterThan(0);
      expect(
        rows.every((r) => r.actor?.startsWith('admin-')),
        action,
      ).to.equal(true);
    }
    const creates = (await auditRows(node, 'patient.create')).filter((r) => r.patient_id === 'AUD-1');
    expect(creates.map((r) => [r.outcome, r.status])).to.deep.equal([
      ['success', 201],
      ['failure', 409],
    ]);
    const [del] = (await auditRows(node, 'patient.delete')).filter((r) => r.patient_id === 'AUD-1');
    expect(JSON.parse(del!.details!)).to.include({ cascade: false, studies: 0 });
    const lists = await auditRows(node, 'patient.list');
    const last = lists[lists.length - 1]!;
    expect(last.details).to.not.include('Doe');
    expect(JSON.parse(last.details!)).to.include({ search: true });
    // Refused requests are audited too.
    const refused = (await auditRows(node, 'patient.create')).filter((r) => r.status === 403 || r.status === 401);
    expect(refused.length).to.be.greaterThan(0);
  });

  it('answers an oversized JSON body with 413', async () => {
    const admin = apiClient(node, await tokenFor(node, 'admin'));
    const big = { ...jane, patient_id: 'BIG-1', medical_record_number: 'x'.repeat(2 * 1024 * 1024) };
    const res = await admin.post('/api/patients', big);
    expect(res.status).to.equal(413);
    expect(res.body.error.code).to.equal('payload_too_large');
    expect(await node.db('patients').where({ patient_id: 'BIG-1' })).to.have.length(0);
  });
});
