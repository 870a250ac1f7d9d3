import type { RouterInstance } from '@koa/router';
import { createPatient, deletePatient, getPatient, listPatients, patientHistory, updatePatient } from '../../records/patients.js';
import { createPatientBody, deletePatientQuery, listPatientsQuery, parsePk, updatePatientBody } from '../../records/schemas.js';
import { returnedIdentifiers } from '../../audit/audit.js';
import { readJson } from '../body.js';
import { HttpError } from '../errors.js';
import type { RouteDeps } from '../deps.js';
import type { AppContext, AppState } from '../state.js';
import { documentRoutes, E, errorResponse, GUARDED, idParams, json, ok, ref, secured } from '../api-doc.js';

/** /api/patients: create, list and search, read, update, delete, history. */
export function registerPatientRoutes(r: RouterInstance<AppState>, deps: RouteDeps): void {
  const { security, db } = deps;

  const notFound = () => new HttpError(404, 'not_found', 'patient not found');

  r.post('/api/patients', security.guard('patients:write', 'patient.create', 'patient'), async (ctx: AppContext) => {
    const body = await readJson(ctx, createPatientBody);
    ctx.state.audit = { patientId: body.patient_id };
    const patient = await createPatient(db, body);
    ctx.state.audit.resourceId = String(patient.id);
    ctx.status = 201;
    ctx.set('Location', `${ctx.state.basePath}/api/patients/${patient.id}`);
    ctx.body = patient;
  });

  r.get('/api/patients', security.guard('images:read', 'patient.list', 'patient'), async (ctx: AppContext) => {
    const q = listPatientsQuery.parse(ctx.query);
    const { total, items } = await listPatients(db, { search: q.q, limit: q.limit, offset: q.offset });
    // The search text may be a name: the audit row says that one was used, not what it was.
    const returned = returnedIdentifiers(items.map((i) => ({ patientId: i.patient_id })));
    ctx.state.audit = { patientId: returned.patientId, details: { search: !!q.q, returned: items.length, total, ...returned.details } };
    ctx.body = { total, limit: q.limit, offset: q.offset, items };
  });

  r.get('/api/patients/:id', security.guard('images:read', 'patient.read', 'patient'), async (ctx: AppContext) => {
    const pk = parsePk(ctx.params.id, 'patient');
    ctx.state.audit = { resourceId: String(pk) };
    const patient = await getPatient(db, pk);
    if (!patient) throw notFound();
    ctx.state.audit.patientId = patient.patient_id;
    ctx.body = patient;
  });

  const update = async (ctx: AppContext) => {
    const pk = parsePk(ctx.params.id, 'patient');
    ctx.state.audit = { resourceId: String(pk) };
    const body = await readJson(ctx, updatePatientBody);
    const patient = await updatePatient(db, pk, body);
    if (!patient) throw notFound();
    ctx.state.audit.patientId = patient.patient_id;
    ctx.state.audit.details = { fields: Object.keys(body) };
    ctx.body = patient;
  };
  r.patch('/api/patients/:id', security.guard('patients:write', 'patient.update', 'patient'), update);
  r.put('/api/patients/:id', security.guard('patients:write', 'patient.update', 'patient'), update);

  const canDelete = security.guard('patients:delete', 'patient.delete', 'patient', { started: true });
  r.delete('/api/patients/:id', canDelete, async (ctx: AppContext) => {
    const pk = parsePk(ctx.params.id, 'patient');
    ctx.state.audit = { resourceId: String(pk) };
    const cascade = ['true', '1'].includes(deletePatientQuery.parse(ctx.query).cascade ?? '');
    const deleted = await deletePatient(deps, pk, cascade);
    if (!deleted) throw notFound();
    const d = deleted.summary;
    const summary = {
      studies: d.studies,
      series: d.series,
      instances: d.instances,
      blobs_deleted: d.blobsDeleted,
      blobs_failed: d.failedKeys.length,
    };
    const removed = { analyses: d.analyses, reports: d.reports, forward_items: d.forwardItems, jobs_cancelled: d.jobsCancelled };
    ctx.state.audit = { resourceId: String(pk), patientId: deleted.patient.patient_id, details: { cascade, ...summary, ...removed } };
    ctx.body = { deleted: true, id: pk, patient_id: deleted.patient.patient_id, ...summary };
  });

  r.get('/api/patients/:id/history', security.guard('images:read', 'patient.history', 'patient'), async (ctx: AppContext) => {
    const pk = parsePk(ctx.params.id, 'patient');
    ctx.state.audit = { resourceId: String(pk) };
    const patient = await getPatient(db, pk);
    if (!patient) throw notFound();
    ctx.state.audit.patientId = patient.patient_id;
    const items = await patientHistory(db, pk);
    ctx.state.audit.details = { studies: items.length };
    ctx.body = { patient, total: items.length, items };
  });
}

