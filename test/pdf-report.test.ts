import { createHash } from 'node:crypto';
import { createLogger } from '../src/logger.js';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import dcmjs from 'dcmjs';
import sharp from 'sharp';
import { AI_DISCLAIMER, type ReportContent, type ReportFinding, type ReportState } from '../src/reports/content.js';
import type { KeyImage } from '../src/reports/key-images.js';
import { renderReportPdf } from '../src/reports/pdf/render.js';
import { ENCAPSULATED_PDF_STORAGE, buildEncapsulatedPdf, type EncapsulatedPdfIds } from '../src/reports/pdf/encapsulated.js';
import { PdfReportError } from '../src/reports/pdf/errors.js';
import { AI_DRAFT_BANNER } from '../src/reports/pdf/format.js';
import { openEncapsulatedDocument } from '../dicomweb/encapsulated-document.js';
import { MemoryBlobs } from '../storage/memory.js';
import { parseHeaderFile } from '../src/dicom/header.js';
import type { StoredInstanceRow } from '../src/catalog/catalog.js';

const { DicomMessage, DicomMetaDictionary } = dcmjs.data;

const HOSTILE = '<script>alert(1)</script>';
const SHA = 'a3f1c9e07b2d4c58e6f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6';

function finding(n: number, overrides: Partial<ReportFinding> = {}): ReportFinding {
  return {
    number: n,
    trackingUid: `2.25.${1000 + n}`,
    description: `Finding ${n}: solid nodule in the right upper lobe, well circumscribed (token F${n}X).`,
    anatomicalLocation: 'right upper lobe',
    laterality: 'right',
    category: 'abnormal',
    severity: 'mild',
    confidence: 0.5 + (n % 5) / 10,
    images: [],
    region: null,
    recommendation: null,
    ...overrides,
  };
}

// Issue 16: which report, which version, draft or signed, and the version's date.
const DRAFT_SERIES_DESCRIPTION = 'AI DRAFT - not reviewed - R42 v1 2024-03-15 (PDF)';

function content(state: ReportState, over: Partial<ReportContent> = {}): ReportContent {
  const signed = state === 'final' || state === 'amended';
  return {
    reportId: 42,
    version: signed ? 2 : 1,
    state,
    patient: { name: 'Müller^Zoë', id: 'PAT-0042', issuer: 'HOSP', birthDate: '19580214', sex: 'F' },
    study: {
      studyInstanceUid: '2.25.118402209376287467418939116932843296545',
      accessionNumber: 'ACC-7781',
      studyDate: '20240315',
      studyTime: '101500',
      studyId: '77',
      studyDescription: 'CT Thorax — Θώρακας / КТ грудной клетки',
      referringPhysicianName: 'Ørsted^Hans',
      specificCharacterSet: 'ISO_IR 192',
    },
    procedure: 'CT chest without contrast',
    modality: 'CT',
    clinicalIndication: 'Persistent cough for 6 weeks; former smoker.',
    technique: 'Axial CT of the chest, 1.25 mm slices, lung and soft-tissue kernels; no intravenous contrast.',
    findings: [
      finding(1, {
        confidence: 0.87,
        description: 'Solid pulmonary nodule in the right upper lobe, 8 mm.',
        recommendation: 'Follow-up CT in 6–12 months (Fleischner 2017).',
      }),
      finding(2, {
        confidence: 0.64,
        description: 'Mild centrilobular emphysema in both upper lobes.',
        laterality: 'bilateral',
        anatomicalLocation: 'upper lobes',
      }),
      finding(3, {
        confidence: null,
        description: 'Small calcified granuloma, left lower lobe; benign.',
        laterality: 'left',
        category: 'incidental',
        severity: 'normal',
        anatomicalLocation: 'left lower lobe',
      }),
      finding(4, {
        confidence: 0.32,
        description: 'No pleural effusion.',
        laterality: 'bilateral',
        category: 'normal',
        severity: 'normal',
        anatomicalLocation: 'pleura',
      }),
    ],
    measurements: [
      { findingNumber: 1, quantity: 'Long axis diameter', value: 8.4, unit: 'mm' },
      { findingNumber: 1, quantity: 'Mean attenuation', value: 34, unit: "[hnsf'U]" },
      { findingNumber: 1, quantity: 'Volume', value: 231.5, unit: 'mm3' },
      { findingNumber: 2, quantity: 'Emphysema area', value: 12.75, unit: 'cm2' },
    ],
    impression: 'Indeterminate 8 mm solid nodule in the right upper lobe; mild emphysema.',
    comparison: 'CT chest 2022-01-10: nodule not present.',
    limitations: 'Motion artefact at the lung bases.',
    imageLibrary: [],
    algorithm: {
      name: 'medgemma-4b-it-Q4_K_M.gguf',
      version: '0.1.0',
      sha256: SHA,
      quantization: 'Q4_K_M',
      backend: 'llama.cpp',
      promptTemplate: 'ct-chest-v1',
      deviceUid: '2.25.99',
      validated: true,
      validation: 'SHA-256 listed in MEDGEMMA_TRUSTED_SHA256',
    },
    node: { aeTitle: 'RADIANT', institutionName: 'Sankt Görans Sjukhus', softwareVersion: '0.1.0', manufacturer: 'RadiantAI' },
    signer: signed ? { name: 'Σωκράτης^Ιωάννης', username: 'jsokrates', organization: 'Radiology', at: '2024-03-16T09:30:00Z' } : null,
    amendmentReason: state === 'amended' ? 'Nodule size corrected after re-measurement.' : null,
    disclaimer: AI_DISCLAIMER,
    predecessors: [],
    createdAt: signed ? '2024-03-16T09:30:00Z' : '2024-03-15T11:02:03Z',
    ...over,
  };
}

