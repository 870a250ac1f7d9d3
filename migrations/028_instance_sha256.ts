import type { Knex } from 'knex';

/**
 * Per-object integrity (issue 21): the SHA-256 of each instance's blob as stored, computed by
 * the ingest path while the file passes anyway and checked on whole-instance reads. Instances
 * stored before this migration have none; the first whole read fills it in (lazily: hashing an
 * archive at upgrade time would hold the start for hours).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('instances', (t) => {
    /** Lower-case hex SHA-256 of the stored blob; null until known. */
    t.string('sha256', 64).nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('instances', (t) => {
    t.dropColumn('sha256');
  });
}
