import sharp from 'sharp';
import type { Db } from '../db/connection.js';
import type { Analysis } from '../analysis/analyses.js';
import { seriesInstanceReader } from '../analysis/instance-bytes.js';
import { prepareImages, type PrepareKind } from '../analysis/prepare-images.js';
import { viewerSliceNumbering, type ViewerSliceNumber } from '../analysis/slice-order.js';
import { loadStudySeries } from '../volumes/series-loader.js';
import { placement } from '../dicom/render/fit.js';
import type { Renderer } from '../dicom/render/renderer.js';
import type { BlobStorage } from '../../storage/types.js';
import type { ImageRef, ReportContent } from './content.js';

export interface KeyImage {
  png: Buffer;
  caption: string;
  findingNumbers: number[];
}

/** A key image with where it comes from (the review screen links it to the viewer). */
export interface LocatedKeyImage extends KeyImage {
  /** The image shown: its UIDs and its number as the viewer counts it (viewerSliceNumbering; null when not in the index). */
  sopInstanceUid: string;
  seriesInstanceUid: string;
  frameNumber: number;
  slice: ViewerSliceNumber | null;
}

const MAX_KEY_IMAGES = 6;
const KEY_IMAGE_SIZE = 384;
const BOX_COLOUR = '#ffd400';

/**
 * True greyscale for every kind of series: the image's own VOI window (CT, radiographs) or the
 * robust grey of MR, never the model's three CT windows as red/green/blue.
 */
function kindFor(modality: string | null): PrepareKind {
  return modality === 'MR' ? 'mr' : 'other';
}

const sameImage = (a: { sopInstanceUid: string; frameNumber?: number }, b: { sopInstanceUid: string; frameNumber?: number }) =>
  a.sopInstanceUid === b.sopInstanceUid && (a.frameNumber ?? 1) === (b.frameNumber ?? 1);

/** The boxes (source pixels) as drawn on the key image: the source fitted into the square as prepareImages fits it. */
async function drawBoxes(png: Buffer, analysisImage: Analysis['images'][number], ref: ImageRef, boxes: number[][]): Promise<Buffer> {
  const p = analysisImage.placement;
  const columns = ref.columns ?? p?.columns;
  const rows = ref.rows ?? p?.rows;
  if (!boxes.length || !columns || !rows) return png;
  // The pixel aspect the analysis used (pixel width / height), from how it placed this image.
  const aspect = p && p.width > 0 && p.height > 0 ? p.width / p.columns / (p.height / p.rows) : 1;
  const at = placement(columns, rows, aspect, KEY_IMAGE_SIZE);
  const sx = at.width / columns;
  const sy = at.height / rows;
  const rects = boxes
    .map(([x0 = 0, y0 = 0, x1 = 0, y1 = 0]) => {
      const x = at.left + x0 * sx;
      const y = at.top + y0 * sy;
      const w = Math.max(2, (x1 - x0) * sx);
      const h = Math.max(2, (y1 - y0) * sy);
      return `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${w.toFixed(1)}" height="${h.toFixed(1)}" fill="none" stroke="${BOX_COLOUR}" stroke-width="2"/>`;
    })
    .join('');
  const svg = Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${KEY_IMAGE_SIZE}" height="${KEY_IMAGE_SIZE}">${rects}</svg>`);
  return sharp(png)
    .composite([{ input: svg, top: 0, left: 0 }])
    .png()
    .toBuffer();
}

/**
 * The slices the report's findings point at, in true greyscale with each finding's box drawn,
 * for the PDF. One image per slice, captioned with every finding that cites it and the slice's
 * number as the viewer counts it (1-based, OHIF's order: by position along the slice normal,
 * src/analysis/slice-order.ts); at most six, in finding order.
 */
export async function keyImagesFor(
  d: { db: Db; storage: BlobStorage; renderer: Renderer },
  analysis: Analysis,
  content: Pick<ReportContent, 'findings'>,
): Promise<LocatedKeyImage[]> {
  const { db, storage } = d;
  const byImage = new Map<number, { ref: ImageRef; findings: number[]; boxes: number[][] }>();
  for (const f of content.findings) {
    const ref = f.region?.image ?? f.images[0];
    const index = ref ? analysis.images.findIndex((im) => sameImage(im, ref)) : -1;
    if (!ref || index < 0) continue;
    if (!byImage.has(index) && byImage.size >= MAX_KEY_IMAGES) continue;
    const entry = byImage.get(index) ?? { ref, findings: [], boxes: [] };
    entry.findings.push(f.number);
    if (f.region) entry.boxes.push(f.region.box);
    byImage.set(index, entry);
  }
  if (!byImage.size || !analysis.seriesInstanceUid) return [];
  // The series as the viewer reads it (its DICOM JSON metadata): modality, and every image's place.
  const [series] = await loadStudySeries(db, storage, analysis.studyInstanceUid, analysis.seriesInstanceUid);
  const picks = [...byImage.entries()].sort((a, b) => a[0] - b[0]);
  const prepared = await prepareImages({
    kind: kindFor(series?.modality ?? null),
    slices: picks.map(([i]) => ({ sopInstanceUid: analysis.images[i]!.sopInstanceUid, frameNumber: analysis.images[i]!.frameNumber })),
    maxImages: picks.length,
    size: KEY_IMAGE_SIZE,
    readInstance: await seriesInstanceReader(db, storage, analysis.studyInstanceUid, analysis.seriesInstanceUid),
    renderer: d.renderer,
  });
  const sliceOf = viewerSliceNumbering(series?.slices ?? []);
  const out: LocatedKeyImage[] = [];
  for (const im of prepared.images) {
    const pick = picks.find(([i]) => sameImage(analysis.images[i]!, im));
    if (!pick) continue;
    const [index, { ref, findings, boxes }] = pick;
    const place = sliceOf({ sopInstanceUid: im.sopInstanceUid, frameNumber: ref.frameNumber ?? 1 });
    const slice = place ? `${place.unit} ${place.number} of ${place.of}` : `image ${index + 1} of ${analysis.images.length}`;
    const frame = !place && (ref.frameNumber ?? 1) > 1 ? `, frame ${ref.frameNumber}` : '';
    out.push({
      png: await drawBoxes(im.png, analysis.images[index]!, ref, boxes),
      findingNumbers: findings,
      sopInstanceUid: im.sopInstanceUid,
      seriesInstanceUid: analysis.seriesInstanceUid,
      frameNumber: ref.frameNumber ?? 1,
      slice: place,
      caption: `Finding ${findings.join(', ')} · ${slice}${frame}${boxes.length ? ' (box: the finding’s region)' : ''}`,
    });
  }
  return out;
}
