import type { Knex } from 'knex';

/**
 * Assembled volumes of the AI analysis pipeline: which series was analysed, in which slice
 * order and with which geometry problems, so a draft can always be traced back to the images it
 * saw. Geometry and order are JSON text (the same on SQLite and PostgreSQL); one row per series,
 * replaced when the series is assembled again.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('volumes', (t) => {
    t.increments('id').primary();
    t.string('study_instance_uid', 64).notNullable();
    t.string('series_instance_uid', 64).notNullable();
    /** volume | projection | single */
    t.string('kind', 16).notNullable();
    t.integer('rows').notNullable();
    t.integer('columns').notNullable();
    t.integer('slice_count').notNullable();
    // mm; null when the images do not say (no Pixel Spacing, or no geometry for the slice axis).
    t.double('spacing_row').nullable();
    t.double('spacing_column').nullable();
    t.double('spacing_slice').nullable();
    t.text('orientation').nullable();
    t.text('normal').nullable();
    t.text('origin').nullable();
    /** [[sopInstanceUid, frameNumber], …] in slice order. */
    t.text('instance_order').notNullable();
    t.text('problems').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.index(['series_instance_uid'], 'volumes_series');
    t.index(['study_instance_uid'], 'volumes_study');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('volumes');
}
