import type { Db } from '../db/connection.js';
import { studyStatusColumns } from './study-status.js';
import { countOf, orderByDescNullsLast } from './sql.js';

/**
 * Studies and their series as the REST API lists them (src/records/studies.ts shapes them): study
 * rows with their patient and latest analysis/report state, a study's series, where instances are.
 */

/** A study with its patient (`patient_pk`…) and status columns (study-status.ts). */
export interface StudyRow {
  id: number | string;
  study_instance_uid: string;
  study_date: string | null;
  study_time: string | null;
  accession_number: string | null;
  study_description: string | null;
  study_id: string | null;
  referring_physician_name: string | null;
  modalities_in_study: string | null;
  num_series: number | string;
  num_instances: number | string;
  created_at: unknown;
  last_received_at: unknown;
  patient_pk: number | string;
  patient_id: string;
  issuer_of_patient_id: string | null;
  patient_name: string | null;
  analysis_status: string | null;
  report_status: string | null;
}

export interface SeriesRow {
  id: number | string;
  series_instance_uid: string;
  modality: string | null;
  series_number: number | string | null;
  series_description: string | null;
  body_part_examined: string | null;
  num_instances: number | string;
  created_at: unknown;
}

/** Filters of the study list; dates as DICOM DA (YYYYMMDD). */
export interface StudyRowFilter {
  patientId?: string;
  /** The patient's index id (FHIR `patient=`). */
  patientPk?: number;
  studyInstanceUid?: string;
  accession?: string;
  dateFrom?: string;
  dateTo?: string;
  /** Studies with a series of this modality. */
  modality?: string;
  limit: number;
  offset: number;
}

const studyColumns = [
  'st.id',
  'st.study_instance_uid',
  'st.study_date',
  'st.study_time',
  'st.accession_number',
  'st.study_description',
  'st.study_id',
  'st.referring_physician_name',
  'st.modalities_in_study',
  'st.num_series',
  'st.num_instances',
  'st.created_at',
  'st.last_received_at',
  'p.id as patient_pk',
  'p.patient_id',
  'p.issuer_of_patient_id',
  'p.patient_name',
];

/** One page of studies, newest first (study date and time, then arrival), and how many match. */
export async function studyRows(db: Db, f: StudyRowFilter): Promise<{ total: number; rows: StudyRow[] }> {
  const base = db('studies as st').join('patients as p', 'p.id', 'st.patient_pk');
  if (f.patientId !== undefined) base.where('p.patient_id', f.patientId);
  if (f.patientPk !== undefined) base.where('p.id', f.patientPk);
  if (f.studyInstanceUid !== undefined) base.where('st.study_instance_uid', f.studyInstanceUid);
  if (f.accession !== undefined) base.where('st.accession_number', f.accession);
  if (f.dateFrom !== undefined) base.where('st.study_date', '>=', f.dateFrom);
  if (f.dateTo !== undefined) base.where('st.study_date', '<=', f.dateTo);
  if (f.modality !== undefined) {
    const modality = f.modality;
    base.whereExists((q) =>
      q.select(db.raw('1')).from('series as se').where('se.study_pk', db.ref('st.id')).where('se.modality', modality),
    );
  }
  const total = await countOf(base);
  const page = base.clone().select([...studyColumns, ...studyStatusColumns(db)]);
  orderByDescNullsLast(page, 'st.study_date');
  orderByDescNullsLast(page, 'st.study_time');
  const rows = (await page.orderBy('st.created_at', 'desc').orderBy('st.id', 'desc').limit(f.limit).offset(f.offset)) as StudyRow[];
  return { total, rows };
}

export async function studyRow(db: Db, ref: { pk: number } | { uid: string }): Promise<StudyRow | undefined> {
  const q = db('studies as st')
    .join('patients as p', 'p.id', 'st.patient_pk')
    .select([...studyColumns, ...studyStatusColumns(db)]);
  if ('pk' in ref) q.where('st.id', ref.pk);
  else q.where('st.study_instance_uid', ref.uid);
  return (await q.first()) as StudyRow | undefined;
}

const seriesColumns = [
  'id',
  'series_instance_uid',
  'modality',
  'series_number',
  'series_description',
  'body_part_examined',
  'num_instances',
  'created_at',
];

/** A series by its UID. */
export async function seriesRow(db: Db, seriesInstanceUid: string): Promise<SeriesRow | undefined> {
  return (await db('series').where({ series_instance_uid: seriesInstanceUid }).first(seriesColumns)) as SeriesRow | undefined;
}

/** A study's series by series number (none last), then arrival. */
export async function seriesRowsOfStudy(db: Db, studyPk: number): Promise<SeriesRow[]> {
  return (await db('series')
    .select(seriesColumns)
    .where('study_pk', studyPk)
    .orderByRaw('CASE WHEN series_number IS NULL THEN 1 ELSE 0 END')
    .orderBy('series_number')
    .orderBy('id')) as SeriesRow[];
}

