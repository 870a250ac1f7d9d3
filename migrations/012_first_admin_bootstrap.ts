import type { Knex } from 'knex';

/**
 * The first-admin bootstrap happens once: `POST /api/auth/register` on an empty node inserts the
 * one row this table may hold (primary key 1) in the same transaction as the admin. Concurrent
 * registrations collide on that key (PostgreSQL makes the second insert wait for the first
 * transaction and then fail, under READ COMMITTED too), so exactly one becomes admin.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('auth_bootstrap', (t) => {
    t.integer('id').primary();
    t.integer('user_id').notNullable();
    t.timestamp('at', { useTz: true }).notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('auth_bootstrap');
}
