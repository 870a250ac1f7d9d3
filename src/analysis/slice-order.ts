import { cross, dot } from '../volumes/geometry.js';
import type { SliceHeader } from '../volumes/slice-header.js';

/**
 * Which slices go to the model, in which order, as the recipe wants them (src/medgemma/recipes.ts),
 * and how the viewer numbers a series' images (viewerSliceNumbering, below).
 *
 * Order: MedGemma 1.5's CT recipe (Google-Health/medgemma
 * notebooks/high_dimensional_ct_hugging_face.ipynb) sorts the instances by int(InstanceNumber),
 * ascending. The assembled volume (src/volumes) is ordered by position along the slice normal,
 * ascending: for the usual head-first axial CT numbered from the head, the opposite direction.
 * Frames of one multi-frame instance go by frame number; slices without an InstanceNumber keep
 * their volume order, after the numbered ones (the sort is stable).
 */

interface Ordered {
  instanceNumber?: number;
  frameNumber: number;
}

export function recipeSliceOrder<T extends Ordered>(slices: readonly T[]): T[] {
  const key = (s: T) => s.instanceNumber ?? Number.POSITIVE_INFINITY;
  return [...slices].sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    if (ka !== kb) return ka < kb ? -1 : 1;
    return a.frameNumber - b.frameNumber;
  });
}

/**
 * A recipe that takes one image (MedGemma 1 is a 2-D model) gets a volume's middle slice, not its
 * first (even sampling down to one would keep the first, usually an edge of the scan); separate
 * images (radiographs) keep their first.
 */
export function slicesForRecipe<T>(ordered: readonly T[], maxImages: number, volume: boolean): T[] {
  if (maxImages === 1 && volume && ordered.length > 1) return [ordered[Math.floor(ordered.length / 2)]!];
  return [...ordered];
}

/** An image's place in the viewer's stack: OHIF's "(number/of)" overlay; a multi-frame object is its own stack of frames. */
export interface ViewerSliceNumber {
  number: number;
  of: number;
  unit: 'slice' | 'frame';
}

type ViewerSlice = Pick<
  SliceHeader,
  'sopInstanceUid' | 'frameNumber' | 'instanceNumber' | 'imagePositionPatient' | 'imageOrientationPatient' | 'rows' | 'columns' | 'modality'
>;

/** OHIF's tolerances (platform/core/src/utils/isDisplaySetReconstructable.js): per direction cosine, and of the spacing. */
const IOP_TOLERANCE = 0.01;
const SPACING_TOLERANCE = 0.2;
/** Modalities whose every image is a display set of its own in OHIF (default extension, isSingleImageModality). */
const SINGLE_IMAGE_MODALITIES = new Set(['CR', 'MG', 'DX']);

const sameIop = (a: readonly number[], b: readonly number[]) => a.every((v, i) => Math.abs(v - b[i]!) < IOP_TOLERANCE);
const distance = (a: readonly number[], b: readonly number[]) => Math.hypot(a[0]! - b[0]!, a[1]! - b[1]!, a[2]! - b[2]!);

/** OHIF's sortByInstanceNumber: parseInt(InstanceNumber) || 0, then the SOP Instance UID as a string, then the frame. */
function byInstanceNumber(a: ViewerSlice, b: ViewerSlice): number {
  const na = Math.trunc(a.instanceNumber ?? 0) || 0;
  const nb = Math.trunc(b.instanceNumber ?? 0) || 0;
  if (na !== nb) return na - nb;
  if (a.sopInstanceUid !== b.sopInstanceUid) return a.sopInstanceUid < b.sopInstanceUid ? -1 : 1;
  return a.frameNumber - b.frameNumber;
}

/**
 * Whether OHIF calls the stack reconstructable (isDisplaySetReconstructable, processSingleframe)
 * and so orders it by position: two images or more, each with a position and the first one's
 * orientation and size, spaced evenly along the scan (gaps of whole spacings allowed).
 */
