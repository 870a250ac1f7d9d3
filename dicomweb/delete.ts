import { refreshSeriesCounts, refreshStudyCounts } from '../src/catalog/catalog.js';
import type { RouteDeps } from '../src/http/server.js';
import type { AppContext } from '../src/http/state.js';
import { errorMessage } from '../src/errors.js';
import { resolveInstances, resourcePath } from './resources.js';

/**
 * DELETE /dicom-web/studies/{study}[/series/{series}[/instances/{instance}]] (not part of
 * PS3.18; as dcm4chee-arc / Orthanc offer it), permission `patients:delete` (admin), audited as
 * `dicomweb.delete`. Index rows go first, in one transaction (instances, then series and
 * studies left empty, counts recomputed by the catalog), then the blobs: a blob whose delete
 * fails is an orphan (logged), never an index row pointing at nothing. The patient row stays.
 * The series_metadata cache rows of the touched series are dropped. 204 on success, 404 when the
 * resource is not in the index.
 */

export function deleteHandler(deps: RouteDeps) {
  const { db, storage, log } = deps;
  return async (ctx: AppContext): Promise<void> => {
    const p = resourcePath(ctx);
    ctx.state.audit = { studyInstanceUid: p.study, details: { level: p.level } };
    const instances = await resolveInstances(db, p);
    const seriesPks = [...new Set(instances.map((i) => i.series_pk))];
    const seriesUids = [...new Set(instances.map((i) => i.series_instance_uid))];
    const ids = instances.map((i) => i.id);

    let removedSeries = 0;
    let removedStudy = false;
    await db.transaction(async (trx) => {
      const studyRow = (await trx('studies').select('id').where('study_instance_uid', p.study).first()) as { id: number } | undefined;
      for (let at = 0; at < ids.length; at += 500) await trx('instances').whereIn('id', ids.slice(at, at + 500)).delete();
      for (const pk of seriesPks) {
        await refreshSeriesCounts(trx, pk);
        removedSeries += await trx('series').where({ id: pk, num_instances: 0 }).delete();
      }
      await trx('series_metadata').whereIn('series_instance_uid', seriesUids).delete();
      if (studyRow) {
        const studyPk = Number(studyRow.id);
        await refreshStudyCounts(trx, studyPk);
        removedStudy = (await trx('studies').where({ id: studyPk, num_series: 0 }).delete()) > 0;
      }
    });

    let orphaned = 0;
    for (const i of instances) {
      try {
        await storage.delete(i.storage_key);
      } catch (err) {
        orphaned++;
        log.error({ err: errorMessage(err), requestId: ctx.state.requestId, key: i.storage_key }, 'DICOMweb delete: blob not removed (orphan)');
      }
    }
    ctx.state.audit = {
      studyInstanceUid: p.study,
      resourceId: p.instance ?? p.series ?? p.study,
      details: { level: p.level, instances: instances.length, series: removedSeries, study: removedStudy, orphanedBlobs: orphaned },
    };
    ctx.status = 204;
  };
}
