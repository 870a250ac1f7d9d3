/**
 * What kind of object a series holds, from its SOP classes (PS3.4 B.5) and Modality (PS3.3
 * C.7.3.1.1.1). The SOP class decides where it is known: an encapsulated PDF is often
 * Modality OT, and an SR written by a CT console may say CT.
 */

/** Projection radiography: one image (or a cine run) per view, not a stack of planes. */
export const PROJECTION_MODALITIES: ReadonlySet<string> = new Set(['CR', 'DX', 'MG', 'XA', 'RF', 'IO', 'PX']);

/** Cross-sectional modalities whose images stack into a volume. */
export const VOLUME_MODALITIES: ReadonlySet<string> = new Set(['CT', 'MR', 'PT', 'NM']);

/** SOP class roots of objects without a displayable image. */
const NON_IMAGE_SOP_ROOTS: ReadonlyArray<[string, string]> = [
  ['1.2.840.10008.5.1.4.1.1.88.', 'structured report or key object selection'],
  ['1.2.840.10008.5.1.4.1.1.104.', 'encapsulated document'],
  ['1.2.840.10008.5.1.4.1.1.11.', 'presentation state'],
  ['1.2.840.10008.5.1.4.1.1.66', 'segmentation, registration or raw data'],
  ['1.2.840.10008.5.1.4.1.1.481.', 'radiotherapy object'],
  ['1.2.840.10008.5.1.4.1.1.9.', 'waveform'],
  ['1.2.840.10008.5.1.4.34.', 'radiotherapy record'],
  ['1.2.840.10008.5.1.4.1.1.4.2', 'MR spectroscopy'],
];

const NON_IMAGE_MODALITIES: ReadonlyMap<string, string> = new Map([
  ['SR', 'structured report'],
  ['DOC', 'document'],
  ['PR', 'presentation state'],
  ['KO', 'key object selection'],
  ['SEG', 'segmentation'],
  ['REG', 'registration'],
  ['FID', 'fiducials'],
  ['PLAN', 'plan'],
  ['ECG', 'waveform'],
  ['HD', 'waveform'],
  ['AU', 'audio'],
]);

/** Why a SOP class / modality is not an image to analyse, or undefined when it may be one. */
export function nonImageReason(sopClassUid: string | undefined, modality: string | undefined): string | undefined {
  if (sopClassUid) {
    for (const [root, what] of NON_IMAGE_SOP_ROOTS) {
      // A root ending in '.' is a branch; one without names a class and its sub-classes.
      const hit = root.endsWith('.') ? sopClassUid.startsWith(root) : sopClassUid === root || sopClassUid.startsWith(`${root}.`);
      if (hit) {
        return `${what} (SOP class ${sopClassUid})`;
      }
    }
  }
  const m = modality?.toUpperCase();
  if (m) {
    if (m.startsWith('RT')) return `radiotherapy object (modality ${m})`;
    const what = NON_IMAGE_MODALITIES.get(m);
    if (what) return `${what} (modality ${m})`;
  }
  return undefined;
}
