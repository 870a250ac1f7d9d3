/**
 * What rendering takes and gives, shared by the render core (render-image.ts, in the render
 * workers), its pool (renderer.ts) and the routes (dicomweb/rendered.ts, wado-uri.ts). No code that
 * decodes here, so the main thread never loads the decoders.
 */

import { RadiantError, type ErrorKind } from '../../errors.js';

export type RenderedMediaType = 'image/jpeg' | 'image/png' | 'image/gif';

export interface RenderWindow {
  center: number;
  width: number;
  fn: 'LINEAR' | 'LINEAR_EXACT' | 'SIGMOID';
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

/** A frame mapped for display, ready for the encoder: 8-bit grey, RGB or RGBA, row by row. */
export interface DisplayPixels {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3 | 4;
}

export interface RenderedImage {
  body: Buffer;
  width: number;
  height: number;
  mediaType: RenderedMediaType;
}

/**
 * no_pixel_data: nothing to render (SR, PDF, …); frame_out_of_range: past NumberOfFrames;
 * unparsable / undecodable: the file or its pixel data cannot be decoded here;
 * invalid_geometry: Rows × Columns × … claims more than the pixel data holds, or more pixels
 * than MAX_FRAME_PIXELS (an instance stored before ingest checked that); failed: the render
 * worker overran RENDER_TIMEOUT_MS or crashed.
 */
export type RenderErrorKind = 'no_pixel_data' | 'frame_out_of_range' | 'unparsable' | 'undecodable' | 'invalid_geometry' | 'failed';

/** The domain kind of each render failure; the protocols answer the finer `reason` their own way. */
const RENDER_ERROR_KIND: Record<RenderErrorKind, ErrorKind> = {
  no_pixel_data: 'unsupported',
  frame_out_of_range: 'not-found',
  unparsable: 'unparseable',
  undecodable: 'unsupported',
  invalid_geometry: 'unprocessable',
  failed: 'internal',
};

export class RenderError extends RadiantError {
  constructor(
    override readonly reason: RenderErrorKind,
    message: string,
    readonly numberOfFrames?: number,
  ) {
    super(RENDER_ERROR_KIND[reason], message);
    this.name = 'RenderError';
  }
}
