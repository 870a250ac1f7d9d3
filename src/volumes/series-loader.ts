import { listInstances, type StoredInstanceRow } from '../catalog/catalog.js';
import { seriesOfStudy } from '../catalog/studies.js';
import type { Db } from '../db/connection.js';
import type { DicomJsonDataset as JsonDataset } from '../dicom/dicom-json.js';
import { seriesMetadataJson } from '../metadata/series-metadata.js';
import type { BlobStorage } from '../../storage/types.js';
import { sliceHeadersFromJson, type SliceHeader } from './slice-header.js';
import { RadiantError } from '../errors.js';

/** One series of a study as the selection and assembly steps see it. */
export interface SeriesCandidate {
  studyInstanceUid: string;
  seriesInstanceUid: string;
  modality?: string;
  seriesDescription?: string;
  bodyPartExamined?: string;
  seriesNumber?: number;
  /** Instances in the index (image or not). */
  instanceCount: number;
  /** The distinct SOP classes of its instances, for telling images from documents. */
  sopClassUids: string[];
  /** One per frame of every image instance; empty for a series of documents. */
  slices: SliceHeader[];
}

/** The cached series metadata was not a DICOM JSON array (a corrupt cache row): the node's own fault. */
export class SeriesMetadataError extends RadiantError {
  constructor(
    readonly seriesInstanceUid: string,
    message: string,
  ) {
    super('internal', message);
    this.name = 'SeriesMetadataError';
  }
}

function parseDatasets(seriesUid: string, json: string): JsonDataset[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (err) {
    throw new SeriesMetadataError(seriesUid, `series metadata of ${seriesUid} is not JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(parsed)) throw new SeriesMetadataError(seriesUid, `series metadata of ${seriesUid} is not an array`);
  return parsed.filter((d): d is JsonDataset => !!d && typeof d === 'object' && !Array.isArray(d));
}

/**
 * Every series of a study with its slice headers, in series-number order. Headers come from the
 * per-series DICOM JSON cache that WADO-RS metadata uses, so a study that was viewed (or whose
 * metadata was prebuilt) is read without opening a blob, and a study read here is cached for the
 * viewer. An empty array when the study is not in the index; `onlySeries`: that series alone.
 */
export async function loadStudySeries(
  db: Db,
  storage: BlobStorage,
  studyInstanceUid: string,
  onlySeries?: string,
): Promise<SeriesCandidate[]> {
  const rows = (await seriesOfStudy(db, studyInstanceUid)).filter((r) => onlySeries === undefined || r.series_instance_uid === onlySeries);
  if (rows.length === 0) return [];

  const instances = await listInstances(db, { study: studyInstanceUid, series: onlySeries });
  const bySeries = new Map<number, StoredInstanceRow[]>();
  for (const i of instances) {
    const list = bySeries.get(i.series_pk);
    if (list) list.push(i);
    else bySeries.set(i.series_pk, [i]);
  }

  const out: SeriesCandidate[] = [];
  for (const row of rows) {
    const list = bySeries.get(Number(row.id));
    if (!list || list.length === 0) continue; // emptied by a delete meanwhile
    const { json } = await seriesMetadataJson(db, storage, { ...row, id: Number(row.id) }, list);
    const datasets = parseDatasets(row.series_instance_uid, json);
    out.push({
      studyInstanceUid,
      seriesInstanceUid: row.series_instance_uid,
      modality: row.modality ?? undefined,
      seriesDescription: row.series_description ?? undefined,
      bodyPartExamined: row.body_part_examined ?? undefined,
      seriesNumber: row.series_number === null ? undefined : Number(row.series_number),
      instanceCount: list.length,
      sopClassUids: [...new Set(list.map((i) => i.sop_class_uid))],
      slices: datasets.flatMap(sliceHeadersFromJson),
    });
  }
  return out;
}
