import { createRequire } from 'node:module';
import path from 'node:path';
import dcmjsImaging from 'dcmjs-imaging';
import sharp from 'sharp';
import { errorMessage } from '../src/errors.js';

/**
 * The one rendering core shared by WADO-RS rendered/thumbnail (rendered.ts) and WADO-URI
 * (wado-uri.ts): a Part 10 file → one frame as an encoded consumer image.
 *
 * dcmjs-imaging decodes the frame (WebAssembly codecs for the compressed syntaxes) and applies
 * the Modality LUT (Rescale Slope/Intercept), the VOI (the given window, else the instance's
 * first Window Center/Width, else the pixel range), MONOCHROME1 inversion and colour conversion,
 * giving RGBA; sharp scales into the requested box (aspect kept) and encodes JPEG, PNG or GIF.
 * No HTTP here: failures are RenderError with a kind the callers map to their status codes
 * (they differ: WADO-RS answers a frame past the end with 404, WADO-URI with 400).
 */

const { DicomImage, WindowLevel, NativePixelDecoder } = dcmjsImaging;
type DicomImageT = InstanceType<typeof DicomImage>;

export type RenderedMediaType = 'image/jpeg' | 'image/png' | 'image/gif';

export interface RenderWindow {
  center: number;
  width: number;
  fn: 'LINEAR' | 'SIGMOID';
}

/** Scale to fit inside width × height (either may be absent: the other follows the aspect). */
export interface RenderBox {
  width?: number;
  height?: number;
  /** false: never grow the image (thumbnails); true: scale up to the box too. */
  enlarge: boolean;
}

export interface RenderOptions {
  /** 1-based. */
  frame: number;
  window?: RenderWindow;
  /** Part of the frame, normalised to 0.0-1.0 (WADO-URI `region`), taken before scaling. */
  region?: { x0: number; y0: number; x1: number; y1: number };
  box?: RenderBox;
  output: RenderedMediaType;
  /** JPEG quality 1-100 (ignored for PNG and GIF). */
  quality: number;
}

export interface RenderedImage {
  body: Buffer;
  width: number;
  height: number;
  mediaType: RenderedMediaType;
}

/**
 * no_pixel_data: nothing to render (SR, PDF, …); frame_out_of_range: past NumberOfFrames;
 * unparsable / undecodable: the file or its pixel data cannot be decoded here.
 */
export type RenderErrorKind = 'no_pixel_data' | 'frame_out_of_range' | 'unparsable' | 'undecodable';

export class RenderError extends Error {
  constructor(
    readonly kind: RenderErrorKind,
    message: string,
    readonly numberOfFrames?: number,
  ) {
    super(message);
    this.name = 'RenderError';
  }
}

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

  /** Parses the Part 10 bytes; RenderError no_pixel_data / unparsable. */
  static async open(file: Buffer, log: RenderLog): Promise<RenderSource> {
    const haveCodecs = await initCodecs(log);
    const ab = file.buffer.slice(file.byteOffset, file.byteOffset + file.length) as ArrayBuffer;
    let image: DicomImageT;
    try {
      image = new DicomImage(ab);
    } catch (err) {
      throw new RenderError('unparsable', `the instance could not be parsed for rendering: ${errorMessage(err)}`);
    }
    if (!(image.getWidth() > 0) || !(image.getHeight() > 0)) {
      throw new RenderError('no_pixel_data', 'the instance has no image pixel data to render');
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
    return encode(rendered, opts);
  }
}

async function encode(rendered: { width: number; height: number; pixels: ArrayBuffer }, opts: RenderOptions): Promise<RenderedImage> {
  let pipeline = sharp(Buffer.from(rendered.pixels), { raw: { width: rendered.width, height: rendered.height, channels: 4 } });
  if (opts.region) {
    const { x0, y0, x1, y1 } = opts.region;
    const left = Math.min(rendered.width - 1, Math.floor(x0 * rendered.width));
    const top = Math.min(rendered.height - 1, Math.floor(y0 * rendered.height));
    const width = Math.max(1, Math.min(rendered.width - left, Math.round((x1 - x0) * rendered.width)));
    const height = Math.max(1, Math.min(rendered.height - top, Math.round((y1 - y0) * rendered.height)));
    pipeline = pipeline.extract({ left, top, width, height });
  }
  const box = opts.box;
  if (box && (box.width !== undefined || box.height !== undefined)) {
    pipeline = pipeline.resize({ width: box.width, height: box.height, fit: 'inside', withoutEnlargement: !box.enlarge });
  }
  // Rendered output is opaque: drop alpha (JPEG has none; PNG and GIF stay smaller).
  pipeline = pipeline.removeAlpha();
  const out =
    opts.output === 'image/png'
      ? pipeline.png({ compressionLevel: 6 })
      : opts.output === 'image/gif'
        ? pipeline.gif()
        : pipeline.jpeg({ quality: opts.quality });
  const { data, info } = await out.toBuffer({ resolveWithObject: true });
  return { body: data, width: info.width, height: info.height, mediaType: opts.output };
}

/** One-shot: parse and render one frame. */
export async function renderImage(file: Buffer, opts: RenderOptions, log: RenderLog): Promise<RenderedImage> {
  return (await RenderSource.open(file, log)).render(opts);
}
