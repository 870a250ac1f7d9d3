import { createRequire } from 'node:module';
import path from 'node:path';
import type { Readable } from 'node:stream';
import dcmjsImaging from 'dcmjs-imaging';
import sharp from 'sharp';
import type { RouteDeps } from '../src/http/server.js';
import { HttpError } from '../src/http/errors.js';
import type { AppContext, AppRouter } from '../src/http/state.js';
import { errorMessage } from '../src/errors.js';
import { parseAccept } from './accept.js';
import { resolveInstanceFromPath } from './frames.js';

/**
 * WADO-RS Retrieve Rendered and Thumbnail (PS3.18 §10.4.1.1.3, §8.3.5.1):
 *   GET /dicom-web/studies/{s}/series/{se}/instances/{i}/rendered
 *   GET /dicom-web/studies/{s}/series/{se}/instances/{i}/frames/{n}/rendered
 *   GET /dicom-web/studies/{s}/series/{se}/instances/{i}/thumbnail
 * The instance is read whole from storage and decoded with dcmjs-imaging (native codecs in
 * WebAssembly for the compressed syntaxes), which applies the Modality LUT (Rescale
 * Slope/Intercept), the VOI (the `window` parameter, else the instance's first Window
 * Center/Width, else the pixel range), MONOCHROME1 inversion and colour conversion, giving RGBA.
 * sharp then scales (`viewport=vw,vh`, fit inside, aspect kept; thumbnail: 128×128 unless a
 * viewport is given) and encodes image/jpeg (default; `quality` 1-100) or image/png per Accept.
 * Query parameters: window=center,width[,linear|sigmoid], viewport=vw,vh, quality=n.
 * Errors: 400 bad parameter, 404 instance/frame, 406 unacceptable media type, 501 undecodable.
 */

const { DicomImage, WindowLevel, NativePixelDecoder } = dcmjsImaging;
type DicomImageT = InstanceType<typeof DicomImage>;

const THUMBNAIL_SIZE = 128;
const MAX_VIEWPORT = 8192;
const DEFAULT_QUALITY = 90;
type Output = 'image/jpeg' | 'image/png';

let codecs: Promise<boolean> | undefined;
/** Registers the WebAssembly decoders once; false (native syntaxes only) when that fails. */
function initCodecs(deps: RouteDeps): Promise<boolean> {
  codecs ??= (async () => {
    try {
      const main = createRequire(import.meta.url).resolve('dcmjs-imaging');
      await NativePixelDecoder.initializeAsync({
        webAssemblyModulePathOrUrl: path.join(path.dirname(main), 'dcmjs-native-codecs.wasm'),
        logNativeDecodersMessages: false,
      });
      return true;
    } catch (err) {
      deps.log.warn({ err: errorMessage(err) }, 'dcmjs-imaging native decoders unavailable: only uncompressed pixel data can be rendered');
      return false;
    }
  })();
  return codecs;
}

/** Accept → image/jpeg or image/png (jpeg for absent, any or image/*); 406 otherwise. */
export function negotiateRendered(header: string | undefined): Output {
  const ranges = parseAccept(header);
  if (ranges.length === 0) return 'image/jpeg';
  for (const r of ranges) {
    const t = r.type.toLowerCase();
    if (t === '*/*' || t === '*' || t === 'image/*' || t === 'image/jpeg' || t === 'image/jpg') return 'image/jpeg';
    if (t === 'image/png') return 'image/png';
  }
  throw new HttpError(406, 'not_acceptable', 'rendered resources are available as image/jpeg or image/png', {
    available: ['image/jpeg', 'image/png'],
  });
}

export interface RenderParams {
  window?: { center: number; width: number; fn: 'LINEAR' | 'SIGMOID' };
  viewport?: { width: number; height: number };
  quality: number;
}

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[v.length - 1] : v;
}

