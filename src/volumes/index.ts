/** Series selection and volume assembly for the AI analysis pipeline. */
export type { SliceHeader } from './slice-header.js';
export { loadStudySeries, type SeriesCandidate } from './series-loader.js';
export { selectSeries } from './series-selection.js';
export { assembleVolume, type AssembledVolume } from './assemble.js';
export { saveVolume } from './volume-store.js';
