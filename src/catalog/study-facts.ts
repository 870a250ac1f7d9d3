import type { Db } from '../db/connection.js';

/**
 * What the AI path reads of a study in the index: arrival times for study-stable detection
 * (src/analysis/auto-analyze.ts), patient facts and prior studies for the prompt
 * (src/analysis/prompt-context.ts), body parts and calling AE titles for AUTO_ANALYZE_RULES.
 */

/** A study as study-stable detection weighs it. */
export interface StudyArrivalRow {
  id: number;
  study_instance_uid: string;
  last_received_at: string | Date;
  study_description: string | null;
  modalities_in_study: string | null;
}

const ARRIVAL_COLUMNS = ['id', 'study_instance_uid', 'last_received_at', 'study_description', 'modalities_in_study'];

/** The study, if it still has instances. */
export async function storedStudyArrival(db: Db, studyInstanceUid: string): Promise<StudyArrivalRow | undefined> {
  return (await db('studies').where({ study_instance_uid: studyInstanceUid }).andWhere('num_instances', '>', 0).first(ARRIVAL_COLUMNS)) as
    | StudyArrivalRow
    | undefined;
}

/** Studies with instances whose last arrival lies in [from, to], oldest first. */
export async function studiesReceivedBetween(db: Db, from: Date, to: Date, limit?: number): Promise<StudyArrivalRow[]> {
  const q = db('studies')
    .where('last_received_at', '<=', to.toISOString())
    .andWhere('last_received_at', '>=', from.toISOString())
    .andWhere('num_instances', '>', 0)
    .orderBy('last_received_at', 'asc');
  if (limit !== undefined) q.limit(limit);
  return (await q.select(ARRIVAL_COLUMNS)) as StudyArrivalRow[];
}

export interface PatientStudyFactsRow {
  id: number;
  study_instance_uid: string;
  study_date: string | null;
  study_description: string | null;
  modalities_in_study: string | null;
  created_at: string | Date;
}

/** The patient's other studies (candidates for a prior), in no particular order. */
export async function otherStudiesOfPatient(db: Db, patientPk: number, exceptStudyPk: number): Promise<PatientStudyFactsRow[]> {
  return (await db('studies as st')
    .where('st.patient_pk', patientPk)
    .andWhereNot('st.id', exceptStudyPk)
    .select(
      'st.id',
      'st.study_instance_uid',
      'st.study_date',
      'st.study_description',
      'st.modalities_in_study',
      'st.created_at',
    )) as PatientStudyFactsRow[];
}

/** The study's series with their body part (distinct series and body part pairs). */
export async function seriesBodyParts(db: Db, studyPk: number): Promise<Array<{ id: number; body_part_examined: string | null }>> {
  return (await db('series').where({ study_pk: studyPk }).distinct('body_part_examined', 'id')) as Array<{
    id: number;
    body_part_examined: string | null;
  }>;
}

/** The distinct calling AE titles the instances of these series came from. */
export async function sourceAeTitles(db: Db, seriesPks: number[]): Promise<string[]> {
  const rows = (await db('instances')
    .whereIn('series_pk', seriesPks)
    .whereNotNull('source_ae_title')
    .distinct('source_ae_title')) as Array<{
    source_ae_title: string;
  }>;
  return rows.map((r) => r.source_ae_title);
}
