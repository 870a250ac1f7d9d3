import { RadiantError } from '../errors.js';
import { Readable } from 'node:stream';
import type { Db } from '../db/connection.js';
import type { Logger } from '../logger.js';
import type { Ingestor } from '../ingest/ingest.js';
import type { Analysis } from '../analysis/analyses.js';
import { newUid } from '../dicom/new-uid.js';
import type { Renderer } from '../dicom/render/renderer.js';
import type { BlobStorage } from '../../storage/types.js';
import type { ImageRef, ReportContent } from './content.js';
import { keyImagesFor } from './key-images.js';
import { renderReportPdf } from './pdf/render.js';
import { buildEncapsulatedPdf } from './pdf/encapsulated.js';
import { buildStructuredReport, COMPREHENSIVE_3D_SR_SOP_CLASS as COMPREHENSIVE_3D_SR } from './sr/sr-builder.js';
import { ENCAPSULATED_PDF_SOP_CLASS as ENCAPSULATED_PDF } from '../dicom/uids.js';
import { setPublishedObjects } from '../catalog/reports.js';
import type { Report } from './report-store.js';
import type { ReportBody } from './body.js';

/**
 * Each published version gets its own SR and PDF series: series-level attributes (the
 * description says draft or signed) must hold for every instance of a series, and viewers show
 * one report per series. Numbers are high, so viewers list them after the images.
 */
const srSeriesNumber = (version: number) => 10_000 + 2 * version - 1;
const pdfSeriesNumber = (version: number) => 10_000 + 2 * version;

export interface PublishDeps {
  db: Db;
  storage: BlobStorage;
  ingestor: Ingestor;
  log: Logger;
  /** The node's render pipeline: key images are prepared in its workers. */
  renderer: Renderer;
  /** MEDGEMMA_ALLOW_UNVALIDATED_MODEL: an unvalidated model's report objects may be forwarded by rules too. */
  allowUnvalidatedModel?: boolean;
}

/**
 * Why forwarding rules must hold a report's objects: an analysis whose model is not validated
 * never leaves the node on its own (issue 15) unless MEDGEMMA_ALLOW_UNVALIDATED_MODEL says so.
 * Undefined: they may go.
 */
export function forwardingHold(analysis: Analysis, allowUnvalidatedModel: boolean): string | undefined {
  if (analysis.model?.validated || allowUnvalidatedModel) return undefined;
  return `unvalidated model (${analysis.model?.validation.reason ?? 'no model recorded'})`;
}

export interface Published {
  srSopInstanceUid: string;
  pdfSopInstanceUid: string;
  /** Set when forwarding rules hold the objects (why). */
  forwardingHeld?: string;
  timings: { srMs: number; pdfMs: number; storeMs: number };
}

export class PublishError extends RadiantError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('internal', message, { cause: options?.cause, code: 'internal_error' });
    this.name = 'PublishError';
  }
}

/** The report's current objects, to be named as predecessors by the next version's. */
export function currentObjects(r: Report): ImageRef[] {
  const out: ImageRef[] = [];
  if (r.srSopInstanceUid && r.srSeriesInstanceUid)
    out.push({ sopClassUid: COMPREHENSIVE_3D_SR, sopInstanceUid: r.srSopInstanceUid, seriesInstanceUid: r.srSeriesInstanceUid });
  if (r.pdfSopInstanceUid && r.pdfSeriesInstanceUid)
    out.push({ sopClassUid: ENCAPSULATED_PDF, sopInstanceUid: r.pdfSopInstanceUid, seriesInstanceUid: r.pdfSeriesInstanceUid });
  return out;
}

/**
 * Writes the SR and the Encapsulated PDF of one report version and stores both through the
 * node's one ingest path (source "ai"): they are indexed, in QIDO-RS, WADO-RS, C-FIND and the
 * viewer at once, and forwarding rules see them like any arrival. Earlier versions' objects stay.
 */
export async function publishVersion(
  d: PublishDeps,
  report: Report,
  analysis: Analysis,
  body: ReportBody,
  content: ReportContent,
): Promise<Published> {
  const at = new Date(content.createdAt);
  const t0 = performance.now();
  const srUid = newUid();
  const srSeries = newUid();
  const sr = buildStructuredReport(content, {
    sopInstanceUid: srUid,
    seriesInstanceUid: srSeries,
    seriesNumber: srSeriesNumber(content.version),
    instanceNumber: 1,
    contentDateTime: at,
  });
  const t1 = performance.now();
  const keyImages = await keyImagesFor(d, analysis, body).catch((err: unknown) => {
    // Key images illustrate; a slice that cannot be rendered must not stop the report.
    d.log.warn({ report: report.id, err: (err as Error).message }, 'key images not rendered');
    return [];
  });
  const pdf = await renderReportPdf(content, keyImages);
  const pdfUid = newUid();
  const pdfSeries = newUid();
  const enc = buildEncapsulatedPdf(content, pdf, {
    sopInstanceUid: pdfUid,
    seriesInstanceUid: pdfSeries,
    seriesNumber: pdfSeriesNumber(content.version),
    instanceNumber: 1,
    contentDateTime: at,
  });
  const t2 = performance.now();
  const holdForwarding = forwardingHold(analysis, d.allowUnvalidatedModel ?? false);
  if (holdForwarding) d.log.info({ report: report.id, why: holdForwarding }, 'report objects stored; forwarding rules hold them');
  try {
    for (const bytes of [sr, enc]) {
      const r = await d.ingestor.ingestStream(Readable.from([bytes]), { source: 'ai', ...(holdForwarding ? { holdForwarding } : {}) });
      if (r.outcome === 'ignored') throw new PublishError(`the node ignored report object ${r.sopInstanceUid} (duplicate policy)`);
    }
  } catch (err) {
    if (err instanceof PublishError) throw err;
    throw new PublishError(`storing report ${report.id} v${content.version} failed: ${(err as Error).message}`, { cause: err });
  }
  await setPublishedObjects(d.db, report.id, content.version, { sop: srUid, series: srSeries }, { sop: pdfUid, series: pdfSeries });
  const t3 = performance.now();
  return {
    srSopInstanceUid: srUid,
    pdfSopInstanceUid: pdfUid,
    ...(holdForwarding ? { forwardingHeld: holdForwarding } : {}),
    timings: { srMs: t1 - t0, pdfMs: t2 - t1, storeMs: t3 - t2 },
  };
}
