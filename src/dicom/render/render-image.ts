import { errorMessage } from '../../errors.js';
import { parseHeaderBytes } from '../header.js';
import { pixelGeometryProblem } from '../pixel-geometry.js';
import { decodeElements } from './decode-elements.js';
import { decodeFrame } from './decode-frame.js';
import { encodeDisplay } from './encode.js';
import { type FrameMapping, mapFrame } from './map-frame.js';
import { RenderError, type RenderedImage, type RenderOptions } from './render-types.js';

/**
 * The render pipeline for display, shared by WADO-RS rendered/thumbnail (dicomweb/rendered.ts)
 * and WADO-URI (dicomweb/wado-uri.ts): a Part 10 file → one frame as an encoded consumer image.
 *
 * The same decoder as image preparation (decode-elements.ts: any stored syntax to native pixel
 * data; decode-frame.ts: modality values with per-frame functional groups, colour as RGB), then
 * the value mapping (map-frame.ts: the given window, else the instance's Window Center/Width or
 * VOI LUT, else the pixel range; MONOCHROME1 inverted), then sharp scales into the requested box
 * (aspect kept) and encodes JPEG, PNG or GIF. No HTTP here: failures are RenderError with a kind
 * the callers map to their status codes (they differ: WADO-RS answers a frame past the end with
 * 404, WADO-URI with 400).
 *
 * Runs in the render workers only (render-worker.ts): decoding allocates what the data set
 * claims, so the claim is held against the pixel data actually present first.
 */

/**
 * A parsed and decoded instance that can render any of its frames: a series/study rendering
 * decodes each file once, however many frames it has.
 */
export class RenderSource {
  private constructor(
    private readonly elements: Record<string, unknown>,
    /** The stored transfer syntax. */
    readonly transferSyntax: string,
    /** Frames in the instance (1 for single-frame images). */
    readonly numberOfFrames: number,
  ) {}

  /**
   * Parses and decodes the Part 10 bytes; RenderError no_pixel_data / unparsable /
   * invalid_geometry / undecodable.
   */
  static async open(file: Buffer, maxFramePixels: number): Promise<RenderSource> {
    const parsed = await parseHeaderBytes(file);
    if (!parsed.ok) throw new RenderError('unparsable', `the instance could not be parsed for rendering: ${parsed.error}`);
    const h = parsed.header;
    const problem = pixelGeometryProblem(h, h.pixelData, h.hasPixelData, maxFramePixels);
    if (problem) throw new RenderError('invalid_geometry', `the instance cannot be rendered: ${problem}`);
    if (!h.hasPixelData || !(h.rows! > 0) || !(h.columns! > 0)) {
      throw new RenderError('no_pixel_data', 'the instance has no image pixel data to render');
    }
    let decoded: Awaited<ReturnType<typeof decodeElements>>;
    try {
      decoded = await decodeElements(file);
    } catch (err) {
      // A WebAssembly trap goes to the worker, which answers undecodable and is replaced.
      if (err instanceof Error && err.name === 'RuntimeError') throw err;
      throw new RenderError('undecodable', `pixel data stored as ${h.transferSyntaxUid} cannot be rendered: ${errorMessage(err)}`);
    }
    const el = decoded.elements;
    // The decoder reads the data set itself: it must see the geometry that was checked.
    if (Number(el.Columns) !== h.columns || Number(el.Rows) !== h.rows) {
      const read = `${Number(el.Columns)}x${Number(el.Rows)}`;
      throw new RenderError('invalid_geometry', `the decoder reads ${read} pixels, the header ${h.columns}x${h.rows}`);
    }
    const frames = Math.max(1, Math.trunc(Number(el.NumberOfFrames)) || 1);
    return new RenderSource(el, decoded.transferSyntaxUid, frames);
  }

  async render(opts: RenderOptions): Promise<RenderedImage> {
    if (!Number.isInteger(opts.frame) || opts.frame < 1 || opts.frame > this.numberOfFrames) {
      throw new RenderError(
        'frame_out_of_range',
        `frame ${opts.frame} does not exist: the instance has ${this.numberOfFrames} frame(s)`,
        this.numberOfFrames,
      );
    }
    const mapping: FrameMapping = opts.window ? { kind: 'window', window: opts.window } : { kind: 'voi', range: 'display' };
    let mapped: ReturnType<typeof mapFrame>;
    try {
      mapped = mapFrame(decodeFrame(this.elements, opts.frame - 1), mapping);
    } catch (err) {
      throw new RenderError('undecodable', `pixel data stored as ${this.transferSyntax} cannot be rendered: ${errorMessage(err)}`);
    }
    const channels = mapped.format === 'rgb8' ? 3 : 1;
    return encodeDisplay({ data: mapped.data as Uint8Array, width: mapped.width, height: mapped.height, channels }, opts);
  }
}
