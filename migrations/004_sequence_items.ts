import type { Knex } from 'knex';

/**
 * Items of the sequences the index keeps (src/dicom/indexed-sequences.ts), one row per item
 * attribute: (owner, sequence tag, item number, item attribute tag, value). Rows of a series-level
 * sequence carry series_pk; rows of a study-level one have series_pk NULL. Both foreign keys
 * cascade, so whatever deletes a series or study (DICOMweb DELETE, patient delete, an instance
 * moving out of a series) takes its items with it; the catalog also replaces them on ingest.
 * One row per attribute rather than a column per attribute: a new indexed sequence needs no
 * migration, and item matching is the same SQL for every attribute.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('sequence_items', (t) => {
    t.increments('id').primary();
    t.integer('study_pk').notNullable().references('id').inTable('studies').onDelete('CASCADE');
    t.integer('series_pk').references('id').inTable('series').onDelete('CASCADE');
    t.string('sequence_tag', 8).notNullable();
    t.integer('item_index').notNullable();
    t.string('item_tag', 8).notNullable();
    t.string('value', 64).notNullable();
    // Owner → items (EXISTS from the outer query, returning items), and value → owners (a
    // selective key such as RequestedProcedureID=RP1 can start from the items).
    t.index(['series_pk', 'sequence_tag', 'item_tag'], 'sequence_items_series');
    t.index(['study_pk', 'sequence_tag', 'item_tag'], 'sequence_items_study');
    t.index(['sequence_tag', 'item_tag', 'value'], 'sequence_items_value');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('sequence_items');
}
