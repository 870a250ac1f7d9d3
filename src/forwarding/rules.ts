import { z } from 'zod';
import type { Db } from '../db/connection.js';
import type { InstanceRecord } from '../catalog/catalog.js';
import {
  deleteRuleRecord,
  insertRuleRecord,
  listRuleRecords,
  ruleRecord,
  updateRuleRecord,
  type ForwardingRuleRecord,
} from '../catalog/forwarding-rules.js';

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

const norm = (s: string | undefined) => (s ?? '').trim().toUpperCase();

/**
 * Whether a stored instance meets a rule's criteria. Pure. An instance held back by its ingest
 * caller (an unvalidated model's report objects) meets none: it leaves only when a person sends it.
 */
export function ruleMatches(match: RuleMatch, rec: InstanceRecord): boolean {
  if (rec.instance.holdForwarding) return false;
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

/** A stored rule with its criteria checked: a row another version wrote cannot slip through. */
function checked(r: ForwardingRuleRecord): ForwardingRule {
  return { ...r, match: ruleMatchSchema.parse(r.match) };
}

export async function listRules(db: Db): Promise<ForwardingRule[]> {
  return (await listRuleRecords(db)).map(checked);
}

export async function getRule(db: Db, id: number): Promise<ForwardingRule | undefined> {
  const r = await ruleRecord(db, id);
  return r ? checked(r) : undefined;
}

export async function createRule(db: Db, rule: Omit<ForwardingRule, 'id'>): Promise<ForwardingRule> {
  return checked(await insertRuleRecord(db, rule));
}

export async function updateRule(db: Db, id: number, rule: Partial<Omit<ForwardingRule, 'id'>>): Promise<ForwardingRule | undefined> {
  return (await updateRuleRecord(db, id, rule)) ? getRule(db, id) : undefined;
}

export async function deleteRule(db: Db, id: number): Promise<boolean> {
  return deleteRuleRecord(db, id);
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
