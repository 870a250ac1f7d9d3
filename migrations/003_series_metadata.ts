import type { Knex } from 'knex';

/**
 * WADO-RS metadata cache: one row per series holding the series' DICOM JSON (PS3.18 F.2), an
 * array of one data set per instance, built once from the stored headers. A row is valid while
 * the series' num_instances and last_received_at still equal what it was built from
 * (dicomweb/metadata.ts); BulkDataURIs are stored relative (`/studies/…`) and made absolute per
 * request. Not a foreign key on purpose: the cache may be dropped or rebuilt at any time.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('series_metadata', (t) => {
    t.string('series_instance_uid', 64).primary();
    t.timestamp('built_at', { useTz: true }).notNullable();
    t.integer('instance_count').notNullable();
    // series.last_received_at as it was when built, normalised to an ISO string.
    t.string('series_last_received_at', 40).notNullable();
    t.text('json').notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('series_metadata');
}