function positionSortable(stack: readonly ViewerSlice[], normal: readonly number[]): boolean {
  const first = stack[0]!;
  if (stack.length < 2 || !first.imageOrientationPatient) return false;
  for (const s of stack) {
    if (!s.imagePositionPatient || !s.imageOrientationPatient || !sameIop(s.imageOrientationPatient, first.imageOrientationPatient))
      return false;
    if (s.rows !== first.rows || s.columns !== first.columns) return false;
  }
  if (stack.length < 3) return true;
  const sorted = [...stack].sort((a, b) => dot(normal, a.imagePositionPatient!) - dot(normal, b.imagePositionPatient!));
  const average = distance(sorted[0]!.imagePositionPatient!, sorted.at(-1)!.imagePositionPatient!) / (sorted.length - 1);
  for (let i = 1; i < sorted.length; i++) {
    const spacing = distance(sorted[i]!.imagePositionPatient!, sorted[i - 1]!.imagePositionPatient!);
    if (Math.abs(spacing - average) < average * SPACING_TOLERANCE) continue;
    // Written as OHIF writes it, so that two images at one place (0 / 0) are irregular there too.
    const spacings = Math.round(spacing / average);
    if (!(Math.abs(spacing - spacings * average) / spacings < SPACING_TOLERANCE * average)) return false;
  }
  return true;
}

/**
 * How OHIF 3 (served at /viewer) numbers a series' images, so that a caption's "slice k of N"
 * is the "(k/N)" of the viewer's overlay. OHIF (platform/core ImageSet.sort, utils/sortStudy.ts
 * sortImagesByPatientPosition; extensions/default getSopClassHandlerModule) puts a multi-frame
 * object and each CR/DX/MG image in a display set of its own, and the rest of the series in one
 * stack, sorted by InstanceNumber, then by position along the slice normal (row × column cosines),
 * highest first, when the stack is reconstructable; otherwise it stays in InstanceNumber order.
 * A head-first axial CT numbered from the head therefore reads the same both ways; one numbered
 * from the feet, or shuffled, does not, and the viewer's number is the position's.
 */
export function viewerSliceNumbering(
  slices: readonly ViewerSlice[],
): (image: { sopInstanceUid: string; frameNumber?: number }) => ViewerSliceNumber | null {
  const framesOf = new Map<string, number>();
  for (const s of slices) framesOf.set(s.sopInstanceUid, (framesOf.get(s.sopInstanceUid) ?? 0) + 1);
  const stack = slices
    .filter((s) => framesOf.get(s.sopInstanceUid) === 1 && !SINGLE_IMAGE_MODALITIES.has(s.modality ?? ''))
    .sort(byInstanceNumber);
  const iop = stack[0]?.imageOrientationPatient;
  // Not normalised, as OHIF's (calculateScanAxisNormal): only the order matters.
  const normal = iop ? cross(iop.slice(0, 3), iop.slice(3, 6)) : [0, 0, 0];
  if (stack.length && positionSortable(stack, normal)) {
    const origin = stack[0]!.imagePositionPatient!;
    const at = (s: ViewerSlice) => dot(normal, s.imagePositionPatient!) - dot(normal, origin);
    stack.sort((a, b) => at(b) - at(a)); // stable: equal positions keep their InstanceNumber order
  }
  const inStack = new Map(stack.map((s, i) => [s.sopInstanceUid, i + 1]));
  return ({ sopInstanceUid, frameNumber = 1 }) => {
    const frames = framesOf.get(sopInstanceUid);
    if (frames === undefined) return null;
    if (frames > 1) return frameNumber >= 1 && frameNumber <= frames ? { number: frameNumber, of: frames, unit: 'frame' } : null;
    const k = inStack.get(sopInstanceUid);
    return k === undefined ? { number: 1, of: 1, unit: 'slice' } : { number: k, of: stack.length, unit: 'slice' };
  };
}
