import { studyStatusColumns } from '../catalog/study-status.js';
import type { Db } from '../db/connection.js';
import { splitModalities } from './patients.js';
import { fromDicomDate, toDicomDate } from './schemas.js';
import { countOf, isoTimestamp, orderByDescNullsLast } from '../catalog/sql.js';

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

function toStudy(r: Record<string, unknown>): Study {
  const s = (k: string) => (r[k] as string | null | undefined) ?? null;
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
  const base = db('studies as st').join('patients as p', 'p.id', 'st.patient_pk');
  if (f.patient_id !== undefined) base.where('p.patient_id', f.patient_id);
  if (f.accession !== undefined) base.where('st.accession_number', f.accession);
  if (f.date_from !== undefined) base.where('st.study_date', '>=', toDicomDate(f.date_from));
  if (f.date_to !== undefined) base.where('st.study_date', '<=', toDicomDate(f.date_to));
  if (f.modality !== undefined) {
    const modality = f.modality;
    base.whereExists((q) => q.select(db.raw('1')).from('series as se').where('se.study_pk', db.ref('st.id')).where('se.modality', modality));
  }
  const total = await countOf(base);
  const page = base.clone().select([...studyColumns, ...studyStatusColumns(db)]);
  orderByDescNullsLast(page, 'st.study_date');
  orderByDescNullsLast(page, 'st.study_time');
  const rows = (await page.orderBy('st.created_at', 'desc').orderBy('st.id', 'desc').limit(f.limit).offset(f.offset)) as Array<
    Record<string, unknown>
  >;
  return { total, items: rows.map(toStudy) };
}

export async function getStudy(db: Db, ref: { pk: number } | { uid: string }): Promise<(Study & { series: Series[] }) | undefined> {
  const q = db('studies as st').join('patients as p', 'p.id', 'st.patient_pk').select([...studyColumns, ...studyStatusColumns(db)]);
  if ('pk' in ref) q.where('st.id', ref.pk);
  else q.where('st.study_instance_uid', ref.uid);
  const row = (await q.first()) as Record<string, unknown> | undefined;
  if (!row) return undefined;
  const study = toStudy(row);
  const series = (await db('series')
    .select('id', 'series_instance_uid', 'modality', 'series_number', 'series_description', 'body_part_examined', 'num_instances', 'created_at')
    .where('study_pk', study.id)
    .orderByRaw('CASE WHEN series_number IS NULL THEN 1 ELSE 0 END')
    .orderBy('series_number')
    .orderBy('id')) as Array<Record<string, unknown>>;
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

/** For an upload's report: the study and patient each stored instance landed in. */
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
