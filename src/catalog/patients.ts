import type { Db, QueryBuilder, Trx } from '../db/connection.js';
import { normalizePersonName } from './catalog.js';
import { studyStatusColumns } from './study-status.js';
import { countOf, orderByAscNullsLast, orderByDescNullsLast, orWhereMatches } from './sql.js';

/**
 * The patients table as the REST API sees it (src/records/patients.ts holds its rules): rows with
 * their study count, the name/ID search, inserts and updates, and a patient's studies.
 */

export interface PatientRow {
  id: number;
  patient_id: string;
  issuer_of_patient_id: string;
  patient_name: string | null;
  patient_name_norm: string | null;
  patient_birth_date: string | null;
  patient_sex: string | null;
  first_name: string | null;
  last_name: string | null;
  contact_phone: string | null;
  medical_record_number: string | null;
  created_at: unknown;
  updated_at: unknown;
  study_count?: number | string;
}

/** The columns the API writes (ingest writes the DICOM ones through catalog.ts). */
export type PatientColumns = Partial<Omit<PatientRow, 'id' | 'study_count'>>;

function selectPatients(db: Db | Trx) {
  return db('patients as p').select('p.*', db('studies as s').count('*').where('s.patient_pk', db.ref('p.id')).as('study_count'));
}

export async function patientRow(db: Db | Trx, pk: number): Promise<PatientRow | undefined> {
  return (await selectPatients(db).where('p.id', pk).first()) as PatientRow | undefined;
}

/**
 * One page of patients in name order (then id), with the total. `search` matches a family name
 * prefix, a given name prefix or a Patient ID prefix.
 */
export async function patientRows(
  db: Db,
  q: { search?: string; limit: number; offset: number },
): Promise<{ total: number; rows: PatientRow[] }> {
  const search = q.search?.trim();
  const filter = (b: QueryBuilder) => {
    if (!search) return;
    const upper = normalizePersonName(search)!;
    b.where((w) => {
      orWhereMatches(db, w, 'p.patient_name_norm', upper, 'prefix'); // family name
      orWhereMatches(db, w, 'p.patient_name_norm', `^${upper}`, 'contains'); // given name
      orWhereMatches(db, w, 'p.patient_id', search, 'prefix');
    });
  };
  const counted = db('patients as p');
  filter(counted);
  const total = await countOf(counted);
  const page = selectPatients(db);
  filter(page);
  orderByAscNullsLast(page, 'p.patient_name_norm');
  const rows = (await page.orderBy('p.id').limit(q.limit).offset(q.offset)) as PatientRow[];
  return { total, rows };
}

/** Whether a patient with this Patient ID and issuer exists. */
export async function patientExists(trx: Trx, patientId: string, issuer: string): Promise<boolean> {
  return Boolean(await trx('patients').select('id').where({ patient_id: patientId, issuer_of_patient_id: issuer }).first());
}

export async function insertPatientRow(trx: Trx, row: PatientColumns): Promise<number> {
  const [res] = (await trx('patients').insert(row).returning('id')) as Array<{ id: number }>;
  return Number(res!.id);
}

export async function updatePatientRow(trx: Trx, pk: number, changes: PatientColumns): Promise<void> {
  await trx('patients').where('id', pk).update(changes);
}

export async function studyCountOfPatient(trx: Trx, pk: number): Promise<number> {
  return countOf(trx('studies').where('patient_pk', pk));
}

/** A study of a patient's history, with its latest analysis and report state (study-status.ts). */
export interface PatientStudyRow {
  id: number | string;
  study_instance_uid: string;
  study_date: string | null;
  study_time: string | null;
  modalities_in_study: string | null;
  study_description: string | null;
  accession_number: string | null;
  num_series: number | string;
  num_instances: number | string;
  created_at: unknown;
  analysis_status: string | null;
  report_status: string | null;
}

/** Every study of the patient, newest first (study date, then arrival). */
export async function studiesOfPatient(db: Db, pk: number): Promise<PatientStudyRow[]> {
  const q = db('studies as st')
    .select(
      'st.id',
      'st.study_instance_uid',
      'st.study_date',
      'st.study_time',
      'st.modalities_in_study',
      'st.study_description',
      'st.accession_number',
      'st.num_series',
      'st.num_instances',
      'st.created_at',
      ...studyStatusColumns(db),
    )
    .where('st.patient_pk', pk);
  orderByDescNullsLast(q, 'st.study_date');
  orderByDescNullsLast(q, 'st.study_time');
  return (await q.orderBy('st.created_at', 'desc').orderBy('st.id', 'desc')) as PatientStudyRow[];
}

/** The FHIR Patient search: identifier (value, and issuer when the system names one), name prefix, birth date range (DA). */
export interface PatientSearch {
  identifier?: { value: string; issuer?: string };
  name?: string;
  birthFrom?: string;
  birthTo?: string;
  limit: number;
  offset: number;
}

export async function patientSearchRows(db: Db, q: PatientSearch): Promise<{ total: number; rows: PatientRow[] }> {
  const filter = (b: QueryBuilder) => {
    if (q.identifier) {
      b.where('p.patient_id', q.identifier.value);
      if (q.identifier.issuer !== undefined) b.where('p.issuer_of_patient_id', q.identifier.issuer);
    }
    const name = q.name?.trim() && normalizePersonName(q.name.trim());
    if (name) {
      // Any part of the name starting so (FHIR string search): the family name, or a later component.
      b.where((w) => {
        orWhereMatches(db, w, 'p.patient_name_norm', name, 'prefix');
        orWhereMatches(db, w, 'p.patient_name_norm', `^${name}`, 'contains');
      });
    }
    if (q.birthFrom !== undefined) b.where('p.patient_birth_date', '>=', q.birthFrom);
    if (q.birthTo !== undefined) b.where('p.patient_birth_date', '<=', q.birthTo);
  };
  const counted = db('patients as p');
  filter(counted);
  const total = await countOf(counted);
  const page = selectPatients(db);
  filter(page);
  const rows = (await page.orderBy('p.id').limit(q.limit).offset(q.offset)) as PatientRow[];
  return { total, rows };
}
