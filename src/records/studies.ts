import { seriesRowsOfStudy, studyRow, studyRows, type StudyRow } from '../catalog/studies.js';
import type { Db } from '../db/connection.js';
import { splitModalities } from './patients.js';
import { fromDicomDate, toDicomDate } from './schemas.js';
import { isoTimestamp } from '../catalog/sql.js';

/** For an upload's report: the study and patient each stored instance landed in. */
export { locateInstances } from '../catalog/studies.js';

/** Studies of the application API, read from the index DICOM ingest writes. */

export interface StudyFilter {
  patient_id?: string;
  modality?: string;
  date_from?: string;
  date_to?: string;
  accession?: string;
  limit: number;
  offset: number;
}

export interface Study {
  id: number;
  study_instance_uid: string;
  patient: { id: number; patient_id: string; issuer_of_patient_id: string; patient_name: string | null };
  study_date: string | null;
  study_time: string | null;
  accession_number: string | null;
  study_description: string | null;
  study_id: string | null;
  referring_physician_name: string | null;
  modalities_in_study: string[];
  num_series: number;
  num_instances: number;
  created_at: string | null;
  last_received_at: string | null;
  /** The latest analysis' status, null when the study has none. */
  analysis_status: string | null;
  /** The latest report's state, null when the study has none. */
  report_status: string | null;
}

export interface Series {
  id: number;
  series_instance_uid: string;
  modality: string | null;
  series_number: number | null;
  series_description: string | null;
  body_part_examined: string | null;
  num_instances: number;
  created_at: string | null;
}

function toStudy(r: StudyRow): Study {
  const s = (k: keyof StudyRow) => (r[k] as string | null | undefined) ?? null;
  return {
    id: Number(r.id),
    study_instance_uid: String(r.study_instance_uid),
    patient: {
      id: Number(r.patient_pk),
      patient_id: String(r.patient_id),
      issuer_of_patient_id: String(r.issuer_of_patient_id ?? ''),
      patient_name: s('patient_name'),
    },
    study_date: fromDicomDate(s('study_date')),
    study_time: s('study_time'),
    accession_number: s('accession_number'),
    study_description: s('study_description'),
    study_id: s('study_id'),
    referring_physician_name: s('referring_physician_name'),
    modalities_in_study: splitModalities(s('modalities_in_study')),
    num_series: Number(r.num_series),
    num_instances: Number(r.num_instances),
    created_at: isoTimestamp(r.created_at),
    last_received_at: isoTimestamp(r.last_received_at),
    analysis_status: s('analysis_status'),
    report_status: s('report_status'),
  };
}

export async function listStudies(db: Db, f: StudyFilter): Promise<{ total: number; items: Study[] }> {
  const { total, rows } = await studyRows(db, {
    patientId: f.patient_id,
    accession: f.accession,
    dateFrom: f.date_from === undefined ? undefined : toDicomDate(f.date_from),
    dateTo: f.date_to === undefined ? undefined : toDicomDate(f.date_to),
    modality: f.modality,
    limit: f.limit,
    offset: f.offset,
  });
  return { total, items: rows.map(toStudy) };
}

export async function getStudy(db: Db, ref: { pk: number } | { uid: string }): Promise<(Study & { series: Series[] }) | undefined> {
  const row = await studyRow(db, ref);
  if (!row) return undefined;
  const study = toStudy(row);
  const series = await seriesRowsOfStudy(db, study.id);
  return {
    ...study,
    series: series.map((r) => ({
      id: Number(r.id),
      series_instance_uid: String(r.series_instance_uid),
      modality: (r.modality as string | null) ?? null,
      series_number: r.series_number === null || r.series_number === undefined ? null : Number(r.series_number),
      series_description: (r.series_description as string | null) ?? null,
      body_part_examined: (r.body_part_examined as string | null) ?? null,
      num_instances: Number(r.num_instances),
      created_at: isoTimestamp(r.created_at),
    })),
  };
}
