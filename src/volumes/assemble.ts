import { dominantOrientation, dot, median, sliceNormal, type Vec3 } from './geometry.js';
import { PROJECTION_MODALITIES } from './kinds.js';
import type { SeriesCandidate } from './series-loader.js';
import type { SliceHeader } from './slice-header.js';

export type VolumeKind = 'volume' | 'projection' | 'single';

export type VolumeProblemCode = 'gap' | 'duplicate_position' | 'mixed_orientation' | 'mixed_size' | 'no_geometry' | 'irregular_spacing';

export interface VolumeProblem {
  code: VolumeProblemCode;
  detail: string;
  sopInstanceUids?: string[];
}

export interface AssembledVolume {
  seriesInstanceUid: string;
  modality?: string;
  kind: VolumeKind;
  /** Ordered along the normal (or by Instance Number without geometry), duplicates removed. */
  slices: SliceHeader[];
  dimensions: { rows: number; columns: number; slices: number };
  /** mm; row/column absent when the images carry neither Pixel Spacing nor Imager Pixel Spacing. */
  spacing: { row?: number; column?: number; slice?: number };
  orientation?: number[];
  normal?: Vec3;
  /** Image Position of the first slice. */
  origin?: Vec3;
  /** Each slice's position along the normal (mm), in slice order; empty without geometry. */
  positions: number[];
  problems: VolumeProblem[];
}

/** Two slices closer than this along the normal are the same place (DS values carry rounding). */
const SAME_POSITION_MM = 0.01;
/** A gap this many times the median is a missing slice. */
const GAP_FACTOR = 1.5;
/** Other spacings further than this from the median (relative) are irregular. */
const IRREGULAR_TOLERANCE = 0.1;
/** Problem lists name at most this many instances; the detail gives the count. */
const MAX_UIDS = 50;

/** Modality value × stored value + intercept: HU for CT (PS3.3 C.11.1.1.2). */
export function huOf(slice: Pick<SliceHeader, 'rescaleSlope' | 'rescaleIntercept'>, storedValue: number): number {
  return storedValue * slice.rescaleSlope + slice.rescaleIntercept;
}

const uidsOf = (slices: readonly SliceHeader[]): string[] => [...new Set(slices.map((s) => s.sopInstanceUid))].slice(0, MAX_UIDS);

const label = (s: SliceHeader): string => (s.frameNumber > 1 ? `${s.sopInstanceUid} frame ${s.frameNumber}` : s.sopInstanceUid);

function byInstanceNumber(a: SliceHeader, b: SliceHeader): number {
  const ia = a.instanceNumber ?? Number.POSITIVE_INFINITY;
  const ib = b.instanceNumber ?? Number.POSITIVE_INFINITY;
  if (ia !== ib) return ia < ib ? -1 : 1;
  if (a.frameNumber !== b.frameNumber) return a.frameNumber - b.frameNumber;
  return a.sopInstanceUid < b.sopInstanceUid ? -1 : a.sopInstanceUid > b.sopInstanceUid ? 1 : 0;
}

function inPlaneSpacing(slices: readonly SliceHeader[]): { row?: number; column?: number } {
  const s = slices.find((x) => x.pixelSpacing) ?? slices.find((x) => x.imagerPixelSpacing);
  const ps = s?.pixelSpacing ?? s?.imagerPixelSpacing;
  return ps ? { row: ps[0], column: ps[1] } : {};
}

/** The most common Rows × Columns; slices of another size are reported. */
function sizeCheck(slices: readonly SliceHeader[], problems: VolumeProblem[]): { rows: number; columns: number } {
  const counts = new Map<string, { rows: number; columns: number; n: number }>();
  for (const s of slices) {
    const k = `${s.rows}x${s.columns}`;
    const c = counts.get(k);
    if (c) c.n++;
    else counts.set(k, { rows: s.rows, columns: s.columns, n: 1 });
  }
  let best: { rows: number; columns: number; n: number } | undefined;
  for (const c of counts.values()) if (!best || c.n > best.n) best = c;
  if (!best) return { rows: 0, columns: 0 };
  if (counts.size > 1) {
    const odd = slices.filter((s) => s.rows !== best.rows || s.columns !== best.columns);
    const sizes = [...counts.keys()].join(', ');
    problems.push({
      code: 'mixed_size',
      detail: `${odd.length} of ${slices.length} slices are not ${best.rows}x${best.columns} (sizes: ${sizes})`,
      sopInstanceUids: uidsOf(odd),
    });
  }
  return { rows: best.rows, columns: best.columns };
}

function seriesFields(input: SeriesCandidate | SliceHeader[]): { seriesInstanceUid: string; modality?: string; slices: SliceHeader[] } {
  if (Array.isArray(input)) {
    return { seriesInstanceUid: input[0]?.seriesInstanceUid ?? '', modality: input.find((s) => s.modality)?.modality, slices: input };
  }
  return {
    seriesInstanceUid: input.seriesInstanceUid,
    modality: input.modality ?? input.slices.find((s) => s.modality)?.modality,
    slices: input.slices,
  };
}

/**
 * Orders a series' slices into a volume and says what is wrong with it. Nothing here throws on
 * bad data: a study that reaches analysis is already stored, and the caller decides from the
 * problems whether the volume is good enough.
 *
 * Slices are sorted by the projection of Image Position (Patient) on the normal of the dominant
 * Image Orientation (PS3.3 C.7.6.2.1.1), not by Instance Number or Slice Location, which
 * scanners number in either direction and some leave out.
 */
