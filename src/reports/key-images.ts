import type { Db } from '../db/connection.js';
import { seriesRow } from '../catalog/studies.js';
import type { Analysis } from '../analysis/analyses.js';
import { seriesInstanceReader } from '../analysis/instance-bytes.js';
import { prepareImages, type PrepareKind } from '../analysis/prepare-images.js';
import type { Renderer } from '../dicom/render/renderer.js';
import type { BlobStorage } from '../../storage/types.js';
import type { ReportBody } from './body.js';

export interface KeyImage {
  png: Buffer;
  caption: string;
  findingNumbers: number[];
}

const MAX_KEY_IMAGES = 6;
const KEY_IMAGE_SIZE = 384;

function kindFor(modality: string | null): PrepareKind {
  if (modality === 'CT') return 'ct';
  if (modality === 'MR') return 'mr';
  if (modality && ['CR', 'DX', 'MG', 'XA', 'RF', 'IO', 'PX'].includes(modality)) return 'projection';
  return 'other';
}

/**
 * The slices the findings point at, windowed as the model saw them (CT three windows, MR
 * grey, radiographs by their VOI), for the PDF. One image per slice, captioned with every
 * finding that cites it; at most six, in finding order.
 */
export async function keyImagesFor(
  d: { db: Db; storage: BlobStorage; renderer: Renderer },
  analysis: Analysis,
  body: ReportBody,
): Promise<KeyImage[]> {
  const { db, storage } = d;
  const byImage = new Map<number, number[]>();
  for (const f of body.findings) {
    const first = f.region?.imageIndex ?? f.imageIndices[0];
    if (first === undefined || !analysis.images[first]) continue;
    byImage.set(first, [...(byImage.get(first) ?? []), f.number]);
    if (byImage.size >= MAX_KEY_IMAGES) break;
  }
  if (!byImage.size || !analysis.seriesInstanceUid) return [];
  const series = await seriesRow(db, analysis.seriesInstanceUid);
  const picks = [...byImage.entries()].sort((a, b) => a[0] - b[0]);
  const prepared = await prepareImages({
    kind: kindFor(series?.modality ?? null),
    slices: picks.map(([i]) => ({ sopInstanceUid: analysis.images[i]!.sopInstanceUid, frameNumber: analysis.images[i]!.frameNumber })),
    maxImages: picks.length,
    size: KEY_IMAGE_SIZE,
    readInstance: await seriesInstanceReader(db, storage, analysis.studyInstanceUid, analysis.seriesInstanceUid),
    renderer: d.renderer,
  });
  const out: KeyImage[] = [];
  for (const im of prepared.images) {
    const pick = picks.find(
      ([i]) => analysis.images[i]!.sopInstanceUid === im.sopInstanceUid && analysis.images[i]!.frameNumber === im.frameNumber,
    );
    if (!pick) continue;
    const [index, findings] = pick;
    out.push({
      png: im.png,
      findingNumbers: findings,
      caption: `Finding ${findings.join(', ')} · image ${index + 1} of ${analysis.images.length}`,
    });
  }
  return out;
}
