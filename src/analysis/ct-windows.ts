import type { ChannelWindows } from '../dicom/render/value-mapping.js';

/**
 * MedGemma 1.5's CT preparation: three windows, one per channel (wide, soft tissue, brain),
 * each linear and clipped to 0..255. The model's choice, handed to the render pipeline as its
 * channel-windows mapping.
 */
export const CT_WINDOWS: ChannelWindows = [
  { low: -1024, high: 1024 },
  { low: -135, high: 215 },
  { low: 0, high: 80 },
];
