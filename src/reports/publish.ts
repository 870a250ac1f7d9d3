import { RadiantError } from '../errors.js';
import { Readable } from 'node:stream';
import type { Db, Trx } from '../db/connection.js';
import type { Logger } from '../logger.js';
import type { Ingestor } from '../ingest/ingest.js';
import type { Analysis } from '../analysis/analyses.js';
import { uidFromNames } from '../dicom/new-uid.js';
import type { Renderer } from '../dicom/render/renderer.js';
import { findInstance } from '../catalog/catalog.js';
import type { BlobStorage } from '../../storage/types.js';
import type { ImageRef, ReportContent, ReportState } from './content.js';
import { keyImagesFor } from './key-images.js';
import { renderReportPdf } from './pdf/render.js';
import { buildEncapsulatedPdf } from './pdf/encapsulated.js';
import { buildStructuredReport, buildTextRenditionSr, COMPREHENSIVE_3D_SR_SOP_CLASS as COMPREHENSIVE_3D_SR } from './sr/sr-builder.js';
import { drawsRegions } from './sr/content-tree.js';
import { ENCAPSULATED_PDF_SOP_CLASS as ENCAPSULATED_PDF } from '../dicom/uids.js';
import { setPublishedObjects } from '../catalog/reports.js';
import type { Report } from './report-store.js';
import { reportSeriesNumber } from './series.js';

export interface PublishDeps {
  db: Db;
  storage: BlobStorage;
  ingestor: Ingestor;
  log: Logger;
  /** The node's render pipeline: key images are prepared in its workers. */
  renderer: Renderer;
  /** MEDGEMMA_ALLOW_UNVALIDATED_MODEL: an unvalidated model's report objects may be forwarded by rules too. */
  allowUnvalidatedModel?: boolean;
  /** Runs in the transaction that records a version's objects: its deliveries (src/integrations/deliveries.ts). */
  onPublished?: PublishedHook;
}

/** Work that follows a version's publishing, queued with the record of its objects; `forwardingHeld`: why rules hold them. */
export type PublishedHook = (
  trx: Trx,
  v: { reportId: number; version: number; state: ReportState; forwardingHeld: string | undefined },
) => Promise<void>;

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
  /** The SR's text rendition, when the SR is a TID 1500 report (it has regions). */
  textSrSopInstanceUid?: string;
  pdfSopInstanceUid: string;
  /** Set when forwarding rules hold the objects (why). */
  forwardingHeld?: string;
  /** What this run built and stored (0 for an object a previous run had stored). */
  timings: { srMs: number; pdfMs: number; storeMs: number };
}

/** The SOP Instance and Series UIDs of one version's SR, its text rendition (when it has one) and PDF. */
export interface VersionUids {
  sr: { sop: string; series: string };
  text: { sop: string; series: string };
  pdf: { sop: string; series: string };
}

/**
 * The UIDs of a version's objects, the same every time they are built: a publish retried after
 * a crash (the SR stored, the PDF not) finds what it had stored instead of making a second SR.
 * Report ids restart with every database, so the study, the report id and its creation time
 * (to the millisecond) name the report; the version and the object name the rest.
 */
