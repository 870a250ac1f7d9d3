import { retentionCandidates, type RetentionCandidateRow, type RetentionCriteria } from '../catalog/retention.js';
import { isoTimestamp } from '../catalog/sql.js';
import type { AuditLog } from '../audit/audit.js';
import type { Db } from '../db/connection.js';
import type { RetentionConfig, RetentionRule } from '../config.js';
import { da } from '../dicom/vr-values.js';
import { errorMessage } from '../errors.js';
import { deleteStored, type DeleteDeps } from '../ingest/delete.js';
import type { JobQueue } from '../jobs/queue.js';
import type { JobHandlers } from '../jobs/worker.js';

/**
 * Retention: RETENTION_RULES (src/config.ts, retentionRule) select studies by age, modality and
 * source; `previewRetention` lists what a run would delete and why (and what it keeps: unsigned
 * AI drafts), deleting nothing; `runRetention` deletes through the one delete path
 * (src/ingest/delete.ts), each study re-checked inside its delete transaction and audited as
 * `retention.delete`, at most RETENTION_MAX_STUDIES_PER_RUN per run. The retention.run job runs
 * it every RETENTION_INTERVAL_MINUTES on the job runner.
 */

export const RETENTION_JOB = 'retention.run';
const DAY_MS = 86_400_000;

export interface RetentionItem {
  rule: string;
  action: 'delete' | 'keep';
  /** Why the rule selects it (age, modality, source), and for `keep` why it stays. */
  reason: string;
  study_instance_uid: string;
  patient_id: string;
  study_date: string | null;
  last_received_at: string;
  modalities: string[];
  instances: number;
  unsigned_drafts: number;
}

export interface RetentionRunResult {
  deleted: RetentionItem[];
  /** Studies whose deletion failed (logged and audited as failures); the next run tries again. */
  failed: number;
  /** True when the run stopped at its bound: more may be due. */
  truncated: boolean;
}

/** The rule as index criteria at `now`. */
function criteria(rule: RetentionRule, now: Date, excludeUnsignedDrafts: boolean): RetentionCriteria {
  const cutoff = new Date(now.getTime() - rule.olderThanDays * DAY_MS);
  return {
    age: rule.ageFrom === 'study_date' ? { from: 'study_date', before: da(cutoff) } : { from: 'received', before: cutoff.toISOString() },
    modalities: rule.modalities,
    doors: rule.doors,
    callingAeTitles: rule.callingAeTitles,
    excludeUnsignedDrafts,
  };
}

function why(rule: RetentionRule): string {
  const parts = [
    rule.ageFrom === 'study_date'
      ? `study date older than ${rule.olderThanDays} days`
      : `last received over ${rule.olderThanDays} days ago`,
  ];
  if (rule.modalities) parts.push(`modality ${rule.modalities.join('/')}`);
  if (rule.doors) parts.push(`received by ${rule.doors.join('/')}`);
  if (rule.callingAeTitles) parts.push(`from ${rule.callingAeTitles.join('/')}`);
  if (rule.deleteUnsignedDrafts) parts.push('unsigned AI drafts included (deleteUnsignedDrafts)');
  return `rule ${rule.name}: ${parts.join(', ')}`;
}

function item(rule: RetentionRule, r: RetentionCandidateRow): RetentionItem {
  const kept = r.unsigned_drafts > 0 && !rule.deleteUnsignedDrafts;
  return {
    rule: rule.name,
    action: kept ? 'keep' : 'delete',
    reason: kept ? `${why(rule)}; kept: ${r.unsigned_drafts} unsigned AI draft(s)` : why(rule),
    study_instance_uid: r.study_instance_uid,
    patient_id: r.patient_id,
    study_date: r.study_date,
    last_received_at: isoTimestamp(r.last_received_at) ?? '',
    modalities: (r.modalities_in_study ?? '').split('\\').filter(Boolean),
    instances: r.num_instances,
    unsigned_drafts: r.unsigned_drafts,
  };
}

/**
 * What a run at `now` would do, rule by rule (a study several rules select is listed once: under
 * the first rule that deletes it, else the first that keeps it), at most `limit` studies per rule.
 */
export async function previewRetention(
  deps: Pick<DeleteDeps, 'db'>,
  rules: readonly RetentionRule[],
  opts: { now?: Date; limit: number },
): Promise<RetentionItem[]> {
  const now = opts.now ?? new Date();
  const out = new Map<string, RetentionItem>();
  for (const rule of rules) {
    for (const row of await retentionCandidates(deps.db, criteria(rule, now, false), { limit: opts.limit })) {
      const next = item(rule, row);
      const prev = out.get(next.study_instance_uid);
      if (!prev || (prev.action === 'keep' && next.action === 'delete')) out.set(next.study_instance_uid, next);
    }
  }
  return [...out.values()];
}

