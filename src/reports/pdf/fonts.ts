import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { PdfReportError } from './errors.js';

export interface ReportFonts {
  regular: Buffer;
  bold: Buffer;
}

let cached: ReportFonts | undefined;

/**
 * DejaVu Sans, because pdfkit's built-in Helvetica covers WinAnsi only and patient names are
 * often Latin-extended, Greek or Cyrillic. Found through the package, not a path, so the node
 * runs from any install location; read once per process (the files are ~700 KB each).
 */
export function reportFonts(): ReportFonts {
  if (cached) return cached;
  let dir: string;
  try {
    dir = path.join(path.dirname(createRequire(import.meta.url).resolve('dejavu-fonts-ttf/package.json')), 'ttf');
  } catch (err) {
    throw new PdfReportError('the dejavu-fonts-ttf package is not installed', { cause: err });
  }
  try {
    cached = {
      regular: readFileSync(path.join(dir, 'DejaVuSans.ttf')),
      bold: readFileSync(path.join(dir, 'DejaVuSans-Bold.ttf')),
    };
  } catch (err) {
    throw new PdfReportError(`DejaVu Sans fonts are missing under ${dir}`, { cause: err });
  }
  return cached;
}