export function versionUids(report: Pick<Report, 'id' | 'studyInstanceUid' | 'createdAt'>, version: number): VersionUids {
  const uid = (what: string) =>
    uidFromNames('radiant-report', report.studyInstanceUid, String(report.id), report.createdAt, String(version), what);
  return {
    sr: { sop: uid('sr'), series: uid('sr-series') },
    text: { sop: uid('text-sr'), series: uid('text-sr-series') },
    pdf: { sop: uid('pdf'), series: uid('pdf-series') },
  };
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
 * Stores one report object through the node's one ingest path; an object already stored under
 * its UID (by an earlier attempt, or a concurrent one: ignored or refused as a duplicate) counts
 * as stored.
 */
async function storeOnce(d: PublishDeps, bytes: Buffer, holdForwarding: string | undefined): Promise<void> {
  let r;
  try {
    r = await d.ingestor.ingestStream(Readable.from([bytes]), { source: 'ai', ...(holdForwarding ? { holdForwarding } : {}) });
  } catch (err) {
    if (err instanceof RadiantError && err.kind === 'duplicate') return;
    throw err;
  }
  if (r.outcome === 'ignored') d.log.info({ sop: r.sopInstanceUid }, 'report object was already stored');
}

/**
 * Writes the SR, its text rendition when the SR is a TID 1500 report, and the Encapsulated PDF of
 * one report version and stores them through the node's one ingest path (source "ai"): they are indexed, in QIDO-RS, WADO-RS, C-FIND and the
 * viewer at once, and forwarding rules see them like any arrival. Earlier versions' objects stay.
 * Safe to repeat: the UIDs are the version's own (versionUids), and an object already in the
 * index is neither built nor stored again.
 */
export async function publishVersion(
  d: PublishDeps,
  report: Report,
  analysis: Analysis,
  content: ReportContent,
  uids: VersionUids,
): Promise<Published> {
  const at = new Date(content.createdAt);
  const timings = { srMs: 0, pdfMs: 0, storeMs: 0 };
  const holdForwarding = forwardingHold(analysis, d.allowUnvalidatedModel ?? false);
  const text = drawsRegions(content);
  if (holdForwarding) d.log.info({ report: report.id, why: holdForwarding }, 'report objects stored; forwarding rules hold them');
  const store = async (bytes: Buffer) => {
    const t = performance.now();
    await storeOnce(d, bytes, holdForwarding);
    timings.storeMs += performance.now() - t;
  };
  try {
    if (!(await findInstance(d.db, uids.sr.sop))) {
      const t0 = performance.now();
      const sr = buildStructuredReport(content, {
        sopInstanceUid: uids.sr.sop,
        seriesInstanceUid: uids.sr.series,
        seriesNumber: reportSeriesNumber(report.id, content.version, 'SR'),
        instanceNumber: 1,
        contentDateTime: at,
      });
      timings.srMs = performance.now() - t0;
      await store(sr);
    }
    // OHIF 3 shows a TID 1500 report as its boxes only: the impression and the box-less findings
    // are readable in the viewer from the text rendition, an AI result object like the others
    // (held, forwarded, made again for every version that has regions).
    if (text && !(await findInstance(d.db, uids.text.sop))) {
      const t0 = performance.now();
      const sr = buildTextRenditionSr(content, {
        sopInstanceUid: uids.text.sop,
        seriesInstanceUid: uids.text.series,
        seriesNumber: reportSeriesNumber(report.id, content.version, 'TEXT'),
        instanceNumber: 1,
        contentDateTime: at,
      });
      timings.srMs += performance.now() - t0;
      await store(sr);
    }
    if (!(await findInstance(d.db, uids.pdf.sop))) {
      const t1 = performance.now();
      const keyImages = await keyImagesFor(d, analysis, content).catch((err: unknown) => {
        // Key images illustrate; a slice that cannot be rendered must not stop the report.
        d.log.warn({ report: report.id, err: (err as Error).message }, 'key images not rendered');
        return [];
      });
      const pdf = await renderReportPdf(content, keyImages);
      const enc = buildEncapsulatedPdf(content, pdf, {
        sopInstanceUid: uids.pdf.sop,
        seriesInstanceUid: uids.pdf.series,
        seriesNumber: reportSeriesNumber(report.id, content.version, 'PDF'),
        instanceNumber: 1,
        contentDateTime: at,
      });
      timings.pdfMs = performance.now() - t1;
      await store(enc);
    }
  } catch (err) {
    if (err instanceof PublishError) throw err;
    throw new PublishError(`storing report ${report.id} v${content.version} failed: ${(err as Error).message}`, { cause: err });
  }
  await d.db.transaction(async (trx) => {
    await setPublishedObjects(trx, report.id, content.version, uids.sr, uids.pdf);
    await d.onPublished?.(trx, { reportId: report.id, version: content.version, state: content.state, forwardingHeld: holdForwarding });
  });
  return {
    srSopInstanceUid: uids.sr.sop,
    ...(text ? { textSrSopInstanceUid: uids.text.sop } : {}),
    pdfSopInstanceUid: uids.pdf.sop,
    ...(holdForwarding ? { forwardingHeld: holdForwarding } : {}),
    timings,
  };
}
