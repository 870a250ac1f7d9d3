import type { Db } from '../db/connection.js';

/**
 * Forwarding rule rows (forwarding_rules). The criteria are stored as JSON text; what they may
 * hold, and their check on the way out, is src/forwarding/rules.ts's business.
 */

export interface ForwardingRuleRecord {
  id: number;
  name: string;
  enabled: boolean;
  nodeId: number;
  /** The parsed match_json, unchecked. */
  match: unknown;
}

interface Row {
  id: number;
  name: string;
  enabled: boolean | number;
  node_id: number;
  match_json: string;
}

function fromRow(r: Row): ForwardingRuleRecord {
  return {
    id: Number(r.id),
    name: r.name,
    enabled: Boolean(r.enabled),
    nodeId: Number(r.node_id),
    match: JSON.parse(r.match_json) as unknown,
  };
}

export async function listRuleRecords(db: Db): Promise<ForwardingRuleRecord[]> {
  return ((await db('forwarding_rules').orderBy('id')) as Row[]).map(fromRow);
}

export async function ruleRecord(db: Db, id: number): Promise<ForwardingRuleRecord | undefined> {
  const r = (await db('forwarding_rules').where({ id }).first()) as Row | undefined;
  return r ? fromRow(r) : undefined;
}

export async function insertRuleRecord(db: Db, rule: Omit<ForwardingRuleRecord, 'id'>): Promise<ForwardingRuleRecord> {
  const now = new Date().toISOString();
  const [row] = (await db('forwarding_rules')
    .insert({
      name: rule.name,
      enabled: rule.enabled,
      node_id: rule.nodeId,
      match_json: JSON.stringify(rule.match),
      created_at: now,
      updated_at: now,
    })
    .returning('*')) as Row[];
  return fromRow(row!);
}

/** Changes the given fields; false when there is no such rule. */
export async function updateRuleRecord(db: Db, id: number, rule: Partial<Omit<ForwardingRuleRecord, 'id'>>): Promise<boolean> {
  const patch: Record<string, unknown> = { updated_at: new Date().toISOString() };
  if (rule.name !== undefined) patch.name = rule.name;
  if (rule.enabled !== undefined) patch.enabled = rule.enabled;
  if (rule.nodeId !== undefined) patch.node_id = rule.nodeId;
  if (rule.match !== undefined) patch.match_json = JSON.stringify(rule.match);
  return (await db('forwarding_rules').where({ id }).update(patch)) > 0;
}

export async function deleteRuleRecord(db: Db, id: number): Promise<boolean> {
  return (await db('forwarding_rules').where({ id }).delete()) > 0;
}
