import type { Db } from '../db/connection.js';
import { replaceVolumeRow, volumeRow, type NewVolumeRow, type VolumeRow } from '../catalog/volumes.js';
import type { AssembledVolume, VolumeKind, VolumeProblem } from './assemble.js';
import { RadiantError } from '../errors.js';

/** A saved volume: the assembly's outcome without the slice headers (the index has those). */
export interface StoredVolume {
  id: number;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  kind: VolumeKind;
  dimensions: { rows: number; columns: number; slices: number };
  spacing: { row?: number; column?: number; slice?: number };
  orientation?: number[];
  normal?: [number, number, number];
  origin?: [number, number, number];
  /** [sopInstanceUid, frameNumber] in slice order. */
  instanceOrder: Array<[string, number]>;
  problems: VolumeProblem[];
  createdAt: string;
}

/** A stored row that does not decode (edited by hand, or written by a newer version): the node's own fault. */
export class VolumeRowError extends RadiantError {
  constructor(
    readonly seriesInstanceUid: string,
    message: string,
  ) {
    super('internal', message);
    this.name = 'VolumeRowError';
  }
}

const KINDS: readonly VolumeKind[] = ['volume', 'projection', 'single'];

const json = (v: unknown): string | null => (v === undefined ? null : JSON.stringify(v));
const numOrNull = (v: number | undefined): number | null => (v === undefined || !Number.isFinite(v) ? null : v);
const numOrUndef = (v: number | string | null): number | undefined => (v === null ? undefined : Number(v));

function isNumberArray(v: unknown, length?: number): v is number[] {
  return Array.isArray(v) && (length === undefined || v.length === length) && v.every((x) => typeof x === 'number');
}

function parse(row: VolumeRow, column: keyof VolumeRow): unknown {
  const text = row[column];
  if (text === null || text === undefined) return undefined;
  try {
    return JSON.parse(String(text));
  } catch {
    throw new VolumeRowError(row.series_instance_uid, `volumes.${column} of ${row.series_instance_uid} is not JSON`);
  }
}

function vector(row: VolumeRow, column: 'orientation' | 'normal' | 'origin', length: number): number[] | undefined {
  const v = parse(row, column);
  if (v === undefined || v === null) return undefined;
  if (!isNumberArray(v, length)) throw new VolumeRowError(row.series_instance_uid, `volumes.${column} is not ${length} numbers`);
  return v;
}

function decode(row: VolumeRow): StoredVolume {
  const uid = row.series_instance_uid;
  if (!KINDS.includes(row.kind as VolumeKind)) throw new VolumeRowError(uid, `unknown volume kind ${row.kind}`);
  const order = parse(row, 'instance_order');
  if (!Array.isArray(order) || !order.every((e) => Array.isArray(e) && typeof e[0] === 'string' && typeof e[1] === 'number')) {
    throw new VolumeRowError(uid, 'volumes.instance_order is not [[uid, frame], …]');
  }
  const problems = parse(row, 'problems');
  if (!Array.isArray(problems) || !problems.every((p) => p && typeof p === 'object' && typeof (p as VolumeProblem).code === 'string')) {
    throw new VolumeRowError(uid, 'volumes.problems is not a problem list');
  }
  const normal = vector(row, 'normal', 3);
  const origin = vector(row, 'origin', 3);
  const spacing: StoredVolume['spacing'] = {};
  if (row.spacing_row !== null) spacing.row = numOrUndef(row.spacing_row);
  if (row.spacing_column !== null) spacing.column = numOrUndef(row.spacing_column);
  if (row.spacing_slice !== null) spacing.slice = numOrUndef(row.spacing_slice);
  return {
    id: Number(row.id),
    studyInstanceUid: row.study_instance_uid,
    seriesInstanceUid: uid,
    kind: row.kind as VolumeKind,
    dimensions: { rows: Number(row.rows), columns: Number(row.columns), slices: Number(row.slice_count) },
    spacing,
    orientation: vector(row, 'orientation', 6),
    normal: normal as [number, number, number] | undefined,
    origin: origin as [number, number, number] | undefined,
    instanceOrder: order as Array<[string, number]>,
    problems: problems as VolumeProblem[],
    createdAt: row.created_at instanceof Date ? row.created_at.toISOString() : String(row.created_at),
  };
}

/** Saves a volume, replacing the one saved before for the same series. Returns the row id. */
export async function saveVolume(db: Db, studyInstanceUid: string, vol: AssembledVolume, now = new Date()): Promise<number> {
  const row: NewVolumeRow = {
    study_instance_uid: studyInstanceUid,
    series_instance_uid: vol.seriesInstanceUid,
    kind: vol.kind,
    rows: vol.dimensions.rows,
    columns: vol.dimensions.columns,
    slice_count: vol.dimensions.slices,
    spacing_row: numOrNull(vol.spacing.row),
    spacing_column: numOrNull(vol.spacing.column),
    spacing_slice: numOrNull(vol.spacing.slice),
    orientation: json(vol.orientation),
    normal: json(vol.normal),
    origin: json(vol.origin),
    instance_order: JSON.stringify(vol.slices.map((s) => [s.sopInstanceUid, s.frameNumber])),
    problems: JSON.stringify(vol.problems),
    created_at: now.toISOString(),
  };
  return replaceVolumeRow(db, row);
}

/** The saved volume of a series, or undefined when none was saved. */
export async function getVolume(db: Db, seriesInstanceUid: string): Promise<StoredVolume | undefined> {
  const row = await volumeRow(db, seriesInstanceUid);
  return row && decode(row);
}
