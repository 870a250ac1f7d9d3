import type { Knex } from 'knex';

/**
 * Index values stored with their NUL padding (issue 17 item 3: PatientName "BRAINIX\0" never
 * matched PatientName=BRAINIX). Ingest now removes padding per VR (src/dicom/vr-values.ts
 * withoutPadding); this removes trailing NULs, and the spaces beside them, from rows indexed
 * before. Only SQLite can hold a NUL in text (PostgreSQL refuses it, so such an instance never
 * got indexed there): on PostgreSQL there is nothing to do.
 *
 * Values the old code clipped (a legacy DA "1997.04.24" indexed as "1997.04.") cannot be
 * restored from the index; re-importing the file (`radiant import`) reindexes it.
 */

const COLUMNS: Record<string, string[]> = {
  // Not patient_id / issuer: they are the patient's key, and trimming one could merge two patients.
  patients: ['patient_name', 'patient_birth_date', 'patient_sex'],
  studies: ['study_date', 'study_time', 'accession_number', 'referring_physician_name', 'study_description', 'study_id'],
  series: [
    'modality',
    'series_description',
    'body_part_examined',
    'performed_procedure_step_start_date',
    'performed_procedure_step_start_time',
  ],
  sequence_items: ['value'],
};

function trimmed(v: string): string {
  return v.replace(/[\0 ]+$/, '').replace(/^[\0 ]+/, '');
}

export async function up(knex: Knex): Promise<void> {
  if (knex.client.config.client !== 'sqlite3') return;
  for (const [table, columns] of Object.entries(COLUMNS)) {
    for (const column of columns) {
      const rows = (await knex(table).select('id', column).whereRaw('instr(??, char(0)) > 0', [column])) as Array<
        Record<string, unknown> & { id: number }
      >;
      for (const row of rows) {
        const value = trimmed(String(row[column]));
        const patch: Record<string, string | null> = { [column]: value === '' && column !== 'value' ? null : value };
        if (table === 'patients' && column === 'patient_name') patch.patient_name_norm = value === '' ? null : value.toUpperCase();
        await knex(table).where('id', row.id).update(patch);
      }
    }
  }
}

export async function down(): Promise<void> {
  // Padding removed is not put back.
}
