import { RadiantError } from '../errors.js';
import { normalizePersonName } from '../catalog/catalog.js';
import { lockPatientRow } from '../catalog/deletion.js';
import {
  insertPatientRow,
  patientExists,
  patientRow,
  patientRows,
  studiesOfPatient,
  studyCountOfPatient,
  updatePatientRow,
  type PatientColumns,
  type PatientRow,
} from '../catalog/patients.js';
import type { Db, Trx } from '../db/connection.js';
import { deleteStored, type DeleteDeps, type DeletionSummary } from '../ingest/delete.js';
import { fromDicomDate, toDicomDate, type CreatePatientBody, type UpdatePatientBody } from './schemas.js';
import { isoTimestamp, isUniqueViolation } from '../catalog/sql.js';

/**
 * Patients of the application API. They are the rows DICOM ingest writes (one table, matched on
 * Patient ID + Issuer): what the API creates, C-FIND and QIDO-RS find, and what arrives over
 * DICOM for the same Patient ID lands on the API's patient. API patients have an empty issuer.
 */

export interface Patient {
  id: number;
  patient_id: string;
  issuer_of_patient_id: string;
  first_name: string | null;
  last_name: string | null;
  /** The DICOM PN, "Family^Given". */
  patient_name: string | null;
  date_of_birth: string | null;
  gender: string | null;
  contact_phone: string | null;
  medical_record_number: string | null;
  study_count: number;
  created_at: string | null;
  updated_at: string | null;
}

export interface PatientHistoryItem {
  id: number;
  study_instance_uid: string;
  study_date: string | null;
  study_time: string | null;
  modalities_in_study: string[];
  study_description: string | null;
  accession_number: string | null;
  num_series: number;
  num_instances: number;
  created_at: string | null;
  /** The latest analysis' status and report's state (src/catalog/study-status.ts), null when none. */
  analysis_status: string | null;
  report_status: string | null;
}

/** "Family^Given^Middle^Prefix^Suffix=ideographic=phonetic": family and given of the first group. */
export function splitPersonName(pn: string | null): { last: string | null; first: string | null } {
  if (!pn) return { last: null, first: null };
  const [last, first] = (pn.split('=')[0] ?? '').split('^');
  return { last: last?.trim() || null, first: first?.trim() || null };
}

export function composePersonName(last: string, first: string): string {
  return `${last}^${first}`;
}

function toPatient(r: PatientRow): Patient {
  // The name columns are copies the API writes with patient_name; when DICOM ingest has since
  // rewritten patient_name, the PN is what everybody else sees, so it wins.
  const consistent = r.first_name !== null && r.last_name !== null && r.patient_name === composePersonName(r.last_name, r.first_name);
  const fromPn = splitPersonName(r.patient_name);
  return {
    id: Number(r.id),
    patient_id: r.patient_id,
    issuer_of_patient_id: r.issuer_of_patient_id,
    first_name: consistent ? r.first_name : fromPn.first,
    last_name: consistent ? r.last_name : fromPn.last,
    patient_name: r.patient_name,
    date_of_birth: fromDicomDate(r.patient_birth_date),
    gender: r.patient_sex,
    contact_phone: r.contact_phone,
    medical_record_number: r.medical_record_number,
    study_count: Number(r.study_count ?? 0),
    created_at: isoTimestamp(r.created_at),
    updated_at: isoTimestamp(r.updated_at),
  };
}

export async function getPatient(db: Db | Trx, pk: number): Promise<Patient | undefined> {
  const row = await patientRow(db, pk);
  return row && toPatient(row);
}

export async function listPatients(
  db: Db,
  q: { search?: string; limit: number; offset: number },
): Promise<{ total: number; items: Patient[] }> {
  const { total, rows } = await patientRows(db, q);
  return { total, items: rows.map(toPatient) };
}

export class PatientExistsError extends RadiantError {
  constructor(patientId: string) {
    super('conflict', `a patient with Patient ID ${JSON.stringify(patientId)} already exists`, { code: 'patient_exists' });
  }
}

export async function createPatient(db: Db, body: CreatePatientBody, now = new Date()): Promise<Patient> {
  const ts = now.toISOString();
  const name = composePersonName(body.last_name, body.first_name);
  try {
    return await db.transaction(async (trx) => {
      if (await patientExists(trx, body.patient_id, '')) throw new PatientExistsError(body.patient_id);
      const id = await insertPatientRow(trx, {
        patient_id: body.patient_id,
        issuer_of_patient_id: '',
        patient_name: name,
        patient_name_norm: normalizePersonName(name),
        patient_birth_date: body.date_of_birth ? toDicomDate(body.date_of_birth) : null,
        patient_sex: body.gender ?? null,
        first_name: body.first_name,
        last_name: body.last_name,
        contact_phone: body.contact_phone ?? null,
        medical_record_number: body.medical_record_number ?? null,
        created_at: ts,
        updated_at: ts,
      });
      return (await getPatient(trx, id))!;
    });
  } catch (err) {
    // Two creates racing: the unique (patient_id, issuer) index decides.
    if (isUniqueViolation(err)) throw new PatientExistsError(body.patient_id);
    throw err;
  }
}

