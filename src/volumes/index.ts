/** Series selection and volume assembly for the AI analysis pipeline. */
export { sliceHeadersFromJson, type SliceHeader } from './slice-header.js';
export { loadStudySeries, SeriesMetadataError, type SeriesCandidate } from './series-loader.js';
export {
  selectSeries,
  DEFAULT_SELECTION_RULES,
  type SelectionRules,
  type SelectionResult,
  type RankedSeries,
  type SkippedSeries,
} from './series-selection.js';
export { assembleVolume, huOf, type AssembledVolume, type VolumeKind, type VolumeProblem, type VolumeProblemCode } from './assemble.js';
export { saveVolume, getVolume, VolumeRowError, type StoredVolume } from './volume-store.js';