/** Two generated greyscale "slices": a ring phantom and a gradient, as PNG. */
async function keyImages(): Promise<KeyImage[]> {
  const size = 192;
  const ring = Buffer.alloc(size * size);
  const gradient = Buffer.alloc(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const r = Math.hypot(x - size / 2, y - size / 2);
      ring[y * size + x] = r < 70 && r > 50 ? 230 : r < 30 ? 120 : 20;
      gradient[y * size + x] = Math.round((x + y) * (255 / (2 * size)));
    }
  }
  const png = (raw: Buffer): Promise<Buffer> =>
    sharp(raw, { raw: { width: size, height: size, channels: 1 } })
      .png()
      .toBuffer();
  return [
    { png: await png(ring), caption: 'Finding 1 · image 34 of 120 (lung window)', findingNumbers: [1] },
    { png: await png(gradient), caption: 'Finding 2 · image 12 of 120', findingNumbers: [2] },
  ];
}

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) throw new Error(`${cmd} must be on PATH: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

let tmp: string;

async function writeTmp(name: string, bytes: Buffer): Promise<string> {
  const p = path.join(tmp, name);
  await fs.writeFile(p, bytes);
  return p;
}

/** pdftotext output with runs of whitespace folded, so wrapped lines still match. */
async function pdfText(name: string, pdf: Buffer): Promise<string> {
  const p = await writeTmp(name, pdf);
  return run('pdftotext', ['-enc', 'UTF-8', p, '-']).replace(/\s+/g, ' ');
}

/** Rasterises every page with pdftoppm and returns the PNG files, in page order. */
async function rasterise(name: string, pdf: Buffer): Promise<string[]> {
  const p = await writeTmp(`${name}.pdf`, pdf);
  const prefix = path.join(tmp, `${name}-page`);
  run('pdftoppm', ['-png', '-r', '50', p, prefix]);
  const files = (await fs.readdir(tmp)).filter((f) => f.startsWith(`${name}-page`) && f.endsWith('.png')).sort();
  return files.map((f) => path.join(tmp, f));
}

/** The colour of the banner strip, sampled near the top-left corner of a rasterised page. */
async function bannerPixel(png: string): Promise<{ r: number; g: number; b: number }> {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const i = (5 * info.width + 5) * info.channels;
  return { r: data[i]!, g: data[i + 1]!, b: data[i + 2]! };
}

function pageCount(pdf: string): number {
  const m = /Pages:\s+(\d+)/.exec(run('pdfinfo', [pdf]));
  if (!m) throw new Error('pdfinfo printed no page count');
  return Number(m[1]);
}

const ids = (over: Partial<EncapsulatedPdfIds> = {}): EncapsulatedPdfIds => ({
  sopInstanceUid: '2.25.301955348122745238791462950284622003745',
  seriesInstanceUid: '2.25.182399471316347392634950173456418202871',
  seriesNumber: 9902,
  instanceNumber: 1,
  contentDateTime: new Date('2024-03-15T11:02:03.250Z'),
  ...over,
});

function parse(bytes: Buffer): Record<string, unknown> {
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  const file = DicomMessage.readFile(ab);
  return { ...DicomMetaDictionary.naturalizeDataset(file.meta), ...DicomMetaDictionary.naturalizeDataset(file.dict) };
}

function dciodvfy(p: string): { output: string; errors: string[]; warnings: string[] } {
  const r = spawnSync('dciodvfy', [p], { encoding: 'utf8' });
  if (r.error) throw new Error(`dciodvfy must be on PATH: ${r.error.message}`);
  const output = `${r.stdout}${r.stderr}`;
  const lines = output.split('\n');
  return { output, errors: lines.filter((l) => /^\s*Error/.test(l)), warnings: lines.filter((l) => /^\s*Warning/.test(l)) };
}

describe('PDF report', function () {
  this.timeout(120000);
  let images: KeyImage[];
  let draftPdf: Buffer;
  let finalPdf: Buffer;

  before(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'radiant-pdf-'));
    images = await keyImages();
    draftPdf = await renderReportPdf(content('preliminary'), images);
    finalPdf = await renderReportPdf(
      content('final', { patient: { name: HOSTILE, id: 'PAT-0043', issuer: null, birthDate: '19700101', sex: 'M' } }),
      images,
    );
  });

  after(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
  });

  describe('renderReportPdf', () => {
    it('draft: pages rasterise, and every page carries the red AI-draft banner', async () => {
      expect(draftPdf.subarray(0, 5).toString('latin1')).to.equal('%PDF-');
      const pages = await rasterise('draft', draftPdf);
      expect(pages.length)
        .to.equal(pageCount(path.join(tmp, 'draft.pdf')))
        .and.to.be.greaterThan(0);
      for (const p of pages) {
        expect((await fs.stat(p)).size, p).to.be.greaterThan(1000);
        const px = await bannerPixel(p);
        expect(px.r, `${p} banner red`).to.be.greaterThan(140);
        expect(px.g, `${p} banner red`).to.be.lessThan(60);
      }
    });

    it('draft: identification, sections, findings with confidence, measurements, banner and disclaimer are text', async () => {
      const text = await pdfText('draft.pdf', draftPdf);
      for (const s of [
        'Müller, Zoë',
        'PAT-0042',
        '1958-02-14',
        'Female',
        'ACC-7781',
        '2024-03-15',
        'Θώρακας / КТ грудной клетки',
        'Ørsted, Hans',
        'Persistent cough for 6 weeks; former smoker.',
        'Axial CT of the chest, 1.25 mm slices',
        'CT chest 2022-01-10: nodule not present.',
        'Solid pulmonary nodule in the right upper lobe, 8 mm.',
        'Mild centrilobular emphysema in both upper lobes.',
        'Small calcified granuloma, left lower lobe; benign.',
        'Model confidence 87%',
        'Model confidence 64%',
        'Model confidence 32%',
        'Written by radiologist',
        'Follow-up CT in 6–12 months (Fleischner 2017).',
        '8.4 mm',
        '34 HU',
        '231.5 mm³',
        '12.75 cm²',
        'Indeterminate 8 mm solid nodule in the right upper lobe; mild emphysema.',
        'Motion artefact at the lung bases.',
        'Finding 1 · image 34 of 120 (lung window)',
        'Finding 2 · image 12 of 120',
        AI_DRAFT_BANNER,
        AI_DISCLAIMER,
        'medgemma-4b-it-Q4_K_M.gguf',
        `SHA-256 ${SHA.slice(0, 12)}`,
        'Q4_K_M',
        'Node: RADIANT, Sankt Görans Sjukhus',
        'Report 42 · version 1 · preliminary',
      ]) {
        expect(text, s).to.include(s);
      }
      expect(text).not.to.include('FINAL');
      const pages = pageCount(path.join(tmp, 'draft.pdf'));
      for (let i = 1; i <= pages; i++) expect(text).to.include(`Page ${i} of ${pages}`);
      expect(text.split(AI_DRAFT_BANNER).length - 1, 'banner once per page').to.be.at.least(pages);
    });

    it('final: hostile name shown literally, FINAL with signer and time, no draft banner', async () => {
      const text = await pdfText('final.pdf', finalPdf);
      expect(text).to.include(HOSTILE);
      expect(text).to.include('FINAL');
      expect(text).to.include('Σωκράτης, Ιωάννης');
      expect(text).to.include('2024-03-16 09:30 UTC');
      // Issue 16: a signed report is worded as signed: no draft disclaimer, a note that an AI assisted.
      expect(text).not.to.include('must be reviewed');
      expect(text).to.include('AI-assisted report: drafted with an AI model');
      expect(text).to.include('Solid pulmonary nodule in the right upper lobe, 8 mm.');
      expect(text).not.to.include(AI_DRAFT_BANNER);
      expect(text).not.to.include('AI DRAFT');
      const pages = await rasterise('final', finalPdf);
      expect(pages.length).to.be.greaterThan(0);
      for (const p of pages) {
        const px = await bannerPixel(p);
        expect(px.r < 140 || px.g > 60, `${p} has no red draft banner`).to.equal(true);
      }
    });

    it('amended: AMENDED with the reason', async () => {
      const text = await pdfText('amended.pdf', await renderReportPdf(content('amended'), []));
      expect(text).to.include('AMENDED');
      expect(text).to.include('Nodule size corrected after re-measurement.');
      expect(text).not.to.include(AI_DRAFT_BANNER);
    });

    it('a 40-finding report flows over several pages and every finding stays extractable', async () => {
      const findings = Array.from({ length: 40 }, (_, i) => finding(i + 1));
      const measurements = findings.map((f) => ({
        findingNumber: f.number,
        quantity: `Diameter of nodule ${f.number}`,
        value: 3 + f.number / 4,
        unit: 'mm',
      }));
      const pdf = await renderReportPdf(content('draft', { findings, measurements }), images);
      const text = await pdfText('long.pdf', pdf);
      const pages = pageCount(path.join(tmp, 'long.pdf'));
      expect(pages).to.be.greaterThan(1);
      for (const f of findings) {
        expect(text, `finding ${f.number}`).to.include(`(token F${f.number}X)`);
        expect(text, `measurement ${f.number}`).to.include(`Diameter of nodule ${f.number} `);
      }
      for (let i = 1; i <= pages; i++) expect(text).to.include(`Page ${i} of ${pages}`);
      expect(text.split(AI_DRAFT_BANNER).length - 1).to.be.at.least(pages);
      const raster = await rasterise('long', pdf);
      expect(raster.length).to.equal(pages);
    });

    it('no text is drawn below the footer rule or over the running header (bounding boxes)', async () => {
      // Forty findings, one of them longer than a page, and an unbreakable 300-character token.
      const findings = Array.from({ length: 40 }, (_, i) => finding(i + 1));
      findings[20] = finding(21, {
        description: `${'Extensive ground-glass opacity with interlobular septal thickening. '.repeat(90)}${'X'.repeat(300)}`,
      });
      const pdf = await renderReportPdf(content('draft', { findings }), images);
      const p = await writeTmp('bbox.pdf', pdf);
      const html = run('pdftotext', ['-bbox', p, '-']);
      const pageRe = /<page width="([\d.]+)" height="([\d.]+)">([\s\S]*?)<\/page>/g;
      let pages = 0;
      for (const m of html.matchAll(pageRe)) {
        pages++;
        const height = Number(m[2]);
        const words = [...m[3]!.matchAll(/<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)<\/word>/g)];
        // Body text lies between the running header (y 46) and the footer rule (height - 40);
        // chrome text lies outside. A body word crossing either line would be an overlap.
        for (const w of words) {
          const y0 = Number(w[2]);
          const y1 = Number(w[4]);
          const crossesFooter = y0 < height - 40 && y1 > height - 40;
          const crossesHeader = y0 < 46 && y1 > 46;
          expect(crossesFooter || crossesHeader, `page ${pages}: "${w[5]}" at ${y0}-${y1}`).to.equal(false);
        }
      }
      expect(pages).to.be.greaterThan(1);
    });

    it('is deterministic and carries Title, Author and CreationDate from the content', async () => {
      const c = content('preliminary');
      const again = await renderReportPdf(c, images);
      expect(again.equals(draftPdf), 'same content, same bytes').to.equal(true);
      const info = run('pdfinfo', ['-isodates', path.join(tmp, 'draft.pdf')]);
      expect(info).to.match(/Title:\s+AI draft radiology report: CT chest without contrast/);
      expect(info).to.match(/Author:\s+RadiantAI/);
      expect(info).to.match(/CreationDate:\s+2024-03-15T11:02:03/);
    });

    it('an unreadable key image becomes a note, not a failure', async () => {
      const pdf = await renderReportPdf(content('draft'), [
        { png: Buffer.from('not a png'), caption: 'Broken slice', findingNumbers: [1] },
      ]);
      const text = await pdfText('broken-image.pdf', pdf);
      expect(text).to.include('[image could not be embedded]');
      expect(text).to.include('Broken slice');
    });

    it('renders a typical report quickly (timing printed)', async () => {
      const c = content('preliminary');
      await renderReportPdf(c, images);
      const runs = 5;
      const t0 = performance.now();
      for (let i = 0; i < runs; i++) await renderReportPdf(c, images);
      const ms = (performance.now() - t0) / runs;
      console.log(
        `      render: ${ms.toFixed(1)} ms per typical report (4 findings, 4 measurements, 2 key images; ${draftPdf.length} bytes)`,
      );
      expect(ms).to.be.lessThan(5000);
    });
  });

  describe('buildEncapsulatedPdf', () => {
    async function verify(name: string, bytes: Buffer): Promise<ReturnType<typeof dciodvfy>> {
      return dciodvfy(await writeTmp(name, bytes));
    }

    it('draft and final verify with dciodvfy with no errors (warnings printed)', async () => {
      for (const [name, pdf, state] of [
        ['enc-draft.dcm', draftPdf, 'preliminary'],
        ['enc-final.dcm', finalPdf, 'final'],
      ] as const) {
        const c =
          state === 'final'
            ? content('final', { patient: { name: HOSTILE, id: 'PAT-0043', issuer: null, birthDate: '19700101', sex: 'M' } })
            : content(state);
        const { output, errors, warnings } = await verify(name, buildEncapsulatedPdf(c, pdf, ids()));
        expect(output, 'dciodvfy recognised the IOD').to.include('EncapsulatedPDF');
        expect(errors, output).to.deep.equal([]);
        console.log(
          `      dciodvfy ${name}: ${warnings.length} warning(s)${warnings.length ? `\n        ${warnings.join('\n        ')}` : ''}`,
        );
      }
    });

    it('dciodvfy does report errors (so the check above can fail)', async () => {
      const bytes = buildEncapsulatedPdf(content('draft'), draftPdf, ids());
      const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
      const file = DicomMessage.readFile(ab);
      delete file.dict['00080064']; // ConversionType
      delete file.dict['00420012']; // MIMETypeOfEncapsulatedDocument
      const { errors } = await verify('broken.dcm', Buffer.from(file.write()));
      expect(errors.join('\n')).to.include('ConversionType').and.to.include('MIMETypeOfEncapsulatedDocument');
    });

    it('parses back with the document, its length and the required attributes', () => {
      for (const pdf of [
        draftPdf.length % 2 ? draftPdf : Buffer.concat([draftPdf, Buffer.from('\n')]),
        draftPdf.length % 2 ? Buffer.concat([draftPdf, Buffer.from('\n')]) : draftPdf,
      ]) {
        const ds = parse(buildEncapsulatedPdf(content('preliminary'), pdf, ids({ instanceNumber: 3 })));
        // dcmjs naturalizes OB as a list of buffers.
        const value = ds.EncapsulatedDocument as ArrayBuffer[];
        expect(value).to.have.length(1);
        const doc = new Uint8Array(value[0]!);
        expect(doc.length % 2, 'even length').to.equal(0);
        expect(doc.length).to.equal(pdf.length + (pdf.length % 2));
        expect(Buffer.from(doc.subarray(0, 4)).toString('latin1')).to.equal('%PDF');
        expect(Buffer.from(doc.subarray(0, pdf.length)).equals(pdf), 'document bytes').to.equal(true);
        if (pdf.length % 2) expect(doc[pdf.length], 'NUL padding').to.equal(0);
        expect(ds.EncapsulatedDocumentLength).to.equal(pdf.length);
        expect(ds.TransferSyntaxUID).to.equal('1.2.840.10008.1.2.1');
        expect(ds.SOPClassUID).to.equal(ENCAPSULATED_PDF_STORAGE);
        expect(ds.MediaStorageSOPClassUID).to.equal(ENCAPSULATED_PDF_STORAGE);
        expect(ds.SOPInstanceUID).to.equal(ids().sopInstanceUid);
        expect(ds.MediaStorageSOPInstanceUID).to.equal(ids().sopInstanceUid);
        expect(ds.SpecificCharacterSet).to.equal('ISO_IR 192');
        expect(JSON.stringify(ds.PatientName)).to.include('Müller^Zoë');
        expect(ds.PatientID).to.equal('PAT-0042');
        expect(ds.IssuerOfPatientID).to.equal('HOSP');
        expect(ds.PatientBirthDate).to.equal('19580214');
        expect(ds.PatientSex).to.equal('F');
        expect(ds.StudyInstanceUID).to.equal(content('draft').study.studyInstanceUid);
        expect(ds.StudyDate).to.equal('20240315');
        expect(ds.StudyTime).to.equal('101500');
        expect(ds.AccessionNumber).to.equal('ACC-7781');
        expect(ds.StudyID).to.equal('77');
        expect(ds.Modality).to.equal('DOC');
        expect(ds.SeriesInstanceUID).to.equal(ids().seriesInstanceUid);
        expect(ds.SeriesNumber).to.equal(9902);
        expect(ds.SeriesDescription).to.equal(DRAFT_SERIES_DESCRIPTION);
        expect(ds.ConversionType).to.equal('WSD');
        expect(ds.Manufacturer).to.equal('RadiantAI');
        expect(ds.InstanceNumber).to.equal(3);
        expect(ds.ContentDate).to.equal('20240315');
        expect(ds.ContentTime).to.equal('110203');
        // dcmjs keeps DT's trailing pad space on read.
        expect(String(ds.AcquisitionDateTime).trim()).to.equal('20240315110203.250+0000');
        expect(ds.BurnedInAnnotation).to.equal('YES');
        expect(ds.MIMETypeOfEncapsulatedDocument).to.equal('application/pdf');
        expect(ds.DocumentTitle).to.equal('AI draft radiology report: CT chest without contrast');
        expect(ds.VerificationFlag).to.equal('UNVERIFIED');
        const code = (ds.ConceptNameCodeSequence as Array<Record<string, unknown>>)[0]!;
        expect(code).to.include({ CodeValue: '18748-4', CodingSchemeDesignator: 'LN', CodeMeaning: 'Diagnostic imaging report' });
      }
    });

    it('a signed report gets the signed series description and VERIFIED', () => {
      const ds = parse(buildEncapsulatedPdf(content('amended'), draftPdf, ids()));
      expect(ds.SeriesDescription).to.equal('Amended report - R42 v2 2024-03-16 (PDF)');
      expect(ds.VerificationFlag).to.equal('VERIFIED');
      expect(ds.DocumentTitle).to.equal('AI-assisted radiology report: CT chest without contrast');
    });

    it("the node's encapsulated-document reader serves the PDF back out of storage", async () => {
      const bytes = buildEncapsulatedPdf(content('preliminary'), draftPdf, ids());
      const storage = new MemoryBlobs({ 'k/pdf.dcm': bytes });
      const row: StoredInstanceRow = {
        id: 1,
        series_pk: 1,
        sop_instance_uid: ids().sopInstanceUid,
        sop_class_uid: ENCAPSULATED_PDF_STORAGE,
        series_instance_uid: ids().seriesInstanceUid,
        study_instance_uid: content('draft').study.studyInstanceUid,
        transfer_syntax_uid: '1.2.840.10008.1.2.1',
        size_bytes: bytes.length,
        storage_key: 'k/pdf.dcm',
        instance_number: 1,
        sha256: createHash('sha256').update(bytes).digest('hex'),
      };
      // The digest is in the row: the reader checks it and has nothing to record in the index.
      const deps = { db: undefined as never, storage, log: createLogger('silent') };
      const { body, length } = await openEncapsulatedDocument(deps, row);
      const served = body;
      expect(served.length).to.equal(length);
      expect(served.subarray(0, draftPdf.length).equals(draftPdf)).to.equal(true);
      expect(served.length - draftPdf.length).to.be.within(0, 1);
    });

    it("the node's ingest header parser indexes it like any arrival", async () => {
      const p = await writeTmp('ingest.dcm', buildEncapsulatedPdf(content('preliminary'), draftPdf, ids()));
      const r = await parseHeaderFile(p, 256 * 1024 * 1024);
      if (!r.ok) throw new Error(`not parsed: ${r.error}`);
      expect(r.header).to.include({
        transferSyntaxUid: '1.2.840.10008.1.2.1',
        sopClassUid: ENCAPSULATED_PDF_STORAGE,
        sopInstanceUid: ids().sopInstanceUid,
        studyInstanceUid: content('draft').study.studyInstanceUid,
        seriesInstanceUid: ids().seriesInstanceUid,
        modality: 'DOC',
        patientId: 'PAT-0042',
        seriesDescription: DRAFT_SERIES_DESCRIPTION,
      });
      expect(r.header.patientName).to.include('Müller^Zoë');
    });

    it('refuses a document that is not a PDF', () => {
      expect(() => buildEncapsulatedPdf(content('draft'), Buffer.from('<html></html>'), ids())).to.throw(PdfReportError);
    });

    it('omits the character set for an all-ASCII study without one, and keeps hostile text as a plain value', () => {
      const c = content('final', {
        patient: { name: HOSTILE, id: 'X1', issuer: null, birthDate: 'garbage', sex: 'U' },
        study: { ...content('final').study, studyDescription: 'CT CHEST', referringPhysicianName: null, specificCharacterSet: null },
        node: { ...content('final').node, institutionName: null },
      });
      const ds = parse(buildEncapsulatedPdf(c, finalPdf, ids()));
      expect(ds.SpecificCharacterSet).to.equal(undefined);
      expect(JSON.stringify(ds.PatientName)).to.include(HOSTILE);
      expect(ds.PatientBirthDate ?? '').to.equal('');
      expect(ds.PatientSex ?? '').to.equal('');
    });
  });
});
