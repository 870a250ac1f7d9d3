import type { Knex } from 'knex';

/**
 * Auto-routing: rules ("an instance matching … goes to node X") and the durable queue of sends.
 * A queue row is written in the same transaction as the instance's index rows (IndexWriter
 * hook), so an acknowledged instance never misses its forward; rows are claimed by one worker at
 * a time (FOR UPDATE SKIP LOCKED on PostgreSQL), retried with back-off, and kept with their
 * outcome for /api/forwarding.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('forwarding_rules', (t) => {
    t.increments('id').primary();
    t.string('name', 128).notNullable();
    t.boolean('enabled').notNullable().defaultTo(true);
    t.integer('node_id').notNullable().references('id').inTable('remote_nodes').onDelete('CASCADE');
    // Match criteria: JSON arrays; an absent or empty list matches anything.
    t.text('match_json').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.schema.createTable('forward_items', (t) => {
    t.bigIncrements('id').primary();
    t.integer('rule_id').nullable().references('id').inTable('forwarding_rules').onDelete('SET NULL');
    t.integer('node_id').notNullable().references('id').inTable('remote_nodes').onDelete('CASCADE');
    t.string('sop_instance_uid', 64).notNullable();
    t.string('study_instance_uid', 64).notNullable();
    /** queued → sending → sent | failed (retried until attempts run out) */
    t.string('status', 16).notNullable();
    t.integer('attempts').notNullable().defaultTo(0);
    t.timestamp('next_attempt_at', { useTz: true }).notNullable();
    t.string('claimed_by', 64).nullable();
    t.timestamp('claimed_at', { useTz: true }).nullable();
    t.text('last_error').nullable();
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.timestamp('sent_at', { useTz: true }).nullable();
    t.index(['status', 'next_attempt_at'], 'forward_items_due');
    t.index(['node_id', 'status'], 'forward_items_node_status');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('forward_items');
  await knex.schema.dropTableIfExists('forwarding_rules');
}
