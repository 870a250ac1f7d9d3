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
