import { dominantOrientation, sliceNormal } from './geometry.js';
import { PROJECTION_MODALITIES, VOLUME_MODALITIES, nonImageReason } from './kinds.js';
import type { SeriesCandidate } from './series-loader.js';
import type { SliceHeader } from './slice-header.js';

export interface SelectionRules {
  /** Modalities that may be analysed; others are skipped. */
  modalities: string[];
  /** Cross-sectional series (CT, MR, PT, NM) with fewer images are skipped as scouts/test shots. */
  minSlices: number;
  /**
   * Skip series whose images are mostly DERIVED or SECONDARY (MPRs, MIPs, maps, screen captures);
   * for projection modalities only SECONDARY.
   */
  skipDerived: boolean;
  /** A Series Description or Convolution Kernel matching one of these is preferred. */
  preferDescriptions: RegExp[];
  /** A Series Description matching one of these ranks below every other (bone windows, MIPs, dose sheets). */
  avoidDescriptions: RegExp[];
  /** A Series Description matching this is a localizer even when Image Type does not say so. */
  localizerDescription: RegExp;
}

export const DEFAULT_SELECTION_RULES: Readonly<SelectionRules> = {
  modalities: ['CT', 'MR', 'CR', 'DX', 'MG', 'XA', 'RF'],
  minSlices: 5,
  skipDerived: true,
  // Soft-tissue and lung reconstructions: vendor kernels (Siemens Bxx/Ixx soft ≤ 45, lung 50–80
  // "B70f", GE STANDARD/SOFT/LUNG, Philips B/C/L) and the words radiologists put in descriptions.
  preferDescriptions: [
    /soft|standard|\bstd\b|mediast|abdomen|\bbody\b|\bB[1-4]\d[fs]?\b|\bI[1-4]\d[fs]?\b|\bBr[34]\d\b/i,
    /lung|pulm|chest|thorax|\bB[5-8]\d[fs]?\b|\bBl\d\d\b/i,
  ],
  avoidDescriptions: [/\bbone\b|\bmip\b|\bminip\b|\bvrt?\b|\b3d\b|dose|report|screen ?(save|capture)|patient protocol/i],
  localizerDescription: /locali[sz]er|scout|topogram|surview|scanogram|\bsurvey\b|tri-?pilot/i,
};

export interface RankedSeries {
  candidate: SeriesCandidate;
  score: number;
  why: string[];
}

export interface SkippedSeries {
  seriesInstanceUid: string;
  reason: string;
}

export interface SelectionResult {
  selected?: SeriesCandidate;
  ranked: RankedSeries[];
  skipped: SkippedSeries[];
}

/** Scores are lexicographic: a higher tier always beats any number of slices. */
const TIER = { volumeKind: 10_000_000, axial: 1_000_000, preferred: 100_000 } as const;
const MAX_COUNTED_SLICES = 99_999;
/** |normal · z| at or above this (about 25°) is axial. */
const AXIAL_MIN = 0.9;

const isLocalizer = (s: SliceHeader) => s.imageType.some((t) => t.toUpperCase() === 'LOCALIZER');
const isSecondary = (s: SliceHeader) => s.imageType[1]?.toUpperCase() === 'SECONDARY';
const isDerived = (s: SliceHeader) => s.imageType[0]?.toUpperCase() === 'DERIVED' || isSecondary(s);
const most = (slices: readonly SliceHeader[], pred: (s: SliceHeader) => boolean) => slices.filter(pred).length * 2 > slices.length;

function modalityOf(c: SeriesCandidate): string | undefined {
  return (c.modality ?? c.slices.find((s) => s.modality)?.modality)?.toUpperCase();
}