/** Parses window, viewport and quality; 400 on malformed values. */
export function parseRenderParams(query: Record<string, string | string[] | undefined>): RenderParams {
  const bad = (name: string, msg: string) => new HttpError(400, 'invalid_parameter', `${name}: ${msg}`);
  const out: RenderParams = { quality: DEFAULT_QUALITY };
  const w = one(query.window);
  if (w !== undefined) {
    const parts = w.split(',').map((s) => s.trim());
    const center = Number(parts[0]);
    const width = Number(parts[1]);
    if (parts.length < 2 || parts.length > 3 || parts[0] === '' || parts[1] === '' || !Number.isFinite(center) || !Number.isFinite(width)) {
      throw bad('window', 'expected center,width[,linear|sigmoid]');
    }
    if (width <= 0) throw bad('window', 'width must be positive');
    const fn = (parts[2] ?? 'linear').toLowerCase();
    if (fn !== 'linear' && fn !== 'sigmoid') throw bad('window', 'function must be linear or sigmoid');
    out.window = { center, width, fn: fn === 'sigmoid' ? 'SIGMOID' : 'LINEAR' };
  }
  const vp = one(query.viewport);
  if (vp !== undefined) {
    const m = /^\s*(\d{1,5})\s*,\s*(\d{1,5})\s*$/.exec(vp);
    const width = Number(m?.[1]);
    const height = Number(m?.[2]);
    if (!m || width < 1 || height < 1 || width > MAX_VIEWPORT || height > MAX_VIEWPORT) {
      throw bad('viewport', `expected vw,vh (1-${MAX_VIEWPORT})`);
    }
    out.viewport = { width, height };
  }
  const q = one(query.quality);
  if (q !== undefined) {
    if (!/^\d{1,3}$/.test(q.trim()) || Number(q) < 1 || Number(q) > 100) throw bad('quality', 'expected an integer 1-100');
    out.quality = Number(q);
  }
  return out;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

function renderedHandler(deps: RouteDeps, kind: 'instance' | 'frame' | 'thumbnail') {
  return async (ctx: AppContext): Promise<void> => {
    const row = await resolveInstanceFromPath(deps, ctx);
    const output = negotiateRendered(ctx.get('accept') || undefined);
    const params = parseRenderParams(ctx.query as Record<string, string | string[] | undefined>);
    let frame = 1;
    if (kind === 'frame') {
      const f = (ctx.params as Record<string, string | undefined>).frame ?? '';
      if (!/^\d{1,9}$/.test(f) || Number(f) < 1) throw new HttpError(400, 'invalid_frame_list', 'frame number must be an integer starting at 1');
      frame = Number(f);
    }
    const haveCodecs = await initCodecs(deps);

    const file = await readAll(await deps.storage.get(row.storage_key));
    const ab = file.buffer.slice(file.byteOffset, file.byteOffset + file.length) as ArrayBuffer;
    let image: DicomImageT;
    try {
      image = new DicomImage(ab);
    } catch (err) {
      throw new HttpError(501, 'not_renderable', `the instance could not be parsed for rendering: ${errorMessage(err)}`);
    }
    if (!(image.getWidth() > 0) || !(image.getHeight() > 0)) {
      throw new HttpError(501, 'not_renderable', 'the instance has no image pixel data to render');
    }
    const frames = Math.max(1, image.getNumberOfFrames() || 1);
    if (frame > frames) {
      throw new HttpError(404, 'frame_not_found', `frame ${frame} does not exist: the instance has ${frames} frame(s)`, { numberOfFrames: frames });
    }
    if (params.window) image.setElement('VOILUTFunction', params.window.fn);

    let rendered: { width: number; height: number; pixels: ArrayBuffer };
    try {
      rendered = image.render({
        frame: frame - 1,
        renderOverlays: false,
        calculateHistograms: false,
        ...(params.window ? { windowLevel: new WindowLevel(params.window.width, params.window.center) } : {}),
      });
    } catch (err) {
      const ts = row.transfer_syntax_uid;
      throw new HttpError(
        501,
        'not_renderable',
        `pixel data stored as ${ts} cannot be rendered${haveCodecs ? '' : ' (compressed-syntax decoders unavailable)'}: ${errorMessage(err)}`,
        { transferSyntax: ts },
      );
    }

    let pipeline = sharp(Buffer.from(rendered.pixels), { raw: { width: rendered.width, height: rendered.height, channels: 4 } });
    const box = params.viewport ?? (kind === 'thumbnail' ? { width: THUMBNAIL_SIZE, height: THUMBNAIL_SIZE } : undefined);
    if (box) {
      pipeline = pipeline.resize(box.width, box.height, {
        fit: 'inside',
        // A thumbnail never grows the image; a viewport scales to fit either way.
        withoutEnlargement: kind === 'thumbnail' && !params.viewport,
      });
    }
    // Rendered output is opaque: drop alpha (JPEG has none; PNG stays smaller).
    pipeline = pipeline.removeAlpha();
    const body =
      output === 'image/png'
        ? await pipeline.png({ compressionLevel: 6 }).toBuffer()
        : await pipeline.jpeg({ quality: params.quality }).toBuffer();

    ctx.state.audit = {
      studyInstanceUid: row.study_instance_uid,
      resourceId: row.sop_instance_uid,
      details: {
        resource: kind,
        frame,
        mediaType: output,
        ...(params.window ? { window: `${params.window.center},${params.window.width},${params.window.fn.toLowerCase()}` } : {}),
        ...(box ? { viewport: `${box.width},${box.height}` } : {}),
      },
    };
    ctx.status = 200;
    ctx.set('Content-Type', output);
    ctx.body = body;
  };
}

/** Registers the rendered and thumbnail resources on the /dicom-web router. */
export function registerRenderedRoutes(r: AppRouter, deps: RouteDeps): void {
  const canRead = deps.security.guard('images:read', 'dicomweb.rendered', 'instance');
  const base = '/studies/:study/series/:series/instances/:instance';
  r.get(`${base}/rendered`, canRead, renderedHandler(deps, 'instance'));
  r.get(`${base}/frames/:frame/rendered`, canRead, renderedHandler(deps, 'frame'));
  r.get(`${base}/thumbnail`, canRead, renderedHandler(deps, 'thumbnail'));
}
