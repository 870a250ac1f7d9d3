import type { Knex } from 'knex';

/**
 * Remote DICOM nodes (PACS, workstations, modalities) the node talks to: C-MOVE destinations,
 * forwarding targets, and, when the calling-AE allowlist is on, the peers allowed to call in.
 * A STOW-RS destination (a DICOMweb PACS) is a row with `stow_url` set.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('remote_nodes', (t) => {
    t.increments('id').primary();
    t.string('ae_title', 16).notNullable().unique();
    t.string('host', 255).notNullable();
    t.integer('port').notNullable();
    t.boolean('tls').notNullable().defaultTo(false);
    t.string('description', 255).nullable();
    /** May call the node (allowlist) and be named as a C-MOVE destination. */
    t.boolean('allow_query_retrieve').notNullable().defaultTo(true);
    /** DICOMweb base URL for STOW-RS forwarding instead of C-STORE. */
    t.string('stow_url', 1024).nullable();
    /** Authorization header value for the STOW-RS destination ("Bearer …" / "Basic …"). */
    t.text('stow_authorization').nullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('remote_nodes');
}