export class PatientHasStudiesError extends RadiantError {
  constructor(
    readonly studies: number,
    what: string,
  ) {
    super('conflict', `the patient has ${studies} ${studies === 1 ? 'study' : 'studies'}; ${what}`, {
      code: 'patient_has_studies',
      details: { studies },
    });
  }
}

function lockPatient(trx: Trx, pk: number) {
  return lockPatientRow<PatientRow>(trx, pk);
}

export async function updatePatient(db: Db, pk: number, body: UpdatePatientBody, now = new Date()): Promise<Patient | undefined> {
  try {
    return await db.transaction(async (trx) => {
      const row = await lockPatient(trx, pk);
      if (!row) return undefined;
      const changes: PatientColumns = {};
      if (body.patient_id !== undefined && body.patient_id !== row.patient_id) {
        // Stored DICOM carries the old ID and the node never rewrites DICOM.
        const n = await studyCountOfPatient(trx, pk);
        if (n > 0) throw new PatientHasStudiesError(n, 'its Patient ID cannot change');
        if (await patientExists(trx, body.patient_id, row.issuer_of_patient_id)) throw new PatientExistsError(body.patient_id);
        changes.patient_id = body.patient_id;
      }
      if (body.first_name !== undefined || body.last_name !== undefined) {
        const current = toPatient(row);
        const first = body.first_name ?? current.first_name ?? '';
        const last = body.last_name ?? current.last_name ?? '';
        const name = composePersonName(last, first);
        Object.assign(changes, {
          first_name: first || null,
          last_name: last || null,
          patient_name: name,
          patient_name_norm: normalizePersonName(name),
        });
      }
      if (body.date_of_birth !== undefined) {
        changes.patient_birth_date = body.date_of_birth === null ? null : toDicomDate(body.date_of_birth);
      }
      if (body.gender !== undefined) changes.patient_sex = body.gender;
      if (body.contact_phone !== undefined) changes.contact_phone = body.contact_phone;
      if (body.medical_record_number !== undefined) changes.medical_record_number = body.medical_record_number;
      if (Object.keys(changes).length > 0) {
        changes.updated_at = now.toISOString();
        await updatePatientRow(trx, pk, changes);
      }
      return getPatient(trx, pk);
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw new PatientExistsError(body.patient_id ?? '');
    throw err;
  }
}

/**
 * Delete a patient through the one delete path (src/ingest/delete.ts); with `cascade`, its
 * studies, series and instances and everything keyed to them too, in one transaction with the
 * patient row, then the blobs. Without it, a patient that has studies is refused.
 */
export async function deletePatient(
  deps: DeleteDeps,
  pk: number,
  cascade: boolean,
): Promise<{ patient: Patient; summary: DeletionSummary } | undefined> {
  const done = await deleteStored(deps, { level: 'patient', patientPk: pk }, async (trx) => {
    const row = await lockPatient(trx, pk);
    if (!row) return undefined;
    const studies = await studyCountOfPatient(trx, pk);
    if (studies > 0 && !cascade) throw new PatientHasStudiesError(studies, 'delete them first or use ?cascade=true');
    return (await getPatient(trx, pk))!;
  });
  return done && { patient: done.subject, summary: done.summary };
}

/** Every study of the patient, newest first (study date, then arrival). */
export async function patientHistory(db: Db, pk: number): Promise<PatientHistoryItem[]> {
  const rows = await studiesOfPatient(db, pk);
  return rows.map((r) => ({
    id: Number(r.id),
    study_instance_uid: String(r.study_instance_uid),
    study_date: fromDicomDate(r.study_date as string | null),
    study_time: (r.study_time as string | null) ?? null,
    modalities_in_study: splitModalities(r.modalities_in_study as string | null),
    study_description: (r.study_description as string | null) ?? null,
    accession_number: (r.accession_number as string | null) ?? null,
    num_series: Number(r.num_series),
    num_instances: Number(r.num_instances),
    created_at: isoTimestamp(r.created_at),
    analysis_status: (r.analysis_status as string | null) ?? null,
    report_status: (r.report_status as string | null) ?? null,
  }));
}

export function splitModalities(v: string | null): string[] {
  return v ? v.split('\\').filter(Boolean) : [];
}
