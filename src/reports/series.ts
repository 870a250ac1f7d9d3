import type { ReportContent } from './content.js';

/**
 * How a report's objects show in a viewer's series list. Each published version of each report
 * has its own SR series and PDF series (series-level attributes, draft or signed, must hold for
 * every instance of a series), numbered and described so that two reports on one study, or a
 * draft and the version that signed it, are never mistaken for one another.
 */

/** SR: the report (TID 1500 when it has regions); TEXT: its text rendition beside a TID 1500 SR; PDF: the document. */
export type ReportObjectKind = 'SR' | 'TEXT' | 'PDF';

/**
 * 100000 + report × 100 + version × 2 − 1 (SR) or version × 2 (PDF): report 3 version 1 is
 * 100301/100302, its signed version 3 100305/100306. High, so viewers list them after the
 * images; report ids wrap at 10 000 and versions at 49 (DICOM IS keeps well within range).
 */
export function reportSeriesNumber(reportId: number, version: number, kind: ReportObjectKind): number {
  const v = ((version - 1) % 49) + 1;
  // The text rendition (TEXT) came later: its own range, 2 000 000 + report × 100 + version
  // (report 3 version 1: 2000301), above every SR/PDF number, so neither existing number moves.
  if (kind === 'TEXT') return 2_000_000 + (reportId % 10_000) * 100 + v;
  return 100_000 + (reportId % 10_000) * 100 + 2 * v - (kind === 'SR' ? 1 : 0);
}

/** The state as a series list says it: a draft says it is not reviewed. */
function stateLabel(c: Pick<ReportContent, 'state'>): string {
  switch (c.state) {
    case 'draft':
    case 'preliminary':
      return 'AI DRAFT - not reviewed';
    case 'final':
      return 'Signed report';
    case 'amended':
      return 'Amended report';
  }
}

const KIND_SUFFIX: Record<ReportObjectKind, string> = { SR: '', TEXT: ' (text)', PDF: ' (PDF)' };

/**
 * "AI DRAFT - not reviewed - R3 v1 2026-11-25 (PDF)", "Signed report - R3 v3 2026-11-26 (text)": which
 * report, which version, draft or signed, and when the version was made (UTC date). LO: at most 64;
 * ASCII only, so a report of an all-ASCII study keeps the study's character set.
 */
export function reportSeriesDescription(
  c: Pick<ReportContent, 'state' | 'reportId' | 'version' | 'createdAt'>,
  kind: ReportObjectKind,
): string {
  const d = new Date(c.createdAt);
  const date = Number.isNaN(d.getTime()) ? '' : ` ${d.toISOString().slice(0, 10)}`;
  return `${stateLabel(c)} - R${c.reportId} v${c.version}${date}${KIND_SUFFIX[kind]}`.slice(0, 64);
}
