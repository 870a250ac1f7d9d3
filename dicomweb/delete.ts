import type { RouteDeps } from '../src/http/deps.js';
import { HttpError } from '../src/http/errors.js';
import type { AppContext } from '../src/http/state.js';
import { deleteStored, type DeletionScope } from '../src/ingest/delete.js';
import { resourcePath } from './resources.js';

/**
 * DELETE /dicom-web/studies/{study}[/series/{series}[/instances/{instance}]] (not part of
 * PS3.18; as dcm4chee-arc / Orthanc offer it), permission `patients:delete` (admin), audited as
 * `dicomweb.delete`, through the one delete path (src/ingest/delete.ts: index rows and what is
 * keyed to them in one transaction, then the blobs). The patient row stays. 204 on success, 404
 * when the resource is not in the index.
 */

export function deleteHandler(deps: RouteDeps) {
  return async (ctx: AppContext): Promise<void> => {
    const p = resourcePath(ctx);
    ctx.state.audit = { studyInstanceUid: p.study, details: { level: p.level } };
    const scope: DeletionScope =
      p.level === 'study'
        ? { level: 'study', study: p.study }
        : p.level === 'series'
          ? { level: 'series', study: p.study, series: p.series! }
          : { level: 'instance', study: p.study, series: p.series!, instance: p.instance! };
    const done = await deleteStored(deps, scope, async () => true, { requestId: ctx.state.requestId });
    if (!done || done.summary.instances === 0) throw new HttpError(404, 'not_found', `${p.level} not found`);
    const s = done.summary;
    ctx.state.audit = {
      studyInstanceUid: p.study,
      resourceId: p.instance ?? p.series ?? p.study,
      details: {
        level: p.level,
        instances: s.instances,
        series: s.series,
        study: s.studies > 0,
        orphanedBlobs: s.failedKeys.length,
        analyses: s.analyses,
        reports: s.reports,
      },
    };
    ctx.status = 204;
  };
}
