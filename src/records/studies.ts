import {
  seriesRowsOfStudy,
  studyCursorValues,
  studyRow,
  studyRows,
  type StudyCursorValues,
  type StudyRow,
  type StudySort,
} from '../catalog/studies.js';
import { SIGNED_REPORT_STATES, UNSIGNED_REPORT_STATES } from '../catalog/study-status.js';
import type { Db } from '../db/connection.js';
import { RadiantError } from '../errors.js';
import { BLOCKING_SAFETY_RULES } from '../reports/auto-publish.js';
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
  patient?: string;
  ai_status?: string;
  report_status?: string;
  sort?: StudySort;
  cursor?: string;
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
  /** The latest analysis (null: none): its status and, while it runs, how far it got. */
  analysis: { id: number; status: string; progress: { stage: string | null; percent: number | null } } | null;
  /** The latest analysis's safety flags: how many, and how many block auto-publishing (BLOCKING_SAFETY_RULES). */
  safety_flags: { count: number; blocking: number };
  /** The latest report (null: none): its state, and who signed it when. */
  report: {
    id: number;
    status: string;
    version: number;
    signed: boolean;
    signed_by: string | null;
    signer_name: string | null;
    signed_at: string | null;
  } | null;
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
    analysis:
      r.analysis_id === null || r.analysis_id === undefined
        ? null
        : {
            id: Number(r.analysis_id),
            status: String(r.analysis_status),
            progress: {
              stage: s('analysis_progress_stage'),
              percent:
                r.analysis_progress_percent === null || r.analysis_progress_percent === undefined
                  ? null
                  : Number(r.analysis_progress_percent),
            },
          },
    safety_flags: flagCounts(r.analysis_safety_flags),
    report:
      r.report_id === null || r.report_id === undefined
        ? null
        : {
            id: Number(r.report_id),
            status: String(r.report_status),
            version: Number(r.report_version),
            signed: (SIGNED_REPORT_STATES as readonly string[]).includes(String(r.report_status)),
            signed_by: s('report_signed_by'),
            signer_name: s('report_signer_name'),
            signed_at: isoTimestamp(r.report_signed_at),
          },
  };
}

function flagCounts(json: string | null): { count: number; blocking: number } {
  if (!json) return { count: 0, blocking: 0 };
  try {
    const flags = JSON.parse(json) as Array<{ rule?: string }>;
    if (!Array.isArray(flags)) return { count: 0, blocking: 0 };
    return { count: flags.length, blocking: flags.filter((f) => BLOCKING_SAFETY_RULES.includes(String(f?.rule))).length };
  } catch {
    return { count: 0, blocking: 0 };
  }
}

/** A page position as the client holds it: the sort and the last row's study id (no names, no dates). */
function encodeCursor(sort: StudySort, id: number): string {
  return Buffer.from(JSON.stringify({ s: sort, id })).toString('base64url');
}

/** The key values to page after: read from the cursor's study, as it is now. */
async function cursorValues(db: Db, sort: StudySort, cursor: string): Promise<StudyCursorValues> {
  let parsed: { s?: unknown; id?: unknown } | undefined;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { s?: unknown; id?: unknown };
  } catch {
    parsed = undefined;
  }
  const id = parsed?.id;
  if (parsed?.s !== sort || typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0) {
    throw new RadiantError('invalid-input', 'cursor is not a next_cursor of this sort', { code: 'invalid_cursor' });
  }
  const row = await studyRow(db, { pk: id });
  if (!row)
    throw new RadiantError('invalid-input', "the cursor's study no longer exists; start from the first page", { code: 'invalid_cursor' });
  return studyCursorValues(sort, row);
}

function reportStates(status: string | undefined): string[] | undefined {
  if (status === undefined) return undefined;
  if (status === 'signed') return [...SIGNED_REPORT_STATES];
  if (status === 'unsigned') return [...UNSIGNED_REPORT_STATES];
  return [status];
}

/**
 * A page of studies and, when more may follow, the cursor of the next page (keyset paging: a
 * deep page costs what the first does).
 */
export async function listStudies(db: Db, f: StudyFilter): Promise<{ total: number; items: Study[]; next_cursor: string | null }> {
  const sort = f.sort ?? 'date';
  const { total, rows } = await studyRows(db, {
    patientId: f.patient_id,
    accession: f.accession,
    dateFrom: f.date_from === undefined ? undefined : toDicomDate(f.date_from),
    dateTo: f.date_to === undefined ? undefined : toDicomDate(f.date_to),
    modality: f.modality,
    patient: f.patient,
    aiStatus: f.ai_status,
    reportStates: reportStates(f.report_status),
    sort,
    after: f.cursor === undefined ? undefined : await cursorValues(db, sort, f.cursor),
    limit: f.limit,
    offset: f.offset,
  });
  const last = rows.at(-1);
  const next_cursor = rows.length === f.limit && last ? encodeCursor(sort, Number(last.id)) : null;
  return { total, items: rows.map(toStudy), next_cursor };
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
