import type { Knex } from 'knex';

/**
 * The patient/study/series/instance index. Columns hold exactly the attributes that QIDO-RS and
 * C-FIND match on or return (PS3.18 Table 10.6.1-5, PS3.4 C.6.1.1), so a query never has to open
 * a blob. Dates are DA strings (YYYYMMDD) so range matching is a string comparison that works the
 * same on SQLite and PostgreSQL.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('patients', (t) => {
    t.increments('id').primary();
    t.string('patient_id', 64).notNullable().defaultTo('');
    t.string('issuer_of_patient_id', 64).notNullable().defaultTo('');
    t.string('patient_name', 324);
    // Upper-cased, for case-insensitive PN matching with an index that serves prefix queries.
    t.string('patient_name_norm', 324);
    t.string('patient_birth_date', 8);
    t.string('patient_sex', 16);
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.timestamp('updated_at', { useTz: true }).notNullable();
    t.unique(['patient_id', 'issuer_of_patient_id']);
    t.index(['patient_name_norm']);
  });

  if (knex.client.config.client === 'pg') {
    // PACS search by name and ID prefix ("DOE*"): under a non-C collation PostgreSQL can use a
    // btree for LIKE 'x%' only with the pattern operator class. SQLite serves the same prefix
    // queries from the plain index with GLOB on the upper-cased column.
    await knex.raw('CREATE INDEX patients_name_prefix ON patients (patient_name_norm varchar_pattern_ops)');
    await knex.raw('CREATE INDEX patients_id_prefix ON patients (patient_id varchar_pattern_ops)');
  }

  await knex.schema.createTable('studies', (t) => {
    t.increments('id').primary();
    t.string('study_instance_uid', 64).notNullable().unique();
    t.integer('patient_pk').notNullable().references('id').inTable('patients').onDelete('RESTRICT');
    t.string('study_date', 8);
    t.string('study_time', 16);
    t.string('accession_number', 16);
    t.string('referring_physician_name', 324);
    t.string('study_description', 64);
    t.string('study_id', 16);
    t.string('modalities_in_study', 160);
    t.integer('num_series').notNullable().defaultTo(0);
    t.integer('num_instances').notNullable().defaultTo(0);
    t.timestamp('created_at', { useTz: true }).notNullable();
    // When the latest instance arrived: the analysis pipeline's "study stable" clock.
    t.timestamp('last_received_at', { useTz: true }).notNullable();
    t.index(['patient_pk']);
    t.index(['study_date']);
    t.index(['accession_number']);
    t.index(['last_received_at']);
  });

  await knex.schema.createTable('series', (t) => {
    t.increments('id').primary();
    t.string('series_instance_uid', 64).notNullable().unique();
    t.integer('study_pk').notNullable().references('id').inTable('studies').onDelete('CASCADE');
    t.string('modality', 16);
    t.integer('series_number');
    t.string('series_description', 64);
    t.string('body_part_examined', 16);
    t.string('performed_procedure_step_start_date', 8);
    t.string('performed_procedure_step_start_time', 16);
    t.integer('num_instances').notNullable().defaultTo(0);
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.timestamp('last_received_at', { useTz: true }).notNullable();
    t.index(['study_pk']);
    t.index(['modality']);
  });

  await knex.schema.createTable('instances', (t) => {
    t.increments('id').primary();
    t.string('sop_instance_uid', 64).notNullable().unique();
    t.integer('series_pk').notNullable().references('id').inTable('series').onDelete('CASCADE');
    t.string('sop_class_uid', 64).notNullable();
    t.integer('instance_number');
    t.integer('rows');
    t.integer('columns');
    t.integer('number_of_frames');
    t.string('transfer_syntax_uid', 64).notNullable();
    t.bigInteger('size_bytes').notNullable();
    t.string('storage_key', 512).notNullable();
    // Where it came from: 'dimse' | 'import' | 'stow' | 'upload' | 'ai'.
    t.string('source', 16).notNullable();
    t.string('source_ae_title', 16);
    t.timestamp('stored_at', { useTz: true }).notNullable();
    t.index(['series_pk', 'instance_number']);
    t.index(['sop_class_uid']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('instances');
  await knex.schema.dropTableIfExists('series');
  await knex.schema.dropTableIfExists('studies');
  await knex.schema.dropTableIfExists('patients');
}