function skipReason(c: SeriesCandidate, modality: string | undefined, rules: SelectionRules): string | undefined {
  const nonImage = c.sopClassUids.map((uid) => nonImageReason(uid, modality));
  if (c.sopClassUids.length > 0 && nonImage.every((r) => r !== undefined)) return `not an image: ${nonImage[0]}`;
  if (c.slices.length === 0)
    return nonImageReason(undefined, modality)
      ? `not an image: ${nonImageReason(undefined, modality)}`
      : 'no image instances (no Rows/Columns)';
  if (!modality) return 'no Modality';
  if (!rules.modalities.map((m) => m.toUpperCase()).includes(modality))
    return `modality ${modality} is not in the allow list (${rules.modalities.join(', ')})`;
  if (most(c.slices, isLocalizer)) return 'localizer: Image Type contains LOCALIZER';
  if (c.seriesDescription && rules.localizerDescription.test(c.seriesDescription))
    return `localizer: Series Description "${c.seriesDescription}"`;
  // Processed radiographs (DX/CR "for presentation") are routinely DERIVED\PRIMARY and are the
  // images a radiologist reads; only SECONDARY (screen captures, reformats) disqualifies them.
  const derived = PROJECTION_MODALITIES.has(modality) ? isSecondary : isDerived;
  if (rules.skipDerived && most(c.slices, derived)) return `derived or secondary images (Image Type ${c.slices[0]!.imageType.join('\\')})`;
  if (VOLUME_MODALITIES.has(modality) && c.slices.length < rules.minSlices) {
    return `only ${c.slices.length} image(s), fewer than ${rules.minSlices}: a scout or test shot rather than a volume`;
  }
  return undefined;
}

function matchesAny(text: string | undefined, res: readonly RegExp[]): RegExp | undefined {
  return text ? res.find((r) => r.test(text)) : undefined;
}

function score(c: SeriesCandidate, modality: string, rules: SelectionRules): { score: number; why: string[] } {
  const why: string[] = [];
  const images = c.slices.filter((s) => !isLocalizer(s));
  const kernel = images.find((s) => s.convolutionKernel)?.convolutionKernel;
  const preferred = matchesAny(c.seriesDescription, rules.preferDescriptions) ?? matchesAny(kernel, rules.preferDescriptions);
  const avoided = matchesAny(c.seriesDescription, rules.avoidDescriptions);
  let total = 0;

  if (PROJECTION_MODALITIES.has(modality)) {
    why.push(`projection images: ${images.length}`);
    total += Math.min(images.length, MAX_COUNTED_SLICES);
  } else {
    total += TIER.volumeKind;
    const plane = dominantOrientation(images.map((s) => s.imageOrientationPatient));
    const consistent = plane ? plane.members.length : images.length;
    why.push(plane ? `${consistent} of ${images.length} slices in one orientation` : `${images.length} slices without orientation`);
    total += Math.min(consistent, MAX_COUNTED_SLICES);
    const normal = plane ? sliceNormal(plane.iop) : undefined;
    const axial = normal !== undefined && Math.abs(normal[2]) >= AXIAL_MIN;
    if (normal) why.push(`${axial ? 'axial' : 'not axial'} (|normal·z| = ${Math.abs(normal[2]).toFixed(2)})`);
    // For CT the plane and reconstruction matter more than the count; MR series are judged by
    // their coverage, the description only breaking ties.
    if (modality === 'CT') {
      if (axial) total += TIER.axial;
      if (preferred) total += TIER.preferred;
    } else if (preferred) {
      total += 0.5;
    }
  }
  if (preferred) why.push(`description/kernel matches ${preferred}`);
  if (avoided) {
    total -= TIER.volumeKind;
    why.push(`description matches ${avoided}: ranked last`);
  }
  return { score: total, why };
}

/**
 * Picks the series of a study to analyse. Every series is either ranked or skipped with a
 * reason, so an empty selection can always be explained to the user.
 */
export function selectSeries(cands: SeriesCandidate[], rules?: Partial<SelectionRules>): SelectionResult {
  const r: SelectionRules = { ...DEFAULT_SELECTION_RULES, ...rules };
  const ranked: RankedSeries[] = [];
  const skipped: SkippedSeries[] = [];
  for (const c of cands) {
    const modality = modalityOf(c);
    const reason = skipReason(c, modality, r);
    if (reason !== undefined) skipped.push({ seriesInstanceUid: c.seriesInstanceUid, reason });
    else ranked.push({ candidate: c, ...score(c, modality!, r) });
  }
  ranked.sort(
    (a, b) =>
      b.score - a.score ||
      (a.candidate.seriesNumber ?? Infinity) - (b.candidate.seriesNumber ?? Infinity) ||
      (a.candidate.seriesInstanceUid < b.candidate.seriesInstanceUid ? -1 : 1),
  );
  return { selected: ranked[0]?.candidate, ranked, skipped };
}
