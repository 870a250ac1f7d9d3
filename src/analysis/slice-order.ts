/**
 * Which slices go to the model, in which order, as the recipe wants them (src/medgemma/recipes.ts).
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
