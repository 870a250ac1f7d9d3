import type { Knex } from 'knex';
import type { Db, Trx } from '../db/connection.js';

/**
 * The index side of retention (src/retention/retention.ts): which studies a rule's criteria
 * select, oldest first, with what protects them (unsigned AI drafts). Deleting them is the one
 * delete path's job (src/ingest/delete.ts).
 */

/** Report states that are not signed: the AI draft and a radiologist's unsigned edit of it. */
const UNSIGNED_REPORT_STATES = ['draft', 'preliminary'];

export interface RetentionCriteria {
  /** study_date: Study Date before `before` (YYYYMMDD); received: last arrival before `before` (ISO timestamp). */
  age: { from: 'study_date' | 'received'; before: string };
  modalities?: readonly string[];
  doors?: readonly string[];
  callingAeTitles?: readonly string[];
  /** true: studies with an unsigned AI draft are not selected at all. */
  excludeUnsignedDrafts: boolean;
}

export interface RetentionCandidateRow {
  study_instance_uid: string;
  patient_id: string;
  study_date: string | null;
  last_received_at: string | Date;
  modalities_in_study: string | null;
  num_instances: number;
  /** Reports in draft/preliminary state plus succeeded analyses nobody has made a report of. */
  unsigned_drafts: number;
}

function unsignedReports(db: Db | Trx): Knex.QueryBuilder {
  return db('reports as r').whereRaw('r.study_instance_uid = st.study_instance_uid').whereIn('r.state', UNSIGNED_REPORT_STATES);
}

/** An AI result that succeeded and was never turned into a report is a draft nobody has signed either. */
function unreviewedAnalyses(db: Db | Trx): Knex.QueryBuilder {
  return db('medgemma_analyses as a')
    .whereRaw('a.study_instance_uid = st.study_instance_uid')
    .where('a.status', 'succeeded')
    .whereNotExists(db('reports as r2').select(db.raw('1')).whereRaw('r2.analysis_id = a.id'));
}

/** Instances of the study `st` that arrived from outside (the node's own AI objects excluded). */
function receivedInstances(db: Db | Trx): Knex.QueryBuilder {
  return db('instances as i').join('series as se', 'se.id', 'i.series_pk').whereRaw('se.study_pk = st.id').whereNot('i.source', 'ai');
}

/**
 * Studies matching the criteria, oldest first, at most `limit`; `studyInstanceUid` narrows to one
 * study (the delete path re-checks a candidate inside its transaction: nothing arrived since).
 */
export async function retentionCandidates(
  db: Db | Trx,
  c: RetentionCriteria,
  opts: { limit: number; studyInstanceUid?: string },
): Promise<RetentionCandidateRow[]> {
  const ageColumn = c.age.from === 'study_date' ? 'st.study_date' : 'st.last_received_at';
  const q = db('studies as st')
    .join('patients as p', 'p.id', 'st.patient_pk')
    .where('st.num_instances', '>', 0)
    .whereNotNull(ageColumn)
    .andWhere(ageColumn, '<', c.age.before)
    .select(
      'st.study_instance_uid',
      'p.patient_id',
      'st.study_date',
      'st.last_received_at',
      'st.modalities_in_study',
      'st.num_instances',
      unsignedReports(db).count('*').as('unsigned_reports'),
      unreviewedAnalyses(db).count('*').as('unreviewed_analyses'),
    )
    .orderBy(ageColumn, 'asc')
    .orderBy('st.id', 'asc')
    .limit(opts.limit);
  // A Study Date that is not a DA value (empty, free text) is no age at all.
  if (c.age.from === 'study_date') q.andWhere('st.study_date', '>=', '00000101');
  if (opts.studyInstanceUid !== undefined) q.where('st.study_instance_uid', opts.studyInstanceUid);
  if (c.modalities?.length) {
    q.whereExists(
      db('series as ms')
        .select(db.raw('1'))
        .whereRaw('ms.study_pk = st.id')
        .whereIn('ms.modality', [...c.modalities]),
    );
  }
  if (c.doors?.length || c.callingAeTitles?.length) {
    const doors = c.doors ? [...c.doors] : undefined;
    const aes = c.callingAeTitles ? [...c.callingAeTitles] : undefined;
    // Every received instance came through the source: a study sent from two places is not one source's to delete.
    q.whereExists(receivedInstances(db).select(db.raw('1')));
    q.whereNotExists(
      receivedInstances(db)
        .select(db.raw('1'))
        .where((w) => {
          if (doors) w.orWhereNotIn('i.source', doors);
          if (aes) w.orWhereNull('i.source_ae_title').orWhereNotIn('i.source_ae_title', aes);
        }),
    );
  }
  if (c.excludeUnsignedDrafts) {
    q.whereNotExists(unsignedReports(db).select(db.raw('1')));
    q.whereNotExists(unreviewedAnalyses(db).select(db.raw('1')));
  }
  const rows = (await q) as Array<
    Omit<RetentionCandidateRow, 'unsigned_drafts'> & { unsigned_reports: unknown; unreviewed_analyses: unknown }
  >;
  return rows.map(({ unsigned_reports, unreviewed_analyses, ...r }) => ({
    ...r,
    num_instances: Number(r.num_instances),
    unsigned_drafts: Number(unsigned_reports) + Number(unreviewed_analyses),
  }));
}
