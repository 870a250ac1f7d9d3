import type { Knex } from 'knex';

/**
 * A user's professional credentials ("MD", "FRCR"), shown after the name where the user signs:
 * "Jane Doe, MD" in the PDF, the PN suffix of the SR's Verifying Observer Name. Existing users
 * have none until an admin sets them.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    t.string('credentials', 64).nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    t.dropColumn('credentials');
  });
}
