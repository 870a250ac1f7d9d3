import type { AnalysisConfig } from '../config.js';
import type { Db } from '../db/connection.js';
import type { EventBus } from '../events.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { parseAutoRules, matchingRule, type AutoRule, type StudyTraits } from './auto-rules.js';
import { requestAnalysis, type AnalysisRequester } from './requests.js';

/**
 * Study-stable detection. A study whose last instance arrived more than STUDY_STABLE_SECONDS
 * ago, and that has no automatic analysis for that arrival time yet, is analysed (when
 * AUTO_ANALYZE says so). Every ingest path (C-STORE, STOW-RS, upload, import) moves
 * studies.last_received_at, so each counts as an arrival; later arrivals make the study due
 * again, and the job handler drops a run whose study changed under it.
 *
 * Several nodes may scan the same database: the job queue's dedupe key keeps one pending job
 * per study, and a duplicate analysis of the same arrival is at worst repeated work.
 */

/** Studies older than this are never picked up by a scan (a node switched on later does not analyse its whole archive). */
const LOOKBACK_MS = 24 * 3600_000;
const BATCH = 50;
const NON_IMAGE_MODALITIES = new Set(['SR', 'DOC', 'KO', 'PR', 'SEG', 'RTSTRUCT', 'RTPLAN', 'RTDOSE', 'RTRECORD']);

export const iso = (v: string | Date): string => (v instanceof Date ? v : new Date(v)).toISOString();

interface Candidate {
  id: number;
  study_instance_uid: string;
  last_received_at: string | Date;
  study_description: string | null;
  modalities_in_study: string | null;
}

export class AutoAnalyzer {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly rules: AutoRule[] | undefined;

  constructor(
    private readonly requester: AnalysisRequester,
    private readonly config: AnalysisConfig,
    private readonly log: Logger,
    private readonly events?: EventBus,
  ) {
    this.rules = config.autoAnalyze === 'rules' ? parseAutoRules(config.autoRules) : undefined;
  }

  get enabled(): boolean {
    return this.config.autoAnalyze !== 'off';
  }

  start(): void {
    if (!this.enabled || this.timer) return;
    const tick = () => {
      this.running = this.scan()
        .then(() => undefined)
        .catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'auto-analyze scan failed'))
        .finally(() => {
          if (this.timer) this.timer = setTimeout(tick, this.config.scanMs);
        });
    };
    this.timer = setTimeout(tick, this.config.scanMs);
  }

  async stop(): Promise<void> {
    const t = this.timer;
    this.timer = undefined;
    if (t) clearTimeout(t);
    await this.running;
  }

  /** One pass; returns the analyses it queued. Public for tests and `radiant` tooling. */
  async scan(now = new Date()): Promise<number[]> {
    const db: Db = this.requester.db;
    const cutoff = new Date(now.getTime() - this.config.stableSeconds * 1000);
    const from = new Date(now.getTime() - LOOKBACK_MS);
    const studies = (await db('studies')
      .where('last_received_at', '<=', cutoff.toISOString())
      .andWhere('last_received_at', '>=', from.toISOString())
      .andWhere('num_instances', '>', 0)
      .orderBy('last_received_at', 'asc')
      .limit(BATCH * 4)
      .select('id', 'study_instance_uid', 'last_received_at', 'study_description', 'modalities_in_study')) as Candidate[];
    if (!studies.length) return [];
    const uids = studies.map((s) => s.study_instance_uid);
    const done = (await db('medgemma_analyses').whereIn('study_instance_uid', uids).andWhere({ trigger: 'auto' }).select('study_instance_uid', 'source_received_at')) as Array<{
      study_instance_uid: string;
      source_received_at: string | null;
    }>;
    const seen = new Set(done.map((d) => `${d.study_instance_uid}|${d.source_received_at}`));
    const queued: number[] = [];
    for (const s of studies) {
      if (queued.length >= BATCH) break;
      const received = iso(s.last_received_at);
      if (seen.has(`${s.study_instance_uid}|${received}`)) continue;
      let type: 'primary' | 'comparison' = 'primary';
      if (this.rules) {
        const rule = matchingRule(this.rules, await this.traits(s));
        if (!rule) continue;
        type = rule.analysisType;
      }
      // SR/PDF-only studies (our own results included) are never analysed automatically.
      const mods = (s.modalities_in_study ?? '').split('\\').filter(Boolean);
      if (mods.length && mods.every((m) => NON_IMAGE_MODALITIES.has(m))) continue;
      const a = await requestAnalysis(this.requester, { studyInstanceUid: s.study_instance_uid, analysisType: type, trigger: 'auto', sourceReceivedAt: received });
      queued.push(a.id);
      this.events?.emit('study-stable', { studyInstanceUid: s.study_instance_uid, analysisId: a.id });
      this.log.info({ analysis: a.id, study: s.study_instance_uid, type }, 'study stable: analysis queued');
    }
    return queued;
  }

  private async traits(s: Candidate): Promise<StudyTraits> {
    const db = this.requester.db;
    const series = (await db('series').where({ study_pk: s.id }).distinct('body_part_examined', 'id')) as Array<{ body_part_examined: string | null; id: number }>;
    const aes = (await db('instances')
      .whereIn('series_pk', series.map((x) => x.id))
      .whereNotNull('source_ae_title')
      .distinct('source_ae_title')) as Array<{ source_ae_title: string }>;
    return {
      modalities: (s.modalities_in_study ?? '').split('\\').filter(Boolean),
      bodyParts: series.map((x) => x.body_part_examined).filter((x): x is string => !!x),
      callingAeTitles: aes.map((a) => a.source_ae_title),
      studyDescription: s.study_description,
    };
  }
}
