import type { DecodedFrame, FrameWindow } from './decode-frame.js';
import { padInto, placement, resizeBilinear, resizeThroughLut } from './fit.js';
import {
  channelWindowsLut,
  type ChannelWindows,
  greyLinear,
  greyToRgb,
  greyVoiLut,
  greyWindow,
  invert,
  minMax,
  pixelRangeWindow,
  threeWindows,
} from './value-mapping.js';

/**
 * The value-mapping step of the render pipeline for decoded modality values (decode-frame.ts):
 * one frame → 8-bit grey or RGB, or its values untouched. The caller chooses the mapping: image
 * preparation takes several windows as colour channels (CT), the instance's VOI (radiographs) or
 * the values themselves, to be mapped over a whole volume (MR). MONOCHROME1 is inverted after a
 * grey mapping; colour frames pass as RGB.
 */

export type FrameMapping =
  /**
   * For display: the requested window, else the frame's Window Center/Width (per-frame functional
   * groups first), else the VOI LUT, else the pixel range (pixelRangeWindow).
   */
  | { kind: 'display'; window?: FrameWindow }
  /** The instance's window, else its VOI LUT, else its own min–max (min → 0, max → 255). */
  | { kind: 'voi' }
  /** One window per colour channel (image preparation's CT windows); `name` is the mapping's name. */
  | { kind: 'channel-windows'; windows: ChannelWindows; name: string }
  /** Float32 modality values, for a mapping over several frames (a volume). */
  | { kind: 'values' };

export interface MappedFrame {
  /** 'rgb8': 3 channels of 8 bits; 'grey8': 1 channel; 'f32': Float32 modality values, 1 channel. */
  format: 'rgb8' | 'grey8' | 'f32';
  data: Uint8Array | Float32Array;
  /** How the values were mapped ('voi-window', 'voi-lut', 'minmax', '-inverted' after any; 'rgb'; the windows' name). */
  mapping: string;
  width: number;
  height: number;
  /** Already placed on the black size × size canvas (`fitInto`). */
  fitted: boolean;
}

/** The instance's VOI chain (or the display's) → grey; MONOCHROME1 inverted. */
function grey(
  f: DecodedFrame,
  values: Float32Array,
  mapping?: Extract<FrameMapping, { kind: 'display' }>,
): { grey: Uint8Array; how: string } {
  let out: Uint8Array;
  let how: string;
  if (mapping?.window) {
    out = greyWindow(values, mapping.window.center, mapping.window.width, mapping.window.fn);
    how = 'window';
  } else if (f.window) {
    out = greyWindow(values, f.window.center, f.window.width, f.window.fn);
    how = 'voi-window';
  } else if (f.voiLut) {
    out = greyVoiLut(values, f.voiLut);
    how = 'voi-lut';
  } else if (mapping) {
    // Over the original pixels, not resampled ones (which can only be within their range).
    const w = pixelRangeWindow(f.values!, f.declaredRange, f.padding);
    out = greyWindow(values, w.center, w.width, 'LINEAR');
    how = 'pixel-range';
  } else {
    // Over the original pixels, not the resampled ones (which can only be within their range).
    out = greyLinear(values, minMax(f.values!));
    how = 'minmax';
  }
  // MONOCHROME1: the minimum is white; inverted so that air (least attenuation) is black.
  if (f.photometric === 'MONOCHROME1') {
    invert(out);
    how += '-inverted';
  }
  return { grey: out, how };
}

/**
 * Maps one frame. `fitInto`, when given, is the side of a square box: a frame that enlarges
 * into it is resampled on its modality values before mapping (cheaper, and the workers do it in
 * parallel) and placed centred on a black canvas; one that would shrink comes back at its own
 * size for a proper reducer (sharp) to scale.
 */
export function mapFrame(f: DecodedFrame, mapping: FrameMapping, fitInto?: number): MappedFrame {
  const native = { width: f.width, height: f.height, fitted: false };
  if (f.samplesPerPixel === 3) return { format: 'rgb8', data: f.rgb!, mapping: 'rgb', ...native };
  const values = f.values!;
  if (mapping.kind === 'values') return { format: 'f32', data: values, mapping: 'values', ...native };
  const p = fitInto === undefined ? undefined : placement(f.width, f.height, f.pixelAspect, fitInto);
  if (p && fitInto !== undefined && p.width >= f.width && p.height >= f.height) {
    const box = { width: fitInto, height: fitInto, fitted: true };
    if (mapping.kind === 'channel-windows') {
      const rgb = resizeThroughLut(values, f.width, f.height, p.width, p.height, channelWindowsLut(mapping.windows));
      return { format: 'rgb8', data: padInto(rgb, p, 3, fitInto), mapping: mapping.name, ...box };
    }
    const { grey: g, how } = grey(
      f,
      resizeBilinear(values, f.width, f.height, p.width, p.height),
      mapping.kind === 'display' ? mapping : undefined,
    );
    return { format: 'rgb8', data: padInto(greyToRgb(g), p, 3, fitInto), mapping: how, ...box };
  }
  if (mapping.kind === 'channel-windows')
    return { format: 'rgb8', data: threeWindows(values, mapping.windows), mapping: mapping.name, ...native };
  const { grey: g, how } = grey(f, values, mapping.kind === 'display' ? mapping : undefined);
  return { format: 'grey8', data: g, mapping: how, ...native };
}
