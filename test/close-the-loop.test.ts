import { expect } from 'chai';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import dcmjs from 'dcmjs';
import sharp from 'sharp';
import { apiClient } from './helpers/api.js';
import { corpusDir } from './helpers/corpus.js';
import { runTool, startStorescp, storescu } from './helpers/dcmtk.js';
import { answeringEndpoint, forwardAiResultsTo, noduleAnswer, autoAnalysisEnv } from './helpers/ai-results.js';
import { loginFor } from './helpers/http.js';
import { freePort, startTestNode, tempDir, type TestNode } from './helpers/node.js';
import { until as pollUntil } from './helpers/until.js';

/**
 * Issue 16, "Done when", as one run: a stand-in OpenAI-compatible endpoint that answers at once,
 * a forwarding rule for AI results to a DCMTK storescp, and DCMTK storescu pushing the corpus
 * 99-slice chest CT. With no API call, the draft SR (UNVERIFIED, its finding's box a SCOORD on a
 * slice of that study) and the PDF arrive at the PACS; dciodvfy finds no error in the SR; the
 * PDF's key image is true greyscale with the finding's box drawn where the SR puts it, captioned
 * with the slice number the viewer shows. A radiologist signs: the VERIFIED successor SR (naming
 * the draft as its predecessor) and its PDF arrive at the PACS too, and dciodvfy finds no error.
 */

const SR_CLASS = '1.2.840.10008.5.1.4.1.1.88.34';
const PDF_CLASS = '1.2.840.10008.5.1.4.1.1.104.1';
/** The key images' square (src/reports/key-images.ts) and the corpus CT's 512² slices. */
const KEY_IMAGE_SIZE = 384;
const CT_SIZE = 512;

const ANSWER = noduleAnswer([300, 250, 520, 480]);

type Naturalized = Record<string, unknown> & {
  SOPClassUID?: string;
  SOPInstanceUID?: string;
  StudyInstanceUID?: string;
  InstanceNumber?: number;
  SeriesDescription?: string;
  PredecessorDocumentsSequence?: Array<{
    ReferencedSeriesSequence?: Array<{ ReferencedSOPSequence?: Array<{ ReferencedSOPInstanceUID?: string }> }>;
  }>;
};

function naturalize(bytes: Buffer): Naturalized {
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer;
  return dcmjs.data.DicomMetaDictionary.naturalizeDataset(dcmjs.data.DicomMessage.readFile(ab).dict) as Naturalized;
}

const until = <T>(what: string, probe: () => Promise<T | undefined | false>, ms = 120_000): Promise<T> => pollUntil(what, probe, ms, 50);

interface Received {
  file: string;
  ds: Naturalized;
}

/** The SR's text rendition (issue 16), told from the TID 1500 SR by its series description. */
const isText = (o: Received) => String(o.ds.SeriesDescription).endsWith('(text)');

function receivedAt(dir: string): Received[] {
  return fs.readdirSync(dir).map((n) => ({ file: path.join(dir, n), ds: naturalize(fs.readFileSync(path.join(dir, n))) }));
}

/** The SR's Image Region (source pixels) and the instance it is on, as DCMTK reads it. */
async function srRegion(file: string): Promise<{ box: [number, number, number, number]; sop: string; dump: string }> {
  const dump = (await runTool('dsrdump', ['+Pl', '+Pc', '+Pu', file])).stdout;
  const m = /SCOORD:\(111030,DCM,"Image Region"\)=\(POLYLINE,([\d./,]+)\)/.exec(dump);
  expect(m, dump).to.not.equal(null);
  const pts = m![1]!.split(',').map((p) => p.split('/').map(Number));
  const xs = pts.map((p) => p[0]!);
  const ys = pts.map((p) => p[1]!);
  const lines = dump.split('\n');
  const at = lines.findIndex((l) => l.includes('SCOORD:'));
  const sop = /IMAGE:.*,"?([\d.]+)"?\)>?\s*$/.exec(lines[at + 1] ?? '')?.[1] ?? '';
  return { box: [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)], sop, dump };
}