/** Where stored instances landed: their study (pk and UID), series and Patient ID, by SOP Instance UID. */
export async function locateInstances(
  db: Db,
  sopInstanceUids: string[],
): Promise<Map<string, { studyPk: number; studyInstanceUid: string; seriesInstanceUid: string; patientId: string }>> {
  const out = new Map<string, { studyPk: number; studyInstanceUid: string; seriesInstanceUid: string; patientId: string }>();
  // Chunks keep the IN list well under SQLite's bound-parameter limit.
  for (let i = 0; i < sopInstanceUids.length; i += 500) {
    const rows = (await db('instances as i')
      .join('series as se', 'se.id', 'i.series_pk')
      .join('studies as st', 'st.id', 'se.study_pk')
      .join('patients as p', 'p.id', 'st.patient_pk')
      .select('i.sop_instance_uid', 'st.id as study_pk', 'st.study_instance_uid', 'se.series_instance_uid', 'p.patient_id')
      .whereIn('i.sop_instance_uid', sopInstanceUids.slice(i, i + 500))) as Array<Record<string, unknown>>;
    for (const r of rows) {
      out.set(String(r.sop_instance_uid), {
        studyPk: Number(r.study_pk),
        studyInstanceUid: String(r.study_instance_uid),
        seriesInstanceUid: String(r.series_instance_uid),
        patientId: String(r.patient_id),
      });
    }
  }
  return out;
}

/** A series of a study as the analysis pipeline's loader reads it (src/volumes/series-loader.ts). */
export interface StudySeriesRow {
  id: number;
  series_instance_uid: string;
  num_instances: number;
  last_received_at: unknown;
  modality: string | null;
  series_number: number | null;
  series_description: string | null;
  body_part_examined: string | null;
}

/** Every series of the study (by UID), by series number then arrival; empty when the study is unknown. */
export async function seriesOfStudy(db: Db, studyInstanceUid: string): Promise<StudySeriesRow[]> {
  return (await db('series as se')
    .join('studies as st', 'st.id', 'se.study_pk')
    .where('st.study_instance_uid', studyInstanceUid)
    .select(
      'se.id',
      'se.series_instance_uid',
      'se.num_instances',
      'se.last_received_at',
      'se.modality',
      'se.series_number',
      'se.series_description',
      'se.body_part_examined',
    )
    .orderBy([{ column: 'se.series_number' }, { column: 'se.id' }])) as StudySeriesRow[];
}

/** A study's UID and its patient's ID, by primary key or UID: what a request naming a study resolves to. */
export async function studyIdentity(
  db: Db,
  ref: { pk: number } | { uid: string },
): Promise<{ studyInstanceUid: string; patientId: string } | undefined> {
  const q = db('studies as st').join('patients as p', 'p.id', 'st.patient_pk').select('st.study_instance_uid', 'p.patient_id');
  if ('pk' in ref) q.where('st.id', ref.pk);
  else q.where('st.study_instance_uid', ref.uid);
  const row = (await q.first()) as { study_instance_uid: string; patient_id: string } | undefined;
  return row && { studyInstanceUid: row.study_instance_uid, patientId: row.patient_id };
}

/**
 * A study's attributes with its patient's: what a report (DICOM SR, PDF) restates, the prompt
 * context reads (never the name) and the safety gate needs to recognise an echo of the patient.
 */
export interface StudyFactsRow {
  id: number;
  patient_pk: number;
  study_instance_uid: string;
  accession_number: string | null;
  study_date: string | null;
  study_time: string | null;
  study_id: string | null;
  study_description: string | null;
  referring_physician_name: string | null;
  modalities_in_study: string | null;
  patient_name: string | null;
  patient_id: string;
  issuer_of_patient_id: string;
  patient_birth_date: string | null;
  patient_sex: string | null;
}

export async function studyFacts(db: Db, studyInstanceUid: string): Promise<StudyFactsRow | undefined> {
  return (await db('studies as st')
    .join('patients as p', 'p.id', 'st.patient_pk')
    .where('st.study_instance_uid', studyInstanceUid)
    .first(
      'st.id',
      'st.patient_pk',
      'st.study_instance_uid',
      'st.accession_number',
      'st.study_date',
      'st.study_time',
      'st.study_id',
      'st.study_description',
      'st.referring_physician_name',
      'st.modalities_in_study',
      'p.patient_name',
      'p.patient_id',
      'p.issuer_of_patient_id',
      'p.patient_birth_date',
      'p.patient_sex',
    )) as StudyFactsRow | undefined;
}

/** When the study last received an instance; undefined when it is not in the index. */
export async function studyLastReceivedAt(db: Db, studyInstanceUid: string): Promise<Date | undefined> {
  const row = (await db('studies').where({ study_instance_uid: studyInstanceUid }).first('last_received_at')) as
    | { last_received_at: string | Date }
    | undefined;
  return row && new Date(row.last_received_at);
}
