import type { Knex } from 'knex';

/**
 * Reports built on AI analyses and their review: draft (AI) → preliminary (edited) → final
 * (signed) → amended. `reports` holds the current state and content; `report_versions` keeps
 * every version (who, when, what changed, the full content then, and the DICOM objects published
 * for it), so nothing a radiologist saw or signed is ever overwritten.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('reports', (t) => {
    t.increments('id').primary();
    t.string('study_instance_uid', 64).notNullable();
    t.integer('analysis_id').notNullable().references('id').inTable('medgemma_analyses').onDelete('RESTRICT');
    /** draft | preliminary | final | amended */
    t.string('state', 16).notNullable();
    t.integer('version').notNullable();
    t.boolean('include_ai_disclaimer').notNullable();
    /** The editable content (JSON): findings, measurements, impression, comparison, limitations, indication, technique. */
    t.text('content').notNullable();
    t.string('created_by', 64).nullable();
    t.string('signed_by', 64).nullable();
    t.string('signer_name', 324).nullable();
    t.timestamp('signed_at', { useTz: true }).nullable();
    /** The DICOM objects of the current version (each version has its own SR and PDF series). */
    t.string('sr_sop_instance_uid', 64).nullable();
    t.string('pdf_sop_instance_uid', 64).nullable();
    t.string('sr_series_instance_uid', 64).nullable();
    t.string('pdf_series_instance_uid', 64).nullable();
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.timestamp('updated_at', { useTz: true }).notNullable();
    t.index(['study_instance_uid'], 'reports_study');
    t.index(['analysis_id'], 'reports_analysis');
  });

  await knex.schema.createTable('report_versions', (t) => {
    t.increments('id').primary();
    t.integer('report_id').notNullable().references('id').inTable('reports').onDelete('CASCADE');
    t.integer('version').notNullable();
    t.string('state', 16).notNullable();
    /** create | edit | sign | amend */
    t.string('action', 16).notNullable();
    t.string('changed_by', 64).nullable();
    t.timestamp('changed_at', { useTz: true }).notNullable();
    /** What changed: [{field, from, to}] (JSON). */
    t.text('changes').notNullable();
    t.text('content').notNullable();
    t.text('reason').nullable();
    t.string('sr_sop_instance_uid', 64).nullable();
    t.string('pdf_sop_instance_uid', 64).nullable();
    t.unique(['report_id', 'version'], { indexName: 'report_versions_report_version' });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('report_versions');
  await knex.schema.dropTableIfExists('reports');
}
