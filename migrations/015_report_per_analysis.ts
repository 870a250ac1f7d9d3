import type { Knex } from 'knex';

/**
 * One report per analysis, said by the database: `reports.one_per_analysis` holds the report's
 * analysis id and is unique, so two nodes (or a retried job after a crash) that both draft the
 * report of one analysis end with one row; the loser reads the winner's. A column of its own
 * rather than a unique index on analysis_id: nodes before this migration could make several
 * reports of one analysis; the oldest of each keeps the key, the later ones keep NULL (several
 * NULLs are allowed by a unique index on SQLite and PostgreSQL alike).
 *
 * Numbered 015, not 014: 014 is kept for the analysis provenance migration made beside this one.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('reports', (t) => {
    t.integer('one_per_analysis').nullable();
  });
  const firsts = (await knex('reports').groupBy('analysis_id').select('analysis_id').min({ id: 'id' })) as Array<{
    analysis_id: number | string;
    id: number | string;
  }>;
  for (const r of firsts)
    await knex('reports')
      .where({ id: Number(r.id) })
      .update({ one_per_analysis: Number(r.analysis_id) });
  await knex.schema.alterTable('reports', (t) => {
    t.unique(['one_per_analysis'], { indexName: 'reports_one_per_analysis' });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('reports', (t) => {
    t.dropUnique(['one_per_analysis'], 'reports_one_per_analysis');
  });
  await knex.schema.alterTable('reports', (t) => {
    t.dropColumn('one_per_analysis');
  });
}
