import type { Knex } from 'knex';

/**
 * How far each audit export (the syslog shipper of src/audit/audit-shipper.ts) has got in
 * audit_logs: the last row id delivered, so a restart resumes where it stopped and a node that
 * was down catches up, without a second table of pending messages.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('audit_export_cursors', (t) => {
    t.string('name', 64).primary();
    t.bigInteger('last_id').notNullable();
    t.string('updated_at', 40).notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('audit_export_cursors');
}
