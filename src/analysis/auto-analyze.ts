import { autoAnalysisArrivals } from '../catalog/analyses.js';
import type { IndexHook } from '../catalog/index-writer.js';
import {
  seriesBodyParts,
  sourceAeTitles,
  storedStudyArrival,
  studiesReceivedBetween,
  type StudyArrivalRow,
} from '../catalog/study-facts.js';
import { parseAutoRules, type AnalysisConfig, type AutoRule } from '../config.js';
import type { Db, Trx } from '../db/connection.js';
import type { EventBus } from '../events.js';
import type { JobQueue } from '../jobs/queue.js';
import { typedHandler, type JobHandlers } from '../jobs/worker.js';
import type { Logger } from '../logger.js';
import { matchingRule, type StudyTraits } from './auto-rules.js';
import type { Analysis } from './analyses.js';
import { requestAnalysis, type AnalysisRequester } from './requests.js';

/**
 * Study-stable detection, through the job queue. Every arrival that counts (any ingest path:
 * C-STORE, STOW-RS, upload, import; not the node's own AI results, which do not move
 * studies.last_received_at either) pushes its study's one pending `study.stable` job
 * STUDY_STABLE_SECONDS ahead, in the instance's index transaction (`studyStableHook`). The job
 * runs once the study has gone quiet, on whichever node's worker takes it: a study whose last
 * instance arrived more than STUDY_STABLE_SECONDS ago, and that has no automatic analysis for
 * that arrival time yet, is analysed (when AUTO_ANALYZE says so). Later arrivals make the study
 * due again, and the analysis job handler drops a run whose study changed under it.
 *
 * Several nodes may share the database: the dedupe keys keep one pending study.stable job and
 * one pending analysis job per study, so the nodes agree on when a study is stable.
 */

/** The job kind that decides, once a study has gone quiet, whether it is analysed. */
export const STUDY_STABLE_JOB = 'study.stable';

interface StudyStablePayload {
  study: string;
}

function parseStudyStablePayload(p: unknown): StudyStablePayload {
  const study = (p as { study?: unknown } | null)?.study;
  if (typeof study !== 'string' || study.length === 0 || study.length > 64) throw new TypeError('study must be a Study Instance UID');
  return { study };
}

/** What one study.stable run did: the analysis it queued, or why none. */
export interface StudyStableResult {
  analysisId: number | null;
  reason?: string;
}

const stableJob = (study: string, runAt: Date) => ({ kind: STUDY_STABLE_JOB, payload: { study }, dedupeKey: `stable:${study}`, runAt });

/**
 * IndexWriter hook of a node with AUTO_ANALYZE on: the study's study.stable job is (re)scheduled
 * with the instance's rows, or not at all. The node's own AI results (source 'ai') are no
 * arrival: they must not re-open the study they report on.
 */
export function studyStableHook(deps: { jobs: JobQueue; events: EventBus }, stableSeconds: number): IndexHook {
  return async (trx: Trx, rec) => {
    if (rec.instance.source === 'ai') return;
    const runAt = new Date(Date.now() + stableSeconds * 1000);
    await deps.jobs.schedule<StudyStablePayload>(trx, stableJob(rec.study.studyInstanceUid, runAt), 'debounce');
    deps.events.emit('job-due', { kind: STUDY_STABLE_JOB, runAt });
  };
}

/**
 * Studies older than this are never analysed automatically (a node switched on later does not
 * analyse its whole archive).
 */
const LOOKBACK_MS = 24 * 3600_000;
const BATCH = 50;
const NON_IMAGE_MODALITIES = new Set(['SR', 'DOC', 'KO', 'PR', 'SEG', 'RTSTRUCT', 'RTPLAN', 'RTDOSE', 'RTRECORD']);

export const iso = (v: string | Date): string => (v instanceof Date ? v : new Date(v)).toISOString();

type Candidate = StudyArrivalRow;

/** `uid|arrival` of the automatic analyses these studies already have, one per arrival time. */
async function analysedArrivals(db: Db, uids: string[]): Promise<Set<string>> {
  const seen = new Set<string>();
  for (const d of await autoAnalysisArrivals(db, uids)) seen.add(`${d.study_instance_uid}|${d.source_received_at}`);
  return seen;
}

export class AutoAnalyzer {
  private readonly rules: AutoRule[] | undefined;

  constructor(
    private readonly requester: AnalysisRequester,
    private readonly config: AnalysisConfig,
    private readonly log: Logger,
    private readonly events?: EventBus,
    /** Told of each automatic analysis queued (its UPS workitem, src/ups/performer.ts). */
    private readonly onQueued?: (a: Analysis) => Promise<void>,
  ) {
    this.rules = config.autoAnalyze === 'rules' ? parseAutoRules(config.autoRules) : undefined;
  }

  get enabled(): boolean {
    return this.config.autoAnalyze !== 'off';
  }

  /**
   * The study.stable handler, for the worker that runs analyses (its queue is where they go);
   * none when AUTO_ANALYZE is off, so the jobs wait for a node that analyses.
   */
  handlers(): JobHandlers {
    if (!this.enabled) return {};
    return {
      [STUDY_STABLE_JOB]: typedHandler<StudyStablePayload, StudyStableResult>(parseStudyStablePayload, (job) =>
        this.settle(job.payload.study),
      ),
    };
  }

