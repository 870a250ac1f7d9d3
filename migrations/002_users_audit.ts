import type { Knex } from 'knex';

/**
 * Users and roles, the audit trail, and the demographic columns the application API keeps on
 * patients beyond what DICOM carries (one patient table for DICOM ingest and the API).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('users', (t) => {
    t.increments('id').primary();
    t.string('username', 64).notNullable().unique();
    t.string('password_hash', 255).notNullable();
    t.string('role', 16).notNullable();
    t.string('full_name', 128);
    t.boolean('active').notNullable().defaultTo(true);
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.timestamp('last_login_at', { useTz: true });
  });

  await knex.schema.createTable('audit_logs', (t) => {
    t.bigIncrements('id').primary();
    t.timestamp('at', { useTz: true }).notNullable();
    // 'user' | 'ae' (a DICOM peer) | 'anonymous' | 'system'
    t.string('actor_type', 16).notNullable();
    t.string('actor', 64);
    t.string('peer', 64);
    t.string('action', 64).notNullable();
    t.string('resource_type', 32);
    t.string('resource_id', 128);
    t.string('patient_id', 64);
    t.string('study_instance_uid', 64);
    t.string('outcome', 16).notNullable();
    t.integer('status');
    // JSON: counts, reasons, request id. Never PHI beyond the identifiers above.
    t.text('details');
    // For AI actions (later): which model answered and a hash of the prompt it was given.
    t.string('model', 128);
    t.string('prompt_hash', 64);
    t.index(['at']);
    t.index(['actor']);
    t.index(['action']);
    t.index(['patient_id']);
    t.index(['study_instance_uid']);
  });

  await knex.schema.alterTable('patients', (t) => {
    t.string('first_name', 64);
    t.string('last_name', 64);
    t.string('contact_phone', 32);
    t.string('medical_record_number', 64);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('patients', (t) => {
    t.dropColumn('first_name');
    t.dropColumn('last_name');
    t.dropColumn('contact_phone');
    t.dropColumn('medical_record_number');
  });
  await knex.schema.dropTableIfExists('audit_logs');
  await knex.schema.dropTableIfExists('users');
}
