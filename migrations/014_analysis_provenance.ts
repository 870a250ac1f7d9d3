import type { Knex } from 'knex';

/**
 * An analysis' full provenance (issue 15): `model_identity` holds the model as the engine
 * identified it (validated or not and why, architecture, size, parameters, the mmproj and its
 * pairing), `provenance` the digests of what was sent (system prompt, user prompt, schema,
 * sampling parameters, every image), the llama.cpp build, token counts, finish_reason and
 * timings. Both JSON; analyses stored before have neither.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('medgemma_analyses', (t) => {
    t.text('model_identity').nullable();
    t.text('provenance').nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('medgemma_analyses', (t) => {
    t.dropColumn('model_identity');
    t.dropColumn('provenance');
  });
}
