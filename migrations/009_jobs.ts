import type { Knex } from 'knex';

/**
 * The durable job queue (src/jobs): one row per unit of background work (AI analysis first).
 * pending → running (claimed by one worker, kept alive by heartbeats) → succeeded | failed |
 * cancelled, or back to pending with a later next_run_at after a retryable failure or a lost
 * worker. Rows are kept with their outcome so the API can show them.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('jobs', (t) => {
    t.bigIncrements('id').primary();
    t.string('kind', 64).notNullable();
    t.text('payload').notNullable();
    /** pending | running | succeeded | failed | cancelled */
    t.string('status', 16).notNullable();
    t.integer('attempts').notNullable().defaultTo(0);
    t.integer('max_attempts').notNullable();
    t.timestamp('next_run_at', { useTz: true }).notNullable();
    // Worker ids are hostname:pid:random, and host names may be long.
    t.string('locked_by', 255).nullable();
    t.timestamp('locked_at', { useTz: true }).nullable();
    t.timestamp('heartbeat_at', { useTz: true }).nullable();
    t.text('error').nullable();
    t.text('result').nullable();
    t.string('dedupe_key', 255).nullable();
    t.string('progress_stage', 128).nullable();
    t.integer('progress_percent').nullable();
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.timestamp('updated_at', { useTz: true }).notNullable();
    t.timestamp('finished_at', { useTz: true }).nullable();
    t.index(['status', 'next_run_at'], 'jobs_due');
    t.index(['dedupe_key'], 'jobs_dedupe_key');
  });
  // At most one pending job per dedupe key, whatever races two enqueues run: the database says
  // no rather than the queue hoping. Same syntax on SQLite and PostgreSQL.
  await knex.raw("CREATE UNIQUE INDEX jobs_pending_dedupe ON jobs (dedupe_key) WHERE status = 'pending' AND dedupe_key IS NOT NULL");
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('jobs');
}
