import { createRequire } from 'node:module';
import path from 'node:path';
import dcmjsImaging from 'dcmjs-imaging';
import { errorMessage } from '../../errors.js';
import { parseHeaderBytes } from '../header.js';
import { pixelGeometryProblem } from '../pixel-geometry.js';
import { encodeDisplay } from './encode.js';
import { RenderError, type RenderedImage, type RenderOptions } from './render-types.js';

/**
 * The display source of the render pipeline, shared by WADO-RS rendered/thumbnail
 * (dicomweb/rendered.ts) and WADO-URI (dicomweb/wado-uri.ts): a Part 10 file → one frame as an
 * encoded consumer image.
 *
 * dcmjs-imaging decodes the frame (WebAssembly codecs for the compressed syntaxes) and applies
 * the Modality LUT (Rescale Slope/Intercept), the VOI (the given window, else the instance's
 * first Window Center/Width, else the pixel range), MONOCHROME1 inversion and colour conversion,
 * giving RGBA; the pipeline's encoder (encode.ts) scales into the requested box (aspect kept) and
 * encodes JPEG, PNG or GIF. Image preparation decodes with dcmjs-codecs instead (decode-elements.ts):
 * it needs modality values, which dcmjs-imaging does not give, and dcmjs-codecs lacks JPEG
 * Extended and decodes every frame of an instance at once, which display cannot afford.
 * No HTTP here: failures are RenderError with a kind the callers map to their status codes
 * (they differ: WADO-RS answers a frame past the end with 404, WADO-URI with 400).
 *
 * Runs in the render workers only (render-worker.ts): decoding allocates what the data set
 * claims, so the claim is held against the pixel data actually present first.
 */

const { DicomImage, WindowLevel, NativePixelDecoder } = dcmjsImaging;
type DicomImageT = InstanceType<typeof DicomImage>;

export interface RenderLog {
  warn(obj: Record<string, unknown>, msg: string): void;
}

let codecs: Promise<boolean> | undefined;
/** Registers the WebAssembly decoders once; false (native syntaxes only) when that fails. */
export function initCodecs(log: RenderLog): Promise<boolean> {
  codecs ??= (async () => {
    try {
      const main = createRequire(import.meta.url).resolve('dcmjs-imaging');
      await NativePixelDecoder.initializeAsync({
        webAssemblyModulePathOrUrl: path.join(path.dirname(main), 'dcmjs-native-codecs.wasm'),
        logNativeDecodersMessages: false,
      });
      return true;
    } catch (err) {
      log.warn({ err: errorMessage(err) }, 'dcmjs-imaging native decoders unavailable: only uncompressed pixel data can be rendered');
      return false;
    }
  })();
  return codecs;
}

/**
 * A parsed instance that can render any of its frames: a series/study rendering parses each file
 * once, however many frames it has.
 */
export class RenderSource {
  private constructor(
    private readonly image: DicomImageT,
    private readonly haveCodecs: boolean,
    /** Frames in the instance (1 for single-frame images). */
    readonly numberOfFrames: number,
  ) {}

  /**
   * Parses the Part 10 bytes (kept, not copied); RenderError no_pixel_data / unparsable /
   * invalid_geometry.
   */
  static async open(file: ArrayBuffer, log: RenderLog, maxFramePixels: number): Promise<RenderSource> {
    const haveCodecs = await initCodecs(log);
    const parsed = await parseHeaderBytes(Buffer.from(file));
    if (!parsed.ok) throw new RenderError('unparsable', `the instance could not be parsed for rendering: ${parsed.error}`);
    const h = parsed.header;
    const problem = pixelGeometryProblem(h, h.pixelData, h.hasPixelData, maxFramePixels);
    if (problem) throw new RenderError('invalid_geometry', `the instance cannot be rendered: ${problem}`);
    let image: DicomImageT;
    try {
      image = new DicomImage(file);
    } catch (err) {
      throw new RenderError('unparsable', `the instance could not be parsed for rendering: ${errorMessage(err)}`);
    }
    if (!(image.getWidth() > 0) || !(image.getHeight() > 0)) {
      throw new RenderError('no_pixel_data', 'the instance has no image pixel data to render');
    }
    // The decoder reads the data set itself: it must see the geometry that was checked.
    if (image.getWidth() !== h.columns || image.getHeight() !== h.rows) {
      const read = `${image.getWidth()}x${image.getHeight()}`;
      throw new RenderError('invalid_geometry', `the decoder reads ${read} pixels, the header ${h.columns}x${h.rows}`);
    }
    return new RenderSource(image, haveCodecs, Math.max(1, image.getNumberOfFrames() || 1));
  }

  get transferSyntax(): string {
    return this.image.getTransferSyntaxUid();
  }

  async render(opts: RenderOptions): Promise<RenderedImage> {
    if (!Number.isInteger(opts.frame) || opts.frame < 1 || opts.frame > this.numberOfFrames) {
      throw new RenderError(
        'frame_out_of_range',
        `frame ${opts.frame} does not exist: the instance has ${this.numberOfFrames} frame(s)`,
        this.numberOfFrames,
      );
    }
    // The VOI LUT Function is read from the data set by the pipeline; a requested shape overrides it.
    if (opts.window) this.image.setElement('VOILUTFunction', opts.window.fn);
    let rendered: { width: number; height: number; pixels: ArrayBuffer };
    try {
      rendered = this.image.render({
        frame: opts.frame - 1,
        renderOverlays: false,
        calculateHistograms: false,
        ...(opts.window ? { windowLevel: new WindowLevel(opts.window.width, opts.window.center) } : {}),
      });
    } catch (err) {
      throw new RenderError(
        'undecodable',
        `pixel data stored as ${this.transferSyntax} cannot be rendered${this.haveCodecs ? '' : ' (compressed-syntax decoders unavailable)'}: ${errorMessage(err)}`,
      );
    }
    return encodeDisplay({ data: new Uint8Array(rendered.pixels), width: rendered.width, height: rendered.height, channels: 4 }, opts);
  }
}