const patientErrors = { 400: E[400], ...GUARDED, 404: E[404] };
const createBody = createPatientBody.meta({ id: 'PatientCreate' });
const updateBody = updatePatientBody.meta({ id: 'PatientUpdate' });
documentRoutes(
  secured('images:read', {
    method: 'get',
    path: '/api/patients',
    tags: ['patients'],
    summary: 'List and search patients',
    operationId: 'listPatients',
    request: { query: listPatientsQuery },
    responses: { 200: ok('A page of patients', ref('PatientList')), 400: E[400], ...GUARDED },
  }),
  secured('patients:write', {
    method: 'post',
    path: '/api/patients',
    tags: ['patients'],
    summary: 'Create a patient',
    operationId: 'createPatient',
    description:
      'Patients are the same rows DICOM ingest writes: what arrives over DICOM with this Patient ID (and no issuer) lands on this patient.',
    request: { body: { required: true, content: json(createBody) } },
    responses: {
      201: ok('Created', ref('Patient')),
      400: E[400],
      ...GUARDED,
      409: errorResponse('A patient with this Patient ID (and an empty issuer) exists'),
      413: E[413],
      415: E[415],
    },
  }),
  secured('images:read', {
    method: 'get',
    path: '/api/patients/{id}',
    tags: ['patients'],
    summary: 'Get a patient',
    operationId: 'getPatient',
    request: { params: idParams('patient') },
    responses: { 200: ok('The patient', ref('Patient')), ...patientErrors },
  }),
  secured('patients:write', {
    method: 'patch',
    path: '/api/patients/{id}',
    tags: ['patients'],
    summary: 'Update a patient (partial; null clears an optional field)',
    operationId: 'updatePatient',
    request: { params: idParams('patient'), body: { required: true, content: json(updateBody) } },
    responses: {
      200: ok('The updated patient', ref('Patient')),
      ...patientErrors,
      409: errorResponse('The new Patient ID is taken, or the patient has studies (its ID is in their DICOM)'),
      413: E[413],
      415: E[415],
    },
  }),
  secured('patients:write', {
    method: 'put',
    path: '/api/patients/{id}',
    tags: ['patients'],
    summary: 'Update a patient (same as PATCH: partial)',
    operationId: 'replacePatient',
    request: { params: idParams('patient'), body: { required: true, content: json(updateBody) } },
    responses: { 200: ok('The updated patient', ref('Patient')), ...patientErrors, 409: E[409], 413: E[413], 415: E[415] },
  }),
  secured('patients:delete', {
    method: 'delete',
    path: '/api/patients/{id}',
    tags: ['patients'],
    summary: 'Delete a patient',
    operationId: 'deletePatient',
    description:
      'Refused (409) while the patient has studies, unless `cascade=true`: then its studies, series and instances are deleted ' +
      'from the index and their blobs from storage.',
    request: { params: idParams('patient'), query: deletePatientQuery },
    responses: { 200: ok('Deleted', ref('PatientDeleted')), ...patientErrors, 409: errorResponse('The patient has studies') },
  }),
  secured('images:read', {
    method: 'get',
    path: '/api/patients/{id}/history',
    tags: ['patients'],
    summary: "The patient's studies, newest first",
    operationId: 'patientHistory',
    request: { params: idParams('patient') },
    responses: { 200: ok('History', ref('PatientHistory')), ...patientErrors },
  }),
);
