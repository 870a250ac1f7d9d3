import { createRequire } from 'node:module';
import path from 'node:path';
import dcmjsImaging from 'dcmjs-imaging';
import { errorMessage } from '../src/errors.js';
import { parseHeaderBytes } from '../src/dicom/header.js';
import { pixelGeometryProblem } from '../src/dicom/pixel-geometry.js';
import { type DisplayPixels, RenderError, type RenderWindow } from '../src/dicom/render/render-types.js';

/**
 * dcmjs-imaging, the node's display decoder before the one render pipeline: it decodes a frame and
 * applies the Modality LUT, the VOI (the given window, else the instance's first Window
 * Center/Width, else the pixel range), MONOCHROME1 inversion and colour conversion, giving RGBA.
 * Kept only as the reference bench/render-compare.ts measures the pipeline against (devDependency).
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
export class ImagingSource {
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
  static async open(file: ArrayBuffer, log: RenderLog, maxFramePixels: number): Promise<ImagingSource> {
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
    return new ImagingSource(image, haveCodecs, Math.max(1, image.getNumberOfFrames() || 1));
  }

  get transferSyntax(): string {
    return this.image.getTransferSyntaxUid();
  }

  /** Frame `frame` (1-based, in range) as RGBA; RenderError undecodable. */
  pixels(frame: number, window?: RenderWindow): DisplayPixels {
    const opts = { frame, window };
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
    return { data: new Uint8Array(rendered.pixels), width: rendered.width, height: rendered.height, channels: 4 };
  }
}
