import type { Knex } from 'knex';
import { isPostgres, type Db } from '../db/connection.js';
import { refreshSeriesCounts, refreshStudyCounts } from './catalog.js';

/**
 * The index side of the one delete path (src/ingest/delete.ts runs it, then removes the blobs):
 * every row keyed to the deleted instances goes in the caller's transaction, so the index never
 * holds half of a deletion.
 *
 * - instances, then series and studies left empty (counts recomputed); a patient's studies and
 *   series all go, and its row with them; sequence_items follow by foreign key;
 * - series_metadata of every touched series (a cache: rebuilt on the next request if the series
 *   survives), volumes of every removed series (they describe images that are gone);
 * - forward_items not yet sent for the deleted instances (work that can no longer be done;
 *   `sent` rows stay: they record that a copy exists elsewhere);
 * - for a study that is removed entirely: its analyses (findings and measurements follow by
 *   foreign key), its reports with their versions (clinical records, but of images that are no
 *   longer here; the audit entry counts them), and the analysis and metadata-prebuild jobs still
 *   pending or running for them, cancelled.
 */

export type DeletionScope =
  | { level: 'patient'; patientPk: number }
  | { level: 'study'; study: string }
  | { level: 'series'; study: string; series: string }
  | { level: 'instance'; study: string; series: string; instance: string };

export interface DeletedRows {
  studies: number;
  series: number;
  instances: number;
  seriesMetadata: number;
  volumes: number;
  forwardItems: number;
  analyses: number;
  reports: number;
  jobsCancelled: number;
  /** Blob keys of the deleted instances, for the caller to remove after the commit. */
  storageKeys: string[];
}

interface ScopedInstance {
  id: number;
  series_pk: number;
  study_pk: number;
  sop_instance_uid: string;
  series_instance_uid: string;
  study_instance_uid: string;
  storage_key: string;
}

const CHUNK = 500;

function chunks<T>(xs: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let at = 0; at < xs.length; at += CHUNK) out.push(xs.slice(at, at + CHUNK));
  return out;
}

/** The instances of the scope (read inside the transaction, so nothing arrives in between unseen). */
function scopedInstances(trx: Knex.Transaction, scope: DeletionScope): Promise<ScopedInstance[]> {
  const q = trx('instances as i')
    .join('series as se', 'se.id', 'i.series_pk')
    .join('studies as st', 'st.id', 'se.study_pk')
    .select('i.id', 'i.series_pk', 'se.study_pk', 'i.sop_instance_uid', 'se.series_instance_uid', 'st.study_instance_uid', 'i.storage_key');
  if (scope.level === 'patient') q.where('st.patient_pk', scope.patientPk);
  else {
    q.where('st.study_instance_uid', scope.study);
    if (scope.level !== 'study') q.where('se.series_instance_uid', scope.series);
    if (scope.level === 'instance') q.where('i.sop_instance_uid', scope.instance);
  }
  return q as unknown as Promise<ScopedInstance[]>;
}

/** Locks a patient row against a concurrent ingest (PostgreSQL; SQLite has one writer anyway). */
export function lockPatientRow<T>(trx: Knex.Transaction, pk: number): Promise<T | undefined> {
  const q = trx('patients').where('id', pk).first();
  // PostgreSQL: ingest upserts the same row first thing, so this serialises against it.
  if (isPostgres(trx as unknown as Db)) q.forUpdate();
  return q as Promise<T | undefined>;
}

