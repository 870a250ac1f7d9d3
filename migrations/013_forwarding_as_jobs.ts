import type { Knex } from 'knex';

/**
 * Forwarding runs on the job queue: when a destination's queued forward_items are sent is a
 * `forward.send` job (dedupe key forward:<node id>) instead of a loop of its own polling the
 * table. Every destination that has items queued or in flight gets its job here, due now, so
 * nothing queued before the upgrade waits for a new arrival to be sent. Rows sending when the
 * previous version stopped are re-queued by that job once their claim is stale, as before.
 */
export async function up(knex: Knex): Promise<void> {
  const nodes = (await knex('forward_items').whereIn('status', ['queued', 'sending']).distinct('node_id')) as Array<{
    node_id: number | string;
  }>;
  const ts = new Date().toISOString();
  for (const { node_id } of nodes) {
    const key = `forward:${Number(node_id)}`;
    if (await knex('jobs').where({ dedupe_key: key, status: 'pending' }).first('id')) continue;
    await knex('jobs').insert({
      kind: 'forward.send',
      payload: JSON.stringify({ nodeId: Number(node_id) }),
      status: 'pending',
      attempts: 0,
      // JOB_MAX_ATTEMPTS' default: a migration does not read the configuration.
      max_attempts: 3,
      next_run_at: ts,
      dedupe_key: key,
      created_at: ts,
      updated_at: ts,
    });
  }
}

export async function down(knex: Knex): Promise<void> {
  // The items stay in forward_items, where the previous version's loop finds them.
  await knex('jobs').where({ kind: 'forward.send' }).whereIn('status', ['pending', 'running']).del();
}
