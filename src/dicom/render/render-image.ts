import { parseHeaderBytes } from '../header.js';
import { pixelGeometryProblem } from '../pixel-geometry.js';
import { PixelDecodeError } from './decode-frame.js';
import { encodeDisplay } from './encode.js';
import { squarePixels } from './fit.js';
import { FrameDecoder } from './frame-decoder.js';
import { mapFrame } from './map-frame.js';
import { type DisplayPixels, RenderError, type RenderedImage, type RenderOptions, type RenderWindow } from './render-types.js';

/**
 * The display source of the render pipeline, shared by WADO-RS rendered/thumbnail
 * (dicomweb/rendered.ts) and WADO-URI (dicomweb/wado-uri.ts): a Part 10 file → one frame as an
 * encoded consumer image.
 *
 * The same decoder as image preparation (frame-decoder.ts: one frame at a time, any stored
 * syntax, modality values with per-frame functional groups, colour as RGB), then the display
 * mapping (map-frame.ts: the given window, else the frame's Window Center/Width, else the VOI LUT,
 * else the pixel range without the padding value; MONOCHROME1 inverted; non-square pixels
 * stretched to their true proportions), then the encoder
 * (encode.ts) scales into the requested box (aspect kept) and encodes JPEG, PNG or GIF.
 * An instance the decoder cannot read answers undecodable. (dcmjs-imaging, the display decoder
 * before, is kept in bench/ as the reference of bench/render-compare.ts: over the 488 corpus files
 * it renders none that this pipeline does not.)
 * No HTTP here: failures are RenderError with a kind the callers map to their status codes
 * (they differ: WADO-RS answers a frame past the end with 404, WADO-URI with 400).
 *
 * Runs in the render workers only (render-worker.ts): decoding allocates what the data set
 * claims, so the claim is held against the pixel data actually present first.
 */

/**
 * A parsed instance that can render any of its frames: a series/study rendering parses each file
 * once, however many frames it has, and decodes only the frames it shows.
 */
export class RenderSource {
  private constructor(
    private readonly decoder: FrameDecoder | undefined,
    /** Why the decoder could not open the instance (then every frame answers undecodable). */
    private readonly openProblem: string | undefined,
    readonly transferSyntax: string,
    /** Frames in the instance (1 for single-frame images). */
    readonly numberOfFrames: number,
  ) {}

  /**
   * Parses the Part 10 bytes (kept, not copied); RenderError no_pixel_data / unparsable /
   * invalid_geometry.
   */
  static async open(file: ArrayBuffer | SharedArrayBuffer, maxFramePixels: number): Promise<RenderSource> {
    const bytes = Buffer.from(file);
    const parsed = await parseHeaderBytes(bytes);
    if (!parsed.ok) throw new RenderError('unparsable', `the instance could not be parsed for rendering: ${parsed.error}`);
    const h = parsed.header;
    const problem = pixelGeometryProblem(h, h.pixelData, h.hasPixelData, maxFramePixels);
    if (problem) throw new RenderError('invalid_geometry', `the instance cannot be rendered: ${problem}`);
    if (!(h.rows! > 0) || !(h.columns! > 0)) throw new RenderError('no_pixel_data', 'the instance has no image pixel data to render');
    const ts = h.transferSyntaxUid;
    let decoder: FrameDecoder | undefined;
    let openProblem: string | undefined;
    try {
      decoder = await FrameDecoder.open(bytes);
    } catch (err) {
      if (!(err instanceof PixelDecodeError)) throw err;
      openProblem = err.message;
    }
    if (decoder) {
      const el = decoder.elements;
      // The decoder reads the data set itself: it must see the geometry that was checked.
      if (Number(el.Columns) !== h.columns || Number(el.Rows) !== h.rows) {
        const read = `${Number(el.Columns)}x${Number(el.Rows)}`;
        throw new RenderError('invalid_geometry', `the decoder reads ${read} pixels, the header ${h.columns}x${h.rows}`);
      }
    }
    const frames = decoder ? decoder.numberOfFrames : Math.max(1, h.numberOfFrames ?? 1);
    return new RenderSource(decoder, openProblem, ts, frames);
  }

  /**
   * Frame `frame` (1-based) mapped for display: 8-bit grey or RGB. RenderError
   * frame_out_of_range / undecodable.
   */
  async pixels(frame: number, window?: RenderWindow): Promise<DisplayPixels> {
    if (!Number.isInteger(frame) || frame < 1 || frame > this.numberOfFrames) {
      throw new RenderError(
        'frame_out_of_range',
        `frame ${frame} does not exist: the instance has ${this.numberOfFrames} frame(s)`,
        this.numberOfFrames,
      );
    }
    let problem = this.openProblem;
    if (this.decoder) {
      try {
        const f = this.decoder.decode(frame - 1);
        const m = mapFrame(f, { kind: 'display', ...(window ? { window } : {}) });
        const channels = m.format === 'rgb8' ? 3 : 1;
        return { ...squarePixels(m.data as Uint8Array, m.width, m.height, channels, f.pixelAspect), channels };
      } catch (err) {
        if (!(err instanceof PixelDecodeError)) throw err;
        // The worker answers a trap undecodable and is replaced (render-worker.ts).
        if (err.trap) throw err.trap;
        problem = err.message;
      }
    }
    throw new RenderError('undecodable', `pixel data stored as ${this.transferSyntax} cannot be rendered: ${problem ?? 'no decoder'}`);
  }

  async render(opts: RenderOptions): Promise<RenderedImage> {
    return encodeDisplay(await this.pixels(opts.frame, opts.window), opts);
  }
}