async function dciodvfy(file: string): Promise<string> {
  const r = await runTool('dciodvfy', [file]);
  return r.stdout + r.stderr;
}

/** The PDF's embedded raster images with three colour channels (the key images), as raw RGB. */
async function keyImages(pdf: Buffer, dir: string): Promise<Array<{ data: Buffer; width: number; height: number; channels: number }>> {
  const file = path.join(dir, 'report.pdf');
  await fsp.writeFile(file, pdf);
  const out = await runTool('pdfimages', ['-png', file, path.join(dir, 'img')]);
  expect(out.code, out.output).to.equal(0);
  const images = [];
  for (const f of fs.readdirSync(dir).filter((n) => n.startsWith('img') && n.endsWith('.png'))) {
    // The soft masks (alpha) come out as grey images of their own.
    if (((await sharp(path.join(dir, f)).metadata()).channels ?? 0) < 3) continue;
    const { data, info } = await sharp(path.join(dir, f)).raw().toBuffer({ resolveWithObject: true });
    images.push({ data, width: info.width, height: info.height, channels: info.channels });
  }
  return images;
}

describe('Closing the loop (issue 16, done when): corpus CT by storescu → draft SR + PDF at the PACS → signed successor too', function () {
  this.timeout(300_000);
  let fake: Awaited<ReturnType<typeof answeringEndpoint>>;
  let node: TestNode;
  let scp: { port: number; stop(): Promise<void> };
  let scpDir = '';
  const work: string[] = [];
  const files = corpusDir('ct-series-chest-99');
  let draft: { sr: Received; text: Received; pdf: Received; reportId: number } | undefined;

  before(async () => {
    fake = await answeringEndpoint(ANSWER);
    node = await startTestNode({
      ...autoAnalysisEnv(fake.url),
      ANALYSIS_IMAGE_SIZE: '256',
      JOB_POLL_MS: '50',
      FORWARD_POLL_MS: '50',
      FORWARD_SETTLE_MS: '50',
    });
    scpDir = await tempDir('loop-pacs');
    work.push(scpDir);
    const port = await freePort();
    scp = await startStorescp(port, scpDir, { aeTitle: 'LOOP_PACS' });
    await forwardAiResultsTo(node, 'LOOP_PACS', port);
  });

  after(async () => {
    await scp?.stop();
    await node?.cleanup();
    await fake?.close();
    for (const d of work) await fsp.rm(d, { recursive: true, force: true });
  });

  it('storescu pushes the 99-slice CT → the UNVERIFIED SR (SCOORD on a slice of the study) and the PDF arrive at the PACS', async () => {
    expect(files).to.have.length(99);
    const sent = await storescu(
      node.dicomPort,
      files.map((e) => e.absPath),
    );
    expect(sent.code, sent.stderr).to.equal(0);
    const t0 = Date.now();
    // Nothing but the push: no API call until both objects are at the PACS.
    // Issue 16: with the SR and PDF comes the SR's text rendition (its own "(text)" series, what
    // OHIF shows of the impression): three objects.
    const got = await until('draft SR, text SR and PDF at the PACS', async () => {
      const r = receivedAt(scpDir);
      return r.length >= 3 ? r : undefined;
    });
    const elapsed = Date.now() - t0;
    expect(got).to.have.length(3);
    const sr = got.find((o) => o.ds.SOPClassUID === SR_CLASS && !isText(o))!;
    const text = got.find((o) => o.ds.SOPClassUID === SR_CLASS && isText(o))!;
    const pdf = got.find((o) => o.ds.SOPClassUID === PDF_CLASS)!;
    expect(text?.ds, 'text SR at the PACS').to.include({ VerificationFlag: 'UNVERIFIED', CompletionFlag: 'PARTIAL' });
    expect(await dciodvfy(text.file)).not.to.match(/^Error/m);
    const study = naturalize(fs.readFileSync(files[0]!.absPath)).StudyInstanceUID;
    expect(sr?.ds, 'SR at the PACS').to.include({ StudyInstanceUID: study, VerificationFlag: 'UNVERIFIED', CompletionFlag: 'PARTIAL' });
    expect(pdf?.ds, 'PDF at the PACS').to.include({ StudyInstanceUID: study });
    const region = await srRegion(sr.file);
    const slices = new Set(files.map((e) => naturalize(fs.readFileSync(e.absPath)).SOPInstanceUID));
    expect(slices.has(region.sop), `the SCOORD's image ${region.sop} is a slice of the pushed CT`).to.equal(true);
    expect(await dciodvfy(sr.file)).not.to.match(/^Error/m);
    const report = (await node.db('reports').first('id')) as { id: number };
    draft = { sr, text, pdf, reportId: report.id };
    console.log(`      last instance acknowledged → draft SR + PDF at the PACS: ${elapsed} ms (STUDY_STABLE_SECONDS=1)`);
  });

  it("the PDF's key image: true greyscale, the finding's box drawn where the SR puts it, the viewer's slice number", async () => {
    expect(draft, 'the draft of the first test').to.not.equal(undefined);
    const { box, sop } = await srRegion(draft!.sr.file);
    const dir = await tempDir('loop-pdf');
    work.push(dir);
    const encapsulated = draft!.pdf.ds.EncapsulatedDocument as ArrayBuffer | ArrayBuffer[];
    const doc = Buffer.from(Array.isArray(encapsulated) ? encapsulated[0]! : encapsulated);
    const shots = await keyImages(doc, dir);
    expect(shots, 'one key image (one finding, one slice)').to.have.length(1);
    const { data, width, height, channels } = shots[0]!;
    expect([width, height]).to.deep.equal([KEY_IMAGE_SIZE, KEY_IMAGE_SIZE]);
    // The SR's box (source pixels of a 512² slice) on the key image's square.
    const k = KEY_IMAGE_SIZE / CT_SIZE;
    const [x0, y0, x1, y1] = box.map((v) => v * k) as [number, number, number, number];
    const px = (x: number, y: number) => {
      const o = (y * width + x) * channels;
      return [data[o]!, data[o + 1]!, data[o + 2]!] as const;
    };
    const yellow = (x: number, y: number) => {
      const [r, g, b] = px(x, y);
      return r > 180 && g > 150 && b < 100;
    };
    const nearOutline = (x: number, y: number, d: number) =>
      (Math.abs(x - x0) <= d || Math.abs(x - x1) <= d) && y >= y0 - d && y <= y1 + d
        ? true
        : (Math.abs(y - y0) <= d || Math.abs(y - y1) <= d) && x >= x0 - d && x <= x1 + d;
    let grey = 0;
    let coloured = 0;
    let stray = 0;
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) {
        const [r, g, b] = px(x, y);
        if (nearOutline(x, y, 3)) {
          if (yellow(x, y)) coloured++;
        } else if (r === g && g === b) grey++;
        else stray++;
      }
    expect(stray, `pixels off the box outline that are not R=G=B (${grey} grey)`).to.equal(0);
    // Each edge of the box is drawn: most positions along it have a yellow pixel within 2 px across.
    const along = (n: number, hit: (t: number) => boolean) => {
      let h = 0;
      for (let t = 0; t < n; t++) if (hit(t)) h++;
      return h / n;
    };
    const across = (x: number, y: number, dx: number, dy: number) => {
      for (let d = -2; d <= 2; d++) {
        const xx = Math.round(x + d * dx);
        const yy = Math.round(y + d * dy);
        if (xx >= 0 && yy >= 0 && xx < width && yy < height && yellow(xx, yy)) return true;
      }
      return false;
    };
    const w = Math.floor(x1 - x0);
    const h = Math.floor(y1 - y0);
    const edges = {
      top: along(w, (t) => across(x0 + t, y0, 0, 1)),
      bottom: along(w, (t) => across(x0 + t, y1, 0, 1)),
      left: along(h, (t) => across(x0, y0 + t, 1, 0)),
      right: along(h, (t) => across(x1, y0 + t, 1, 0)),
    };
    for (const [edge, share] of Object.entries(edges)) expect(share, `${edge} edge of the box drawn (${coloured} yellow)`).to.be.above(0.9);

    // The caption's slice number is the viewer's: OHIF orders the stack by Image Position along the slice
    // normal (row × column cosines), highest first, from 1.
    const slices = files.map((e) => naturalize(fs.readFileSync(e.absPath)));
    const [r0, r1, r2, c0, c1, c2] = (slices[0]!.ImageOrientationPatient as number[]).map(Number) as [
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    const normal = [r1 * c2 - r2 * c1, r2 * c0 - r0 * c2, r0 * c1 - r1 * c0];
    const level = (d: Naturalized) => (d.ImagePositionPatient as number[]).reduce((sum, v, i) => sum + Number(v) * normal[i]!, 0);
    const order = slices.sort((a, b) => level(b) - level(a)).map((d) => d.SOPInstanceUID);
    const text = (await runTool('pdftotext', [path.join(dir, 'report.pdf'), '-'])).stdout;
    const caption = /Finding 1 · slice (\d+) of (\d+)/.exec(text);
    expect(caption, text).to.not.equal(null);
    expect(Number(caption![2])).to.equal(99);
    expect(Number(caption![1]), 'slice number of the SCOORD image').to.equal(order.indexOf(sop) + 1);
  });

  it('a radiologist signs: the VERIFIED successor SR (the draft its predecessor) and its PDF arrive at the PACS', async () => {
    expect(draft, 'the draft of the first test').to.not.equal(undefined);
    const login = await loginFor(node, 'radiologist');
    const rad = apiClient(node, login.token);
    const signed = await rad.post<{ state: string; dicom: { sr: { sop_instance_uid: string }; pdf: { sop_instance_uid: string } } }>(
      `/api/reports/${draft!.reportId}/sign`,
      { password: login.password },
    );
    expect(signed.status, JSON.stringify(signed.body)).to.equal(200);
    expect(signed.body.state).to.equal('final');
    // Each version with a box has its text rendition too: 3 objects for the draft, 3 for the signed.
    const got = await until('signed SR, text SR and PDF at the PACS', async () => {
      const r = receivedAt(scpDir);
      return r.length >= 6 ? r : undefined;
    });
    expect(got).to.have.length(6);
    const text = got.find((o) => isText(o) && o.ds.SOPInstanceUID !== draft!.text.ds.SOPInstanceUID);
    expect(text?.ds, 'signed text SR at the PACS').to.include({ VerificationFlag: 'VERIFIED', CompletionFlag: 'COMPLETE' });
    const sr = got.find((o) => o.ds.SOPInstanceUID === signed.body.dicom.sr.sop_instance_uid);
    const pdf = got.find((o) => o.ds.SOPInstanceUID === signed.body.dicom.pdf.sop_instance_uid);
    expect(sr?.ds, 'signed SR at the PACS').to.include({ SOPClassUID: SR_CLASS, VerificationFlag: 'VERIFIED', CompletionFlag: 'COMPLETE' });
    expect(pdf?.ds.SOPClassUID, 'signed PDF at the PACS').to.equal(PDF_CLASS);
    const preds = (sr!.ds.PredecessorDocumentsSequence ?? []).flatMap((s) =>
      (s.ReferencedSeriesSequence ?? []).flatMap((x) => (x.ReferencedSOPSequence ?? []).map((y) => y.ReferencedSOPInstanceUID)),
    );
    // The draft's objects, its SR first: this SR replaces them (issue 16: its text rendition too).
    expect(preds).to.have.members([draft!.sr.ds.SOPInstanceUID, draft!.pdf.ds.SOPInstanceUID, draft!.text.ds.SOPInstanceUID]);
    expect(await dciodvfy(sr!.file)).not.to.match(/^Error/m);
  });
});
