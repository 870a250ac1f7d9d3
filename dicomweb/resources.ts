import type { Db } from '../src/db/connection.js';
import { listInstances, type StoredInstanceRow } from '../src/catalog/catalog.js';
import { HttpError } from '../src/http/errors.js';
import type { AppContext } from '../src/http/state.js';
import { isValidUid } from '../src/dicom/uids.js';

/**
 * The study / series / instance a WADO-RS or DELETE path names, resolved against the index:
 * 400 for a malformed UID, 404 for one the index does not hold (or that is not below the
 * resource before it in the path).
 */

export type ResourceLevel = 'study' | 'series' | 'instance';

export interface ResourcePath {
  level: ResourceLevel;
  study: string;
  series?: string;
  instance?: string;
}

/** An instance row of the index (the catalog's shape). */
export type ResolvedInstance = StoredInstanceRow;

export function resourcePath(ctx: AppContext): ResourcePath {
  const { study, series, instance } = ctx.params as Record<string, string | undefined>;
  const check = (v: string | undefined, name: string) => {
    if (v !== undefined && !isValidUid(v)) throw new HttpError(400, 'invalid_uid', `the ${name} in the path is not a valid UID`);
  };
  check(study, 'Study Instance UID');
  check(series, 'Series Instance UID');
  check(instance, 'SOP Instance UID');
  if (study === undefined) throw new HttpError(400, 'invalid_uid', 'no Study Instance UID in the path');
  const level: ResourceLevel = instance !== undefined ? 'instance' : series !== undefined ? 'series' : 'study';
  return { level, study, series, instance };
}

export function resourceUrl(base: string, study: string, series?: string, instance?: string): string {
  let u = `${base}/studies/${study}`;
  if (series !== undefined) u += `/series/${series}`;
  if (instance !== undefined) u += `/instances/${instance}`;
  return u;
}

/** The instances of the resource, series by SeriesNumber then InstanceNumber; 404 when none. */
export async function resolveInstances(db: Db, p: ResourcePath): Promise<ResolvedInstance[]> {
  const rows = await listInstances(db, p);
  if (rows.length === 0) throw new HttpError(404, 'not_found', `${p.level} not found`);
  return rows;
}
