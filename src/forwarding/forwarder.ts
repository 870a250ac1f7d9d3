import { randomUUID } from 'node:crypto';
import type { Db, Trx } from '../db/connection.js';
import type { Logger } from '../logger.js';
import type { AuditLog } from '../audit/audit.js';
import type { BlobStorage } from '../../storage/types.js';
import { findInstance, type IndexResult, type InstanceRecord, type StoredInstanceRow } from '../catalog/catalog.js';
import { getRemoteNode, type RemoteNode } from '../catalog/remote-nodes.js';
import { errorMessage } from '../errors.js';
import type { EventBus } from '../events.js';
import type { JobQueue } from '../jobs/queue.js';
import { typedHandler, type JobHandlers } from '../jobs/worker.js';
import {
  claimBatch,
  enqueueIn,
  getItem,
  markFailed,
  markSent,
  nextDueByNode,
  requeueStale,
  retryFailed,
  type ForwardItem,
  type RetryPolicy,
} from '../catalog/forwarding.js';
import { ruleMatches, type RuleCache } from './rules.js';
import type { InstanceSender, SendOutcome } from './sender.js';
import { stowSend } from './stow-sender.js';

export interface ForwarderOptions {
  batchSize: number;
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
  /** Where each destination's forward.send job is scheduled. */
  jobs: JobQueue;
  events: EventBus;
  /** C-STORE SCU (dimse/cstore-sender.ts, wired by src/app.ts); without it only STOW-RS nodes are served. */
  dimse?: InstanceSender;
}

/** The job kind that sends one destination's due forward items. */
export const FORWARD_JOB = 'forward.send';

export interface ForwardJobPayload {
  nodeId: number;
}

/** The forward.send handler of a node that forwards (FORWARDING on). */
export function forwardJobHandlers(forwarder: Forwarder): JobHandlers {
  return {
    [FORWARD_JOB]: typedHandler<ForwardJobPayload, { sent: number; failed: number }>(parseForwardPayload, (job, ctx) =>
      forwarder.sendDue(job.payload.nodeId, ctx.signal),
    ),
  };
}

function parseForwardPayload(p: unknown): ForwardJobPayload {
  const nodeId = (p as { nodeId?: unknown } | null)?.nodeId;
  if (typeof nodeId !== 'number' || !Number.isInteger(nodeId) || nodeId < 1) throw new TypeError('nodeId must be a positive integer');
  return { nodeId };
}

/**
 * Auto-routing. `hook` (an IndexWriter hook) queues a forward_items row per matching rule in
 * the instance's own index transaction, and in the same transaction (re)schedules that
 * destination's forward.send job FORWARD_SETTLE_MS ahead: each arrival pushes it back, so it
 * runs once the study has gone quiet. The job (`sendDue`, run by any node's job worker) claims
 * the destination's due rows in batches, sends each batch on one association (or one STOW-RS
 * request), records each outcome, and schedules the job again for the earliest retry. Several
 * nodes may share one PostgreSQL: jobs and rows are claimed with SKIP LOCKED.
 */
export class Forwarder {
  readonly workerId = `fwd-${randomUUID().slice(0, 8)}`;

  constructor(
    private readonly deps: ForwarderDeps,
    private readonly opts: ForwarderOptions,
  ) {}

  /** IndexWriter hook: runs inside the index transaction, so it only reads cached rules. */
  readonly hook = async (trx: Trx, rec: InstanceRecord, _res: IndexResult): Promise<void> => {
    const nodes = new Map<number, number>();
    for (const rule of this.deps.rules.current)
      if (ruleMatches(rule.match, rec) && !nodes.has(rule.nodeId)) nodes.set(rule.nodeId, rule.id);
    if (nodes.size === 0) return;
    await enqueueIn(
      trx,
      [...nodes].map(([nodeId, ruleId]) => ({
        nodeId,
        ruleId,
        sopInstanceUid: rec.instance.sopInstanceUid,
        studyInstanceUid: rec.study.studyInstanceUid,
      })),
    );
    const runAt = new Date(Date.now() + this.opts.settleMs);
    // In node order: concurrent index transactions (PostgreSQL) take the job rows' locks in one order.
    for (const nodeId of [...nodes.keys()].sort((a, b) => a - b)) await this.schedule(trx, nodeId, runAt, 'debounce');
  };

