import type { Knex } from 'knex';
import type { Db } from '../db/connection.js';

/**
 * A study's AI and report state as the study lists show it: the status of its latest analysis
 * (queued | running | succeeded | failed | cancelled) and the state of its latest report
 * (draft | preliminary | final | amended), null when it has none. "Latest" is the highest id:
 * rows are only ever inserted in time order. Select columns for a query whose studies row is
 * aliased `st`; both tables are indexed by study_instance_uid.
 */
export function studyStatusColumns(db: Db): Knex.QueryBuilder[] {
  const latest = (table: string, column: string, as: string) =>
    db(`${table} as latest_${as}`)
      .select(`latest_${as}.${column}`)
      .whereRaw(`latest_${as}.study_instance_uid = st.study_instance_uid`)
      .orderBy(`latest_${as}.id`, 'desc')
      .limit(1)
      .as(as);
  return [latest('medgemma_analyses', 'status', 'analysis_status'), latest('reports', 'state', 'report_status')];
}

/**
 * The worklist's view of the same state, as joins (one query per page, no per-row round trip):
 * the latest analysis as `la` (status, progress, safety flags) and the latest report as `lr`
 * (state, who signed and when). Each join's key is the highest id of the study's rows, found
 * through the study_instance_uid indexes.
 */
export function joinLatestStatus(db: Db, q: Knex.QueryBuilder): Knex.QueryBuilder {
  return q
    .leftJoin('medgemma_analyses as la', function () {
      this.on(
        'la.id',
        '=',
        db.raw('(SELECT MAX(la_max.id) FROM medgemma_analyses la_max WHERE la_max.study_instance_uid = st.study_instance_uid)'),
      );
    })
    .leftJoin('reports as lr', function () {
      this.on('lr.id', '=', db.raw('(SELECT MAX(lr_max.id) FROM reports lr_max WHERE lr_max.study_instance_uid = st.study_instance_uid)'));
    });
}

/** The columns joinLatestStatus makes available, named as StudyRow reads them. */
export const latestStatusColumns = [
  'la.id as analysis_id',
  'la.status as analysis_status',
  'la.progress_stage as analysis_progress_stage',
  'la.progress_percent as analysis_progress_percent',
  'la.safety_flags as analysis_safety_flags',
  'lr.id as report_id',
  'lr.state as report_status',
  'lr.version as report_version',
  'lr.signed_by as report_signed_by',
  'lr.signer_name as report_signer_name',
  'lr.signed_at as report_signed_at',
];

/** Report states the worklist groups as "signed"; the others are unsigned drafts. */
export const SIGNED_REPORT_STATES = ['final', 'amended'] as const;
export const UNSIGNED_REPORT_STATES = ['draft', 'preliminary'] as const;