/** Deletes the scope's rows and everything keyed to them (see the module comment). */
export async function deleteIndexRows(trx: Knex.Transaction, scope: DeletionScope): Promise<DeletedRows> {
  const instances = await scopedInstances(trx, scope);
  const out: DeletedRows = {
    studies: 0,
    series: 0,
    instances: 0,
    seriesMetadata: 0,
    volumes: 0,
    forwardItems: 0,
    analyses: 0,
    reports: 0,
    jobsCancelled: 0,
    storageKeys: instances.map((i) => i.storage_key),
  };
  for (const ids of chunks(instances.map((i) => Number(i.id)))) out.instances += await trx('instances').whereIn('id', ids).delete();

  // Touched series and studies: the instances', and for a patient every one it has (even empty).
  const touchedSeries = new Map<number, string>();
  const touchedStudies = new Map<number, string>();
  for (const i of instances) {
    touchedSeries.set(Number(i.series_pk), i.series_instance_uid);
    touchedStudies.set(Number(i.study_pk), i.study_instance_uid);
  }
  if (scope.level === 'patient') {
    const studies = (await trx('studies').select('id', 'study_instance_uid').where('patient_pk', scope.patientPk)) as Array<{
      id: number;
      study_instance_uid: string;
    }>;
    for (const s of studies) touchedStudies.set(Number(s.id), s.study_instance_uid);
    const series = (await trx('series')
      .select('id', 'series_instance_uid')
      .whereIn('study_pk', [...touchedStudies.keys()])) as Array<{ id: number; series_instance_uid: string }>;
    for (const s of series) touchedSeries.set(Number(s.id), s.series_instance_uid);
  }

  const removedSeries: string[] = [];
  for (const [pk, uid] of touchedSeries) {
    await refreshSeriesCounts(trx, pk);
    const gone = scope.level === 'patient' ? trx('series').where('id', pk) : trx('series').where({ id: pk, num_instances: 0 });
    if ((await gone.delete()) > 0) removedSeries.push(uid);
  }
  const removedStudies: string[] = [];
  for (const [pk, uid] of touchedStudies) {
    await refreshStudyCounts(trx, pk);
    const gone = scope.level === 'patient' ? trx('studies').where('id', pk) : trx('studies').where({ id: pk, num_series: 0 });
    if ((await gone.delete()) > 0) removedStudies.push(uid);
  }
  out.series = removedSeries.length;
  out.studies = removedStudies.length;

  for (const uids of chunks([...new Set(touchedSeries.values())])) {
    out.seriesMetadata += await trx('series_metadata').whereIn('series_instance_uid', uids).delete();
  }
  for (const uids of chunks(removedSeries)) out.volumes += await trx('volumes').whereIn('series_instance_uid', uids).delete();
  for (const uids of chunks(instances.map((i) => i.sop_instance_uid))) {
    out.forwardItems += await trx('forward_items').whereIn('sop_instance_uid', uids).whereNot('status', 'sent').delete();
  }

  const ts = new Date().toISOString();
  const cancel = (q: Knex.QueryBuilder, reason: string) =>
    q
      .whereIn('status', ['pending', 'running'])
      .update({ status: 'cancelled', error: reason, finished_at: ts, updated_at: ts }) as unknown as Promise<number>;
  for (const uids of chunks(removedSeries)) {
    const keys = uids.map((u) => `prebuild:${u}`);
    out.jobsCancelled += await cancel(trx('jobs').whereIn('dedupe_key', keys), 'series deleted');
  }
  for (const uids of chunks(removedStudies)) {
    const analyses = (await trx('medgemma_analyses').select('id', 'job_id').whereIn('study_instance_uid', uids)) as Array<{
      id: number;
      job_id: number | null;
    }>;
    const jobIds = analyses.map((a) => a.job_id).filter((j): j is number => j !== null);
    for (const ids of chunks(jobIds)) out.jobsCancelled += await cancel(trx('jobs').whereIn('id', ids), 'study deleted');
    const analysisIds = analyses.map((a) => Number(a.id));
    // reports.analysis_id is ON DELETE RESTRICT: reports first (their versions follow by cascade).
    out.reports += await trx('reports').whereIn('study_instance_uid', uids).delete();
    for (const ids of chunks(analysisIds)) {
      out.reports += await trx('reports').whereIn('analysis_id', ids).delete();
      out.analyses += await trx('medgemma_analyses').whereIn('id', ids).delete();
    }
  }
  if (scope.level === 'patient') await trx('patients').where('id', scope.patientPk).delete();
  return out;
}