export function assembleVolume(input: SeriesCandidate | SliceHeader[]): AssembledVolume {
  const { seriesInstanceUid, modality, slices: all } = seriesFields(input);
  const problems: VolumeProblem[] = [];
  const projection = modality !== undefined && PROJECTION_MODALITIES.has(modality.toUpperCase());

  if (projection || all.length <= 1) {
    const slices = [...all].sort(byInstanceNumber);
    // Projection views (a PA and a lateral) legitimately differ in size: nothing to report.
    const size = sizeCheck(slices, []);
    const s0 = slices[0];
    return {
      seriesInstanceUid,
      modality,
      kind: projection && slices.length > 0 ? 'projection' : 'single',
      slices,
      dimensions: { ...size, slices: slices.length },
      spacing: inPlaneSpacing(slices),
      orientation: s0?.imageOrientationPatient ? [...s0.imageOrientationPatient] : undefined,
      normal: s0?.imageOrientationPatient ? sliceNormal(s0.imageOrientationPatient) : undefined,
      origin: s0?.imagePositionPatient ? [...s0.imagePositionPatient] : undefined,
      positions: [],
      problems: slices.length === 0 ? [{ code: 'no_geometry', detail: 'the series has no image slices' }] : problems,
    };
  }

  const size = sizeCheck(all, problems);
  const dominant = dominantOrientation(all.map((s) => s.imageOrientationPatient));
  const normal = dominant ? sliceNormal(dominant.iop) : undefined;
  const lacking = all.filter((s) => !s.imagePositionPatient || !s.imageOrientationPatient);

  if (!dominant || !normal || lacking.length > 0) {
    problems.push({
      code: 'no_geometry',
      detail: `${lacking.length || all.length} of ${all.length} slices lack Image Position/Orientation (Patient); ordered by Instance Number and frame`,
      sopInstanceUids: uidsOf(lacking.length ? lacking : all),
    });
    const slices = [...all].sort(byInstanceNumber);
    return {
      seriesInstanceUid,
      modality,
      kind: 'volume',
      slices,
      dimensions: { ...size, slices: slices.length },
      spacing: inPlaneSpacing(slices),
      orientation: dominant?.iop,
      normal,
      origin: undefined,
      positions: [],
      problems,
    };
  }

  if (dominant.members.length < all.length) {
    const inPlane = new Set(dominant.members);
    const odd = all.filter((_, i) => !inPlane.has(i));
    problems.push({
      code: 'mixed_orientation',
      detail: `${odd.length} of ${all.length} slices have another Image Orientation than [${dominant.iop.join(', ')}]; ordered by their position along its normal`,
      sopInstanceUids: uidsOf(odd),
    });
  }

  const placed = all.map((s) => ({ s, p: dot(s.imagePositionPatient!, normal) })).sort((a, b) => a.p - b.p || byInstanceNumber(a.s, b.s));

  const kept: Array<{ s: SliceHeader; p: number }> = [];
  for (const x of placed) {
    const prev = kept[kept.length - 1];
    if (prev && Math.abs(x.p - prev.p) < SAME_POSITION_MM) {
      problems.push({
        code: 'duplicate_position',
        detail: `${label(x.s)} is at the position of ${label(prev.s)} (${prev.p.toFixed(3)} mm along the normal); dropped`,
        sopInstanceUids: [x.s.sopInstanceUid, prev.s.sopInstanceUid],
      });
      continue;
    }
    kept.push(x);
  }

  const positions = kept.map((x) => x.p);
  const gaps = positions.slice(1).map((p, i) => p - positions[i]!);
  const spacingSlice = median(gaps);
  if (spacingSlice !== undefined && spacingSlice > 0) {
    const irregular: number[] = [];
    gaps.forEach((g, i) => {
      if (g > GAP_FACTOR * spacingSlice) {
        const missing = Math.max(1, Math.round(g / spacingSlice) - 1);
        problems.push({
          code: 'gap',
          detail: `${g.toFixed(3)} mm between ${label(kept[i]!.s)} and ${label(kept[i + 1]!.s)} (median ${spacingSlice.toFixed(3)} mm): about ${missing} slice(s) missing`,
          sopInstanceUids: [kept[i]!.s.sopInstanceUid, kept[i + 1]!.s.sopInstanceUid],
        });
      } else if (Math.abs(g - spacingSlice) > IRREGULAR_TOLERANCE * spacingSlice) {
        irregular.push(i);
      }
    });
    if (irregular.length) {
      problems.push({
        code: 'irregular_spacing',
        detail: `${irregular.length} of ${gaps.length} spacings differ from the median ${spacingSlice.toFixed(3)} mm by more than ${IRREGULAR_TOLERANCE * 100}%`,
        sopInstanceUids: uidsOf(irregular.map((i) => kept[i + 1]!.s)),
      });
    }
  }

  const slices = kept.map((x) => x.s);
  const first = slices[0]!;
  return {
    seriesInstanceUid,
    modality,
    kind: slices.length > 1 ? 'volume' : 'single',
    slices,
    dimensions: { ...size, slices: slices.length },
    spacing: { ...inPlaneSpacing(slices), ...(spacingSlice !== undefined ? { slice: spacingSlice } : {}) },
    orientation: dominant.iop,
    normal,
    origin: [...first.imagePositionPatient!],
    positions,
    problems,
  };
}
