/**
 * Hierarchical SOP Instance Reference Macro (PS3.3 Table C.17-3): study → series → instances,
 * as the Predecessor Documents and Current Requested Procedure Evidence sequences require.
 */
import type { NaturalizedDataset } from 'dcmjs';
import type { ImageRef } from '../content.js';

/** One item per study (here always the report's study), each instance listed once. */
export function hierarchicalReference(studyInstanceUid: string, refs: ImageRef[]): NaturalizedDataset[] {
  if (refs.length === 0) return [];
  const series = new Map<string, Map<string, string>>();
  for (const r of refs) {
    const instances = series.get(r.seriesInstanceUid) ?? new Map<string, string>();
    // Frames of one multi-frame instance are one instance here: the macro references instances.
    instances.set(r.sopInstanceUid, r.sopClassUid);
    series.set(r.seriesInstanceUid, instances);
  }
  return [
    {
      StudyInstanceUID: studyInstanceUid,
      ReferencedSeriesSequence: [...series].map(([seriesUid, instances]) => ({
        SeriesInstanceUID: seriesUid,
        ReferencedSOPSequence: [...instances].map(([sopInstanceUid, sopClassUid]) => ({
          ReferencedSOPClassUID: sopClassUid,
          ReferencedSOPInstanceUID: sopInstanceUid,
        })),
      })),
    },
  ];
}
