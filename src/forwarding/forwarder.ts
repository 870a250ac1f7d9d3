import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type { Db } from '../db/connection.js';
import type { Logger } from '../logger.js';
import type { AuditLog } from '../audit/audit.js';
import type { BlobStorage } from '../../storage/types.js';
import { findInstance, type IndexResult, type InstanceRecord, type StoredInstanceRow } from '../catalog/catalog.js';
import { getRemoteNode, type RemoteNode } from '../nodes/remote-nodes.js';
import { errorMessage } from '../errors.js';
import { claimBatch, enqueueIn, markFailed, markSent, requeueStale, type ForwardItem, type RetryPolicy } from './queue.js';
import { ruleMatches, type RuleCache } from './rules.js';
import type { InstanceSender, SendOutcome } from './sender.js';
import { stowSend } from './stow-sender.js';

export interface ForwarderOptions {
  batchSize: number;
  pollMs: number;
  /** A claim older than this is taken to belong to a dead worker. */
  staleMs: number;
  retry: RetryPolicy;
  /** Quiet time after an arrival before sending, so one study goes on one association. */
  settleMs: number;
}

export interface ForwarderDeps {
  db: Db;
  storage: BlobStorage;
  log: Logger;
  audit: AuditLog;
  rules: RuleCache;
  /** C-STORE SCU (src/forwarding/cstore-sender.ts); without it only STOW-RS nodes are served. */
  dimse?: InstanceSender;
}

/**
 * Auto-routing. `hook` (an IndexWriter hook) queues a forward_items row per matching rule in
 * the instance's own index transaction; the worker loop claims due rows one destination at a
 * time, sends them on one association (or one STOW-RS request), and records each outcome.
 * Several nodes may run workers against one PostgreSQL: claims use SKIP LOCKED.
 */
export class Forwarder {
  readonly workerId = `fwd-${randomUUID().slice(0, 8)}`;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = true;
  private idle: Promise<void> = Promise.resolve();

  constructor(private readonly deps: ForwarderDeps, private readonly opts: ForwarderOptions) {}

  /** IndexWriter hook: runs inside the index transaction, so it only reads cached rules. */
  readonly hook = async (trx: Knex.Transaction, rec: InstanceRecord, _res: IndexResult): Promise<void> => {
    const nodes = new Map<number, number>();
    for (const rule of this.deps.rules.current) if (ruleMatches(rule.match, rec) && !nodes.has(rule.nodeId)) nodes.set(rule.nodeId, rule.id);
    if (nodes.size === 0) return;
    await enqueueIn(
      trx,
      [...nodes].map(([nodeId, ruleId]) => ({ nodeId, ruleId, sopInstanceUid: rec.instance.sopInstanceUid, studyInstanceUid: rec.study.studyInstanceUid })),
    );
    this.wake(this.opts.settleMs);
  };

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.wake(0);
  }

  /** Stops the loop after the batch in flight (whose rows end sent, queued or failed). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.idle;
  }

  /** Runs the loop again in `delayMs` (sooner wakes win), e.g. after an arrival or a retry. */
  wake(delayMs = 0): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.run(), delayMs);
    this.timer.unref();
  }

  private async run(): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = true;
    let release!: () => void;
    this.idle = new Promise((r) => (release = r));
    try {
      await requeueStale(this.deps.db, this.opts.staleMs);
      for (;;) {
        if (this.stopped) break;
        const batch = await claimBatch(this.deps.db, this.workerId, this.opts.batchSize);
        if (batch.length === 0) break;
        await this.sendBatch(batch);
      }
    } catch (err) {
      this.deps.log.error({ err: errorMessage(err) }, 'forwarding loop failed');
    } finally {
      this.running = false;
      release();
      if (!this.stopped) this.wake(this.opts.pollMs);
    }
  }

  private async sendBatch(batch: ForwardItem[]): Promise<void> {
    const { db, log } = this.deps;
    const node = await getRemoteNode(db, batch[0]!.nodeId);
    const found: Array<{ item: ForwardItem; row: StoredInstanceRow }> = [];
    for (const item of batch) {
      const row = await findInstance(db, item.sopInstanceUid);
      if (row) found.push({ item, row });
      else await markFailed(db, { ...item, attempts: this.opts.retry.maxAttempts }, 'the instance is no longer stored', this.opts.retry);
    }
    if (found.length === 0) return;
    const started = Date.now();
    let outcomes: SendOutcome[];
    try {
      outcomes = node ? await this.sender(node).send(node, found.map((f) => f.row)) : found.map((f) => ({ sopInstanceUid: f.row.sop_instance_uid, ok: false, error: 'destination node was removed' }));
    } catch (err) {
      outcomes = found.map((f) => ({ sopInstanceUid: f.row.sop_instance_uid, ok: false, error: errorMessage(err) }));
    }
    const bySop = new Map(outcomes.map((o) => [o.sopInstanceUid, o]));
    const sent: number[] = [];
    let failed = 0;
    for (const { item } of found) {
      const o = bySop.get(item.sopInstanceUid);
      if (o?.ok) sent.push(item.id);
      else {
        failed++;
        await markFailed(db, item, o?.error ?? 'no outcome reported', this.opts.retry);
      }
    }
    await markSent(db, sent);
    const studies = [...new Set(found.map((f) => f.item.studyInstanceUid))];
    log.info({ node: node?.aeTitle, sent: sent.length, failed, ms: Date.now() - started }, 'forwarded');
    await this.deps.audit.record({
      actorType: 'system',
      actor: 'forwarder',
      action: 'forward.send',
      resourceType: 'study',
      studyInstanceUid: studies.length === 1 ? studies[0] : undefined,
      outcome: failed === 0 ? 'success' : 'failure',
      details: { node: node?.aeTitle ?? batch[0]!.nodeId, via: node?.stowUrl ? 'stow-rs' : 'c-store', sent: sent.length, failed, studies: studies.slice(0, 20) },
    });
  }

  private sender(node: RemoteNode): InstanceSender {
    if (node.stowUrl) return { send: (n, rows) => stowSend(this.deps.storage, n, rows) };
    if (this.deps.dimse) return this.deps.dimse;
    return { send: async (_n, rows) => rows.map((r) => ({ sopInstanceUid: r.sop_instance_uid, ok: false, error: 'C-STORE forwarding is not available on this node' })) };
  }
}