export interface RetentionRunDeps extends DeleteDeps {
  audit: AuditLog;
}

/**
 * Deletes what the rules select at `now`, oldest first, at most `maxStudies`. Each study is
 * selected again inside its delete transaction, so one that received an instance or got an AI
 * draft since the listing stays. `actor`: who started the run (audit); the job is `system`.
 */
export async function runRetention(
  deps: RetentionRunDeps,
  rules: readonly RetentionRule[],
  opts: { now?: Date; maxStudies: number; actor?: { type: 'user' | 'system'; name: string } },
): Promise<RetentionRunResult> {
  const now = opts.now ?? new Date();
  const actor = opts.actor ?? { type: 'system', name: 'retention' };
  const seen = new Set<string>();
  const deleted: RetentionItem[] = [];
  let failed = 0;
  let truncated = false;
  for (const rule of rules) {
    const budget = opts.maxStudies - deleted.length - failed;
    if (budget <= 0) {
      truncated = true;
      break;
    }
    const c = criteria(rule, now, !rule.deleteUnsignedDrafts);
    // One more than the budget: a row left over says the run stopped at its bound.
    const rows = await retentionCandidates(deps.db, c, { limit: budget + seen.size + 1 });
    for (const row of rows) {
      if (seen.has(row.study_instance_uid)) continue;
      if (deleted.length + failed >= opts.maxStudies) {
        truncated = true;
        break;
      }
      seen.add(row.study_instance_uid);
      const entry = item(rule, row);
      const audit = {
        actorType: actor.type,
        actor: actor.name,
        action: 'retention.delete',
        resourceType: 'study',
        resourceId: row.study_instance_uid,
        patientId: row.patient_id,
        studyInstanceUid: row.study_instance_uid,
      } as const;
      try {
        const scope = { level: 'study', study: row.study_instance_uid } as const;
        const done = await deleteStored(
          deps,
          scope,
          async (trx) => (await retentionCandidates(trx, c, { limit: 1, studyInstanceUid: row.study_instance_uid }))[0],
          { retentionRule: rule.name, study: row.study_instance_uid },
        );
        if (!done) continue; // no longer selected: it changed since the listing
        const s = done.summary;
        await deps.audit.record({
          ...audit,
          outcome: 'success',
          details: {
            rule: rule.name,
            reason: entry.reason,
            instances: s.instances,
            series: s.series,
            analyses: s.analyses,
            reports: s.reports,
            blobsDeleted: s.blobsDeleted,
            orphanedBlobs: s.failedKeys.length,
          },
        });
        deleted.push({ ...entry, instances: s.instances });
      } catch (err) {
        failed++;
        deps.log.error({ study: row.study_instance_uid, rule: rule.name, err: errorMessage(err) }, 'retention: study not deleted');
        await deps.audit.record({ ...audit, outcome: 'failure', details: { rule: rule.name, error: errorMessage(err) } });
      }
    }
    if (truncated) break;
  }
  deps.log.info({ deleted: deleted.length, failed, truncated }, 'retention run finished');
  return { deleted, failed, truncated };
}

/** The next retention.run (one pending at a time across every node sharing the database). */
export async function scheduleRetention(deps: { db: Db; queue: JobQueue }, config: RetentionConfig, now = new Date()): Promise<void> {
  if (config.rules.length === 0 || config.intervalMs === 0) return;
  const runAt = new Date(now.getTime() + config.intervalMs);
  await deps.queue.schedule(deps.db, { kind: RETENTION_JOB, payload: {}, dedupeKey: RETENTION_JOB, runAt }, 'earliest', now);
}

/** The retention.run handler: one bounded run, then the next one scheduled (even after a failure: finally). */
export function retentionJobHandlers(deps: RetentionRunDeps & { queue: JobQueue }, config: RetentionConfig): JobHandlers {
  if (config.rules.length === 0 || config.intervalMs === 0) return {};
  return {
    [RETENTION_JOB]: async () => {
      try {
        const r = await runRetention(deps, config.rules, { maxStudies: config.maxStudiesPerRun });
        return { deleted: r.deleted.length, failed: r.failed, truncated: r.truncated };
      } finally {
        await scheduleRetention(deps, config);
      }
    },
  };
}
