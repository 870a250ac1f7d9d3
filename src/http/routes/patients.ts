import type { RouterInstance } from '@koa/router';
import {
  createPatient,
  deletePatient,
  getPatient,
  listPatients,
  patientHistory,
  PatientExistsError,
  PatientHasStudiesError,
  updatePatient,
} from '../../records/patients.js';
import { createPatientBody, deletePatientQuery, listPatientsQuery, parsePk, updatePatientBody } from '../../records/schemas.js';
import { returnedIdentifiers } from '../../audit/audit.js';
import { readJson } from '../body.js';
import { HttpError } from '../errors.js';
import type { RouteDeps } from '../server.js';
import type { AppContext, AppState } from '../state.js';

/** /api/patients: create, list and search, read, update, delete, history. */
export function registerPatientRoutes(r: RouterInstance<AppState>, deps: RouteDeps): void {
  const { security, db } = deps;

  const notFound = () => new HttpError(404, 'not_found', 'patient not found');
  const conflict = (err: unknown) => {
    if (err instanceof PatientExistsError) return new HttpError(409, 'patient_exists', err.message);
    if (err instanceof PatientHasStudiesError) return new HttpError(409, 'patient_has_studies', err.message, { studies: err.studies });
    return err;
  };

  r.post('/api/patients', security.guard('patients:write', 'patient.create', 'patient'), async (ctx: AppContext) => {
    const body = await readJson(ctx, createPatientBody);
    ctx.state.audit = { patientId: body.patient_id };
    const patient = await createPatient(db, body).catch((err: unknown) => {
      throw conflict(err);
    });
    ctx.state.audit.resourceId = String(patient.id);
    ctx.status = 201;
    ctx.set('Location', `/api/patients/${patient.id}`);
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
    const patient = await updatePatient(db, pk, body).catch((err: unknown) => {
      throw conflict(err);
    });
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
    const deleted = await deletePatient(deps, pk, cascade).catch((err: unknown) => {
      throw conflict(err);
    });
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