  /**
   * One study.stable run: the study is analysed when it is quiet, arrived within the last 24 h
   * and has no automatic analysis of this arrival yet. Not quiet yet (an arrival on a node with a
   * later clock): the job is scheduled again for when it will be. Safe to repeat.
   */
  async settle(studyInstanceUid: string, now = new Date()): Promise<StudyStableResult> {
    const db = this.requester.db;
    const s = await storedStudyArrival(db, studyInstanceUid);
    if (!s) return { analysisId: null, reason: 'the study is no longer stored' };
    const received = iso(s.last_received_at);
    const stableAt = new Date(new Date(received).getTime() + this.config.stableSeconds * 1000);
    if (stableAt > now) {
      await this.requester.queue.schedule<StudyStablePayload>(db, stableJob(studyInstanceUid, stableAt), 'earliest');
      this.events?.emit('job-due', { kind: STUDY_STABLE_JOB, runAt: stableAt });
      return { analysisId: null, reason: 'not stable yet' };
    }
    if (new Date(received).getTime() < now.getTime() - LOOKBACK_MS) return { analysisId: null, reason: 'last arrival over 24 h ago' };
    if ((await analysedArrivals(db, [studyInstanceUid])).has(`${studyInstanceUid}|${received}`)) {
      return { analysisId: null, reason: 'this arrival is already analysed' };
    }
    const queued = await this.consider(s, received);
    return typeof queued === 'number' ? { analysisId: queued } : { analysisId: null, reason: queued };
  }

  /**
   * At start-up: every study of the last 24 h without an automatic analysis of its last arrival
   * gets its study.stable job (arrivals indexed before these jobs existed, or while AUTO_ANALYZE
   * was off). Returns how many were scheduled.
   */
  async scheduleRecent(now = new Date()): Promise<number> {
    if (!this.enabled) return 0;
    const db = this.requester.db;
    const studies = await studiesReceivedBetween(db, new Date(now.getTime() - LOOKBACK_MS), now);
    const seen = await analysedArrivals(
      db,
      studies.map((s) => s.study_instance_uid),
    );
    const due = studies.filter((s) => !seen.has(`${s.study_instance_uid}|${iso(s.last_received_at)}`));
    if (due.length === 0) return 0;
    const stableMs = this.config.stableSeconds * 1000;
    const at = (s: Candidate) => new Date(Math.max(now.getTime(), new Date(s.last_received_at).getTime() + stableMs));
    await db.transaction(async (trx) => {
      for (const s of due) await this.requester.queue.schedule<StudyStablePayload>(trx, stableJob(s.study_instance_uid, at(s)), 'earliest');
    });
    this.events?.emit('job-due', { kind: STUDY_STABLE_JOB, runAt: at(due[0]!) });
    return due.length;
  }

  /**
   * One pass over the recent studies, without the jobs: analyses every stable one not analysed
   * for its last arrival (up to 50); returns the analyses it queued. For tests and tooling.
   */
  async scan(now = new Date()): Promise<number[]> {
    const db: Db = this.requester.db;
    const cutoff = new Date(now.getTime() - this.config.stableSeconds * 1000);
    const studies = await studiesReceivedBetween(db, new Date(now.getTime() - LOOKBACK_MS), cutoff, BATCH * 4);
    if (!studies.length) return [];
    const seen = await analysedArrivals(
      db,
      studies.map((s) => s.study_instance_uid),
    );
    const queued: number[] = [];
    for (const s of studies) {
      if (queued.length >= BATCH) break;
      const received = iso(s.last_received_at);
      if (seen.has(`${s.study_instance_uid}|${received}`)) continue;
      const id = await this.consider(s, received);
      if (typeof id === 'number') queued.push(id);
    }
    return queued;
  }

  /** AUTO_ANALYZE's rules and the non-image check, then the analysis: its id, or why none. */
  private async consider(s: Candidate, received: string): Promise<number | string> {
    let type: 'primary' | 'comparison' = 'primary';
    if (this.rules) {
      const rule = matchingRule(this.rules, await this.traits(s));
      if (!rule) return 'no AUTO_ANALYZE_RULES rule matches';
      type = rule.analysisType;
    }
    // SR/PDF-only studies (our own results included) are never analysed automatically.
    const mods = (s.modalities_in_study ?? '').split('\\').filter(Boolean);
    if (mods.length && mods.every((m) => NON_IMAGE_MODALITIES.has(m))) return 'no images in the study';
    const a = await requestAnalysis(this.requester, {
      studyInstanceUid: s.study_instance_uid,
      analysisType: type,
      trigger: 'auto',
      sourceReceivedAt: received,
    });
    await this.onQueued?.(a);
    this.events?.emit('study-stable', { studyInstanceUid: s.study_instance_uid, analysisId: a.id });
    this.log.info({ analysis: a.id, study: s.study_instance_uid, type }, 'study stable: analysis queued');
    return a.id;
  }

  private async traits(s: Candidate): Promise<StudyTraits> {
    const db = this.requester.db;
    const series = await seriesBodyParts(db, s.id);
    const aes = await sourceAeTitles(
      db,
      series.map((x) => x.id),
    );
    return {
      modalities: (s.modalities_in_study ?? '').split('\\').filter(Boolean),
      bodyParts: series.map((x) => x.body_part_examined).filter((x): x is string => !!x),
      callingAeTitles: aes,
      studyDescription: s.study_description,
    };
  }
}