  /**
   * Makes sure every destination with unfinished items has its job (at start-up: covers rows
   * queued by a node that had forwarding off, or by a version that had no forward jobs).
   */
  async scheduleAll(): Promise<void> {
    const due = await nextDueByNode(this.deps.db, this.opts.staleMs);
    for (const [nodeId, at] of due) await this.schedule(this.deps.db, nodeId, at, 'earliest');
  }

  /** A failed item back to the queue (attempts reset) and sent soon; false when it was not failed. */
  async retry(id: number): Promise<boolean> {
    const { db } = this.deps;
    if ((await retryFailed(db, { id })) === 0) return false;
    const item = await getItem(db, id);
    if (item) await this.schedule(db, item.nodeId, new Date(), 'earliest');
    return true;
  }

  /**
   * The forward.send job: sends the destination's due items in batches until none is due (or
   * the job is aborted; the batch in flight ends sent, queued or failed), then schedules the
   * next run for the earliest retry or stale claim, whatever happened.
   */
  async sendDue(nodeId: number, signal: AbortSignal): Promise<{ sent: number; failed: number }> {
    const { db } = this.deps;
    const total = { sent: 0, failed: 0 };
    try {
      await requeueStale(db, this.opts.staleMs);
      while (!signal.aborted) {
        const batch = await claimBatch(db, this.workerId, this.opts.batchSize, nodeId);
        if (batch.length === 0) break;
        const r = await this.sendBatch(batch);
        total.sent += r.sent;
        total.failed += r.failed;
      }
    } finally {
      const next = (await nextDueByNode(db, this.opts.staleMs, nodeId)).get(nodeId);
      if (next) await this.schedule(db, nodeId, next, 'earliest');
    }
    return total;
  }

  private async schedule(trx: Trx | Db, nodeId: number, runAt: Date, mode: 'debounce' | 'earliest'): Promise<void> {
    const job = { kind: FORWARD_JOB, payload: { nodeId }, dedupeKey: `forward:${nodeId}`, runAt };
    await this.deps.jobs.schedule<ForwardJobPayload>(trx, job, mode);
    this.deps.events.emit('job-due', { kind: FORWARD_JOB, runAt });
  }

  private async sendBatch(batch: ForwardItem[]): Promise<{ sent: number; failed: number }> {
    const { db, log } = this.deps;
    const node = await getRemoteNode(db, batch[0]!.nodeId);
    const found: Array<{ item: ForwardItem; row: StoredInstanceRow }> = [];
    for (const item of batch) {
      const row = await findInstance(db, item.sopInstanceUid);
      if (row) found.push({ item, row });
      else await markFailed(db, { ...item, attempts: this.opts.retry.maxAttempts }, 'the instance is no longer stored', this.opts.retry);
    }
    if (found.length === 0) return { sent: 0, failed: 0 };
    const started = Date.now();
    let outcomes: SendOutcome[];
    try {
      outcomes = node
        ? await this.sender(node).send(
            node,
            found.map((f) => f.row),
          )
        : found.map((f) => ({ sopInstanceUid: f.row.sop_instance_uid, ok: false, error: 'destination node was removed' }));
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
      details: {
        node: node?.aeTitle ?? batch[0]!.nodeId,
        via: node?.stowUrl ? 'stow-rs' : 'c-store',
        sent: sent.length,
        failed,
        studies: studies.slice(0, 20),
      },
    });
    return { sent: sent.length, failed };
  }

  private sender(node: RemoteNode): InstanceSender {
    if (node.stowUrl) return { send: (n, rows) => stowSend(this.deps.storage, n, rows) };
    if (this.deps.dimse) return this.deps.dimse;
    return {
      send: async (_n, rows) =>
        rows.map((r) => ({ sopInstanceUid: r.sop_instance_uid, ok: false, error: 'C-STORE forwarding is not available on this node' })),
    };
  }
}
