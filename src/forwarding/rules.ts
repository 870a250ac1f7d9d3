import { z } from 'zod';
import type { Db } from '../db/connection.js';
import type { InstanceRecord } from '../catalog/catalog.js';

/**
 * Forwarding rules: "when an instance matching these criteria is stored, send it to node X".
 * Every list criterion matches when empty or absent; values compare exactly, except Modality and
 * AE titles, which ignore case and padding. `aiResults` picks the node's own AI results (SR and
 * Encapsulated PDF it stored itself, ingest source `ai`) — "send AI results to the PACS".
 */
export const ruleMatchSchema = z
  .object({
    modalities: z.array(z.string().trim().min(1).max(16)).max(50).optional(),
    callingAeTitles: z.array(z.string().trim().min(1).max(16)).max(50).optional(),
    sopClassUids: z
      .array(
        z
          .string()
          .regex(/^[0-9]+(\.[0-9]+)*$/)
          .max(64),
      )
      .max(100)
      .optional(),
    sources: z
      .array(z.enum(['dimse', 'stow', 'upload', 'import', 'ai']))
      .max(5)
      .optional(),
    aiResults: z.boolean().optional(),
  })
  .strict();
export type RuleMatch = z.infer<typeof ruleMatchSchema>;

export interface ForwardingRule {
  id: number;
  name: string;
  enabled: boolean;
  nodeId: number;
  match: RuleMatch;
}

interface Row {
  id: number;
  name: string;
  enabled: boolean | number;
  node_id: number;
  match_json: string;
}

const norm = (s: string | undefined) => (s ?? '').trim().toUpperCase();

/** Whether a stored instance meets a rule's criteria. Pure. */
export function ruleMatches(match: RuleMatch, rec: InstanceRecord): boolean {
  const some = <T>(list: T[] | undefined, ok: (v: T) => boolean) => !list || list.length === 0 || list.some(ok);
  if (match.aiResults === true && rec.instance.source !== 'ai') return false;
  if (match.aiResults === false && rec.instance.source === 'ai') return false;
  return (
    some(match.modalities, (m) => norm(m) === norm(rec.series.modality)) &&
    some(match.callingAeTitles, (ae) => norm(ae) === norm(rec.instance.sourceAeTitle)) &&
    some(match.sopClassUids, (uid) => uid === rec.instance.sopClassUid) &&
    some(match.sources, (s) => s === rec.instance.source)
  );
}

function fromRow(r: Row): ForwardingRule {
  return {
    id: Number(r.id),
    name: r.name,
    enabled: Boolean(r.enabled),
    nodeId: Number(r.node_id),
    match: ruleMatchSchema.parse(JSON.parse(r.match_json)),
  };
}

export async function listRules(db: Db): Promise<ForwardingRule[]> {
  return ((await db('forwarding_rules').orderBy('id')) as Row[]).map(fromRow);
}

export async function getRule(db: Db, id: number): Promise<ForwardingRule | undefined> {
  const r = (await db('forwarding_rules').where({ id }).first()) as Row | undefined;
  return r ? fromRow(r) : undefined;
}

export async function createRule(db: Db, rule: Omit<ForwardingRule, 'id'>): Promise<ForwardingRule> {
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

export async function updateRule(db: Db, id: number, rule: Partial<Omit<ForwardingRule, 'id'>>): Promise<ForwardingRule | undefined> {
  const patch: Record<string, unknown> = { updated_at: new Date().toISOString() };
  if (rule.name !== undefined) patch.name = rule.name;
  if (rule.enabled !== undefined) patch.enabled = rule.enabled;
  if (rule.nodeId !== undefined) patch.node_id = rule.nodeId;
  if (rule.match !== undefined) patch.match_json = JSON.stringify(rule.match);
  const n = await db('forwarding_rules').where({ id }).update(patch);
  return n ? getRule(db, id) : undefined;
}

export async function deleteRule(db: Db, id: number): Promise<boolean> {
  return (await db('forwarding_rules').where({ id }).delete()) > 0;
}

/**
 * The enabled rules, kept in memory: the ingest hook runs inside the index transaction, which on
 * SQLite holds the only connection, so it must not query. Reloaded every `ttlMs` (other nodes
 * sharing the database may change them) and at once after a change made through this node.
 */
export class RuleCache {
  private rules: ForwardingRule[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Db,
    private readonly ttlMs = 10_000,
  ) {}

  get current(): readonly ForwardingRule[] {
    return this.rules;
  }

  async reload(): Promise<void> {
    this.rules = (await listRules(this.db)).filter((r) => r.enabled);
  }

  async start(onError: (err: unknown) => void): Promise<void> {
    await this.reload();
    this.timer = setInterval(() => void this.reload().catch(onError), this.ttlMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
