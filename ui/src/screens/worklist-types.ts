/** A study as GET /api/studies lists it (src/records/studies.ts). */
export interface StudyItem {
  id: number;
  study_instance_uid: string;
  patient: { id: number; patient_id: string; patient_name: string | null };
  study_date: string | null;
  study_time: string | null;
  study_description: string | null;
  accession_number: string | null;
  modalities_in_study: string[];
  num_series: number;
  num_instances: number;
  analysis: { id: number; status: string; progress: { stage: string | null; percent: number | null } } | null;
  safety_flags: { count: number; blocking: number };
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

export interface StudyPage {
  total: number;
  items: StudyItem[];
  next_cursor: string | null;
}
