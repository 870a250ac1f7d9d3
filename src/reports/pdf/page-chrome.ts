import type { ReportContent } from '../content.js';
import { FONT, SIZE, COLOR } from './flow.js';
import { AI_DRAFT_BANNER, dicomDate, instant, isSigned, personName, shortSha, signerName } from './format.js';

/** Page areas outside the text flow, in points on an A4 page. */
export const CHROME = { bannerHeight: 26, runningHeader: 20, footer: 40, side: 50 } as const;
export const MARGINS = {
  top: CHROME.bannerHeight + CHROME.runningHeader + 16,
  bottom: CHROME.footer + 14,
  left: CHROME.side,
  right: CHROME.side,
} as const;

const DRAFT_RED = '#b00020';
const SIGNED_GREY = '#2e4a3b';

/**
 * What the status strip says: the draft warning, or who signed (and why it was amended); first
 * of all, when the model is not validated, that it is not.
 */
export function statusLine(c: ReportContent): string {
  const unvalidated = c.algorithm.validated ? '' : 'UNVALIDATED MODEL · ';
  if (!isSigned(c.state)) return unvalidated ? `${unvalidated}AI DRAFT — NOT FOR DIAGNOSTIC USE` : AI_DRAFT_BANNER;
  const label = c.state === 'amended' ? 'AMENDED' : 'FINAL';
  const who = c.signer ? ` — signed by ${signerName(c.signer)}, ${instant(c.signer.at)}` : ' — signer not recorded';
  return `${unvalidated}${label}${who}`;
}

/**
 * Banner, running header and footer on every page, drawn once the flow is done (pages are
 * buffered) so "page x of y" is known. The bottom margin is lifted while drawing: pdfkit would
 * otherwise treat text below it as overflow and add a page.
 */
export function drawPageChrome(doc: PDFKit.PDFDocument, c: ReportContent): void {
  const range = doc.bufferedPageRange();
  const signed = isSigned(c.state);
  const patient = `${personName(c.patient.name)} · ID ${c.patient.id} · born ${dicomDate(c.patient.birthDate)} · study ${dicomDate(c.study.studyDate)}${
    c.study.accessionNumber ? ` · acc. ${c.study.accessionNumber}` : ''
  }`;
  const algorithm = `Algorithm: ${c.algorithm.name}${c.algorithm.validated ? '' : ' [unvalidated model]'} (SHA-256 ${shortSha(c.algorithm.sha256)}${c.algorithm.quantization ? `, ${c.algorithm.quantization}` : ''}) · RadiantAI ${c.algorithm.version}`;
  const node = `Node: ${c.node.aeTitle}${c.node.institutionName ? `, ${c.node.institutionName}` : ''} · ${c.node.manufacturer} ${c.node.softwareVersion}`;

  for (let i = range.start; i < range.start + range.count; i++) {
    doc.switchToPage(i);
    const page = doc.page;
    const savedBottom = page.margins.bottom;
    page.margins.bottom = 0;
    const width = page.width - 2 * CHROME.side;

    doc
      .rect(0, 0, page.width, CHROME.bannerHeight)
      .fillColor(signed && c.algorithm.validated ? SIGNED_GREY : DRAFT_RED)
      .fill();
    doc
      .font(FONT.bold)
      .fontSize(signed ? SIZE.body : 10.5)
      .fillColor('#ffffff')
      .text(statusLine(c), CHROME.side, signed ? 8.5 : 7.5, {
        width,
        align: 'center',
        height: CHROME.bannerHeight,
        ellipsis: true,
        lineBreak: false,
      });

    doc
      .font(FONT.regular)
      .fontSize(SIZE.small)
      .fillColor(COLOR.muted)
      .text(patient, CHROME.side, CHROME.bannerHeight + 7, { width: width - 90, height: 11, ellipsis: true, lineBreak: false });
    doc.text(`Report ${c.reportId} v${c.version}`, CHROME.side + width - 90, CHROME.bannerHeight + 7, {
      width: 90,
      align: 'right',
      lineBreak: false,
    });
    const hy = CHROME.bannerHeight + CHROME.runningHeader;
    doc
      .moveTo(CHROME.side, hy)
      .lineTo(CHROME.side + width, hy)
      .lineWidth(0.5)
      .strokeColor(COLOR.rule)
      .stroke();

    const fy = page.height - CHROME.footer;
    doc
      .moveTo(CHROME.side, fy)
      .lineTo(CHROME.side + width, fy)
      .lineWidth(0.5)
      .strokeColor(COLOR.rule)
      .stroke();
    doc
      .font(FONT.regular)
      .fontSize(SIZE.small - 0.5)
      .fillColor(COLOR.muted);
    const right = 190;
    doc.text(algorithm, CHROME.side, fy + 5, { width: width - 70, height: 10, ellipsis: true, lineBreak: false });
    doc.text(`Page ${i - range.start + 1} of ${range.count}`, CHROME.side + width - 70, fy + 5, {
      width: 70,
      align: 'right',
      lineBreak: false,
    });
    doc.text(node, CHROME.side, fy + 15, { width: width - right, height: 10, ellipsis: true, lineBreak: false });
    doc.text(`Report ${c.reportId} · version ${c.version} · ${c.state}`, CHROME.side + width - right, fy + 15, {
      width: right,
      align: 'right',
      lineBreak: false,
    });
    page.margins.bottom = savedBottom;
  }
}
