import { expect } from 'chai';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import dcmjs from 'dcmjs';
import sharp from 'sharp';
import { makeCrImage, makeCtSeries, type GeneratedFile } from '../fixtures/generate.js';
import type { StoredInstanceRow } from '../src/catalog/catalog.js';
import { corpusRoot } from './helpers/corpus.js';
import { auditRows, ingestCorpusFiles } from './helpers/api.js';
import { runTool } from './helpers/dcmtk.js';
import { baseUrl, bearer, tokenFor } from './helpers/http.js';
import { startTestNode, type TestNode } from './helpers/node.js';
import { readMultipartResponse } from './helpers/wado.js';

/**
 * WADO-RS rendered and thumbnail resources (PS3.18 §10.4.1.1.3) on a real node: corpus files
 * ingested, rendered images decoded back with sharp (size, not flat), windowing, viewport,
 * thumbnail, compressed MONOCHROME1, MONOCHROME1 inversion, study/series rendered and thumbnail,
 * Encapsulated PDF, Cross-Origin-Resource-Policy, and the errors (401, 404, 406, 400).
 */

dcmjs.log.setLevel('silent');

const FILES = {
  ct: 'transfer-syntaxes/wg04-CT1-MR1/CT1_UNC',
  mono1: 'xray/Monochrome1-Jpeg.dcm',
  emri: 'multiframe/emri_small.dcm',
  pdf: 'non-image/sample-pdf.dcm',
} as const;

function instanceUrl(base: string, f: GeneratedFile): string {
  return `${base}/dicom-web/studies/${f.studyInstanceUid}/series/${f.seriesInstanceUid}/instances/${f.sopInstanceUid}`;
}

async function ingest(node: TestNode, files: GeneratedFile[]): Promise<void> {
  for (const f of files) await node.ingestor.ingestStream(Readable.from([f.bytes]), { source: 'upload' });
}

async function decode(res: Response): Promise<{ width: number; height: number; distinct: number; data: Buffer }> {
  const bytes = Buffer.from(await res.arrayBuffer());
  const { data, info } = await sharp(bytes).greyscale().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, distinct: new Set(data).size, data };
}

describe('WADO-RS rendered and thumbnail', function () {
  let node: TestNode;
  let token: string;
  const urls = {} as Record<keyof typeof FILES, string>;

  before(async () => {
    node = await startTestNode();
    token = await tokenFor(node, 'radiologist');
    for (const [name, row] of Object.entries(await ingestCorpusFiles(node, FILES)) as Array<[keyof typeof FILES, StoredInstanceRow]>) {
      urls[name] =
        `${baseUrl(node)}/dicom-web/studies/${row.study_instance_uid}/series/${row.series_instance_uid}/instances/${row.sop_instance_uid}`;
    }
  });
  after(async () => {
    await node?.cleanup();
  });

  const get = (u: string, accept?: string) => fetch(u, { headers: { ...bearer(token), ...(accept ? { accept } : {}) } });
  const seriesOf = (u: string) => u.replace(/\/instances\/[^/]+$/, '');
  const studyOf = (u: string) => u.replace(/\/series\/.*$/, '');

  it('CT (16-bit signed, uncompressed) renders as JPEG by default, 512×512, not flat', async () => {
    const res = await get(`${urls.ct}/rendered`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.equal('image/jpeg');
    const img = await decode(res);
    expect([img.width, img.height]).to.deep.equal([512, 512]);
    expect(img.distinct).to.be.greaterThan(10);
  });

  it('CT renders as PNG with window=40,400; a different window gives different pixels', async () => {
    const res = await get(`${urls.ct}/rendered?window=40,400`, 'image/png');
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.equal('image/png');
    const img = await decode(res);
    expect([img.width, img.height]).to.deep.equal([512, 512]);
    expect(img.distinct).to.be.greaterThan(10);
    const bone = await decode(await get(`${urls.ct}/rendered?window=500,2000`, 'image/png'));
    expect(bone.data.equals(img.data)).to.equal(false);
    const sig = await get(`${urls.ct}/rendered?window=40,400,sigmoid`, 'image/png');
    expect(sig.status).to.equal(200);
    expect((await decode(sig)).data.equals(img.data)).to.equal(false);
  });

  it('window function linear-exact (PS3.18 §8.3.5.1.3) on rendered, frame rendered and thumbnail; an unknown one is 400', async () => {
    for (const u of [`${urls.ct}/rendered`, `${urls.ct}/frames/1/rendered`, `${urls.ct}/thumbnail`]) {
      const res = await get(`${u}?window=40,400,linear-exact`, 'image/png');
      expect(res.status, u).to.equal(200);
      expect((await decode(res)).distinct, u).to.be.greaterThan(10);
    }
    expect((await get(`${urls.ct}/rendered?window=40,400,cubic`)).status).to.equal(400);
  });

  it('frames/1/rendered with viewport=256,256 gives 256×256; quality is honoured', async () => {
    const res = await get(`${urls.ct}/frames/1/rendered?viewport=256,256`);
    expect(res.status).to.equal(200);
    const img = await decode(res);
    expect([img.width, img.height]).to.deep.equal([256, 256]);
    const lo = await get(`${urls.ct}/rendered?quality=5`);
    const hi = await get(`${urls.ct}/rendered?quality=100`);
    expect((await lo.arrayBuffer()).byteLength).to.be.lessThan((await hi.arrayBuffer()).byteLength);
  });

  it('thumbnail fits 128×128', async () => {
    const res = await get(`${urls.ct}/thumbnail`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.equal('image/jpeg');
    const img = await decode(res);
    expect(img.width).to.be.at.most(128);
    expect(img.height).to.be.at.most(128);
    expect(Math.max(img.width, img.height)).to.equal(128);
  });

  it('JPEG-compressed MONOCHROME1 renders (WASM codecs)', async () => {
    const res = await get(`${urls.mono1}/rendered`, 'image/png');
    const text = res.status === 200 ? '' : await res.clone().text();
    expect(res.status, text).to.equal(200);
    const img = await decode(res);
    expect(img.width).to.be.greaterThan(0);
    expect(img.distinct).to.be.greaterThan(10);
  });

  it('401 without token, 404 unknown instance / frame, 406 for application/pdf, 400 bad window', async () => {
    expect((await fetch(`${urls.ct}/rendered`)).status).to.equal(401);
    const unknown = urls.ct.replace(/instances\/[^/]+$/, 'instances/1.2.3.4.5.6.7.8.9');
    expect((await get(`${unknown}/rendered`)).status).to.equal(404);
    expect((await get(`${urls.ct}/frames/2/rendered`)).status).to.equal(404);
    expect((await get(`${urls.ct}/rendered`, 'application/pdf')).status).to.equal(406);
    expect((await get(`${urls.ct}/rendered?window=abc`)).status).to.equal(400);
    expect((await get(`${urls.ct}/rendered?viewport=0,10`)).status).to.equal(400);
    const rows = await auditRows(node, 'dicomweb.rendered');
    expect(rows.length).to.be.greaterThan(0);
  });

  it('MONOCHROME1 is inverted: the same stored pixels as MONOCHROME2 render as the inverse', async () => {
    const [mono2] = makeCrImage({ rows: 48, columns: 64 });
    const [other] = makeCrImage({ rows: 48, columns: 64 });
    // Same pixels, same length of value: only the Photometric Interpretation differs.
    const at = other!.bytes.indexOf('MONOCHROME2');
    expect(at).to.be.greaterThan(0);
    const mono1 = { ...other!, bytes: Buffer.from(other!.bytes) };
    mono1.bytes.write('MONOCHROME1', at, 'latin1');
    await ingest(node, [mono2!, mono1]);
    const a = await decode(await get(`${instanceUrl(baseUrl(node), mono2!)}/rendered`, 'image/png'));
    const b = await decode(await get(`${instanceUrl(baseUrl(node), mono1)}/rendered`, 'image/png'));
    expect([a.width, a.height, b.width, b.height]).to.deep.equal([64, 48, 64, 48]);
    expect(a.distinct).to.be.greaterThan(3);
    // Contrast enough that an uninverted MONOCHROME1 (b = a) would miss the tolerance by far.
    expect(Math.max(...a.data) - Math.min(...a.data)).to.be.greaterThan(60);
    expect(a.data.equals(b.data)).to.equal(false);
    let worst = 0;
    for (let i = 0; i < a.data.length; i++) worst = Math.max(worst, Math.abs(a.data[i]! + b.data[i]! - 255));
    expect(worst).to.be.at.most(2);
  });

  it('multi-frame: each frame renders through its own Pixel Value Transformation and Frame VOI LUT (functional groups)', async () => {
    // orthanc-tests' MultiframeWindowing (2×2, 4 frames, stored 0/16/32/48 in each; per-frame rescale
    // 0/1, 100/1, 0/2, 100/2; a Frame VOI LUT on frame 1 only), given by dcmodify a different Frame
    // VOI LUT on frames 2 and 3 and an instance-level window that must not win over them.
    const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'radiant-rendered-'));
    const file = path.join(tmp, 'windowing.dcm');
    await fsp.copyFile(path.join(corpusRoot, 'multiframe/MultiframeWindowing.dcm'), file);
    await fsp.chmod(file, 0o644);
    const item = (f: number, tag: string, v: number) => ['-i', `(5200,9230)[${f}].(0028,9132)[0].(${tag})=${v}`];
    const r = await runTool('dcmodify', [
      '-nb',
      ...item(1, '0028,1050', 130),
      ...item(1, '0028,1051', 40),
      ...item(2, '0028,1050', 48),
      ...item(2, '0028,1051', 64),
      ...['-i', '(0028,1050)=1000', '-i', '(0028,1051)=100'],
      file,
    ]);
    expect(r.code, r.output).to.equal(0);
    const bytes = await fsp.readFile(file);
    await fsp.rm(tmp, { recursive: true, force: true });
    const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer;
    const ds = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dcmjs.data.DicomMessage.readFile(ab).dict) as Record<string, unknown>;
    await node.ingestor.ingestStream(Readable.from([bytes]), { source: 'upload' });
    const url = `${baseUrl(node)}/dicom-web/studies/${ds.StudyInstanceUID}/series/${ds.SeriesInstanceUID}/instances/${ds.SOPInstanceUID}`;
    const stored = new Uint16Array((ds.PixelData as ArrayBuffer[])[0]!);
    type Item = Record<string, Array<Record<string, number | string>> | undefined>;
    const groups = ds.PerFrameFunctionalGroupsSequence as Item[];
    /** PS3.3 C.11.2.1.2.1 linear window to 8 bits, computed here from the file's own values. */
    const linear = (x: number, c: number, w: number) => {
      if (x <= c - 0.5 - (w - 1) / 2) return 0;
      if (x > c - 0.5 + (w - 1) / 2) return 255;
      return ((x - (c - 0.5)) / (w - 1) + 0.5) * 255;
    };
    const expected = (f: number, window?: [number, number]) => {
      const pvt = groups[f]!.PixelValueTransformationSequence![0]!;
      const voi = groups[f]!.FrameVOILUTSequence?.[0];
      const [c, w] = window ?? [Number(voi!.WindowCenter), Number(voi!.WindowWidth)];
      return [...stored.subarray(f * 4, f * 4 + 4)].map((x) => linear(x * Number(pvt.RescaleSlope) + Number(pvt.RescaleIntercept), c, w));
    };
    const rendered = async (f: number, query = '') => {
      const res = await get(`${url}/frames/${f + 1}/rendered${query}`, 'image/png');
      expect(res.status, `frame ${f + 1}: ${res.status === 200 ? '' : await res.clone().text()}`).to.equal(200);
      const img = await decode(res);
      expect([img.width, img.height]).to.deep.equal([2, 2]);
      return [...img.data];
    };
    const close = (got: number[], want: number[], what: string) => {
      for (let i = 0; i < 4; i++)
        expect(Math.abs(got[i]! - want[i]!), `${what} pixel ${i}: ${got} vs ${want.map(Math.round)}`).to.be.at.most(1);
    };
    // Frames 1–3: their own window over their own rescaled values; the results differ per frame.
    const seen: string[] = [];
    for (const f of [0, 1, 2]) {
      const got = await rendered(f);
      close(got, expected(f), `frame ${f + 1}`);
      seen.push(got.join(','));
    }
    expect(new Set(seen).size).to.equal(3);
    // Frame 4 (no Frame VOI LUT) with a requested window: its own rescale (slope 2, intercept 100) applies.
    close(await rendered(3, '?window=148,97'), expected(3, [148, 97]), 'frame 4');
    close(await rendered(1, '?window=148,97'), expected(1, [148, 97]), 'frame 2 with a requested window');
  });

  describe('study and series', () => {
    let ct: GeneratedFile[];
    let cr: GeneratedFile;
    before(async () => {
      // 20 mm apart: only the middle slice cuts the lesion (z = 0), so the slices differ.
      ct = makeCtSeries({ slices: 3, size: 64, fieldOfViewMm: 200, sliceThickness: 20 });
      [cr] = makeCrImage({ rows: 32, columns: 48, studyInstanceUid: ct[0]!.studyInstanceUid });
      await ingest(node, [...ct, cr!]);
    });
    const study = () => `${baseUrl(node)}/dicom-web/studies/${ct[0]!.studyInstanceUid}`;

    it('series rendered: multipart/related of image/png, one part per instance, in order', async () => {
      const res = await get(`${study()}/series/${ct[0]!.seriesInstanceUid}/rendered`, 'multipart/related; type="image/png"');
      expect(res.status).to.equal(200);
      expect(res.headers.get('cross-origin-resource-policy')).to.equal('cross-origin');
      const { rootType, parts } = await readMultipartResponse(res);
      expect(rootType).to.equal('image/png');
      expect(parts).to.have.length(3);
      for (const [i, p] of parts.entries()) {
        expect(p.headers['content-type']).to.equal('image/png');
        expect(p.headers['content-location']).to.equal(`${instanceUrl(baseUrl(node), ct[i]!)}/rendered`);
        const single = Buffer.from(await (await get(`${instanceUrl(baseUrl(node), ct[i]!)}/rendered`, 'image/png')).arrayBuffer());
        expect(p.body.equals(single), `part ${i}`).to.equal(true);
      }
    });

    it('study rendered: every image of every series (JPEG by default), viewport applied to each', async () => {
      const res = await get(`${study()}/rendered?viewport=16,16`);
      expect(res.status).to.equal(200);
      const { rootType, parts } = await readMultipartResponse(res);
      expect(rootType).to.equal('image/jpeg');
      expect(parts.map((p) => p.headers['content-location'])).to.deep.equal(
        [...ct, cr!].map((f) => `${instanceUrl(baseUrl(node), f)}/rendered`),
      );
      const sizes = await Promise.all(parts.map(async (p) => sharp(p.body).metadata()));
      expect(sizes.map((m) => [m.format, m.width, m.height])).to.deep.equal([
        ['jpeg', 16, 16],
        ['jpeg', 16, 16],
        ['jpeg', 16, 16],
        ['jpeg', 16, 11],
      ]);
    });

    it('a multi-frame instance gives one part per frame', async () => {
      const res = await get(`${seriesOf(urls.emri)}/rendered`, 'image/png');
      expect(res.status).to.equal(200);
      const { parts } = await readMultipartResponse(res);
      expect(parts).to.have.length(10);
      expect(parts[4]!.headers['content-location']).to.equal(`${urls.emri}/frames/5/rendered`);
      const frame5 = Buffer.from(await (await get(`${urls.emri}/frames/5/rendered`, 'image/png')).arrayBuffer());
      expect(parts[4]!.body.equals(frame5)).to.equal(true);
      expect(parts[0]!.body.equals(parts[4]!.body)).to.equal(false);
    });

    it('series / study thumbnail: the middle instance of the first series', async () => {
      const middle = Buffer.from(await (await get(`${instanceUrl(baseUrl(node), ct[1]!)}/thumbnail`)).arrayBuffer());
      const first = Buffer.from(await (await get(`${instanceUrl(baseUrl(node), ct[0]!)}/thumbnail`)).arrayBuffer());
      expect(middle.equals(first)).to.equal(false);
      for (const u of [`${study()}/series/${ct[0]!.seriesInstanceUid}/thumbnail`, `${study()}/thumbnail`]) {
        const res = await get(u);
        expect(res.status, u).to.equal(200);
        expect(res.headers.get('content-type')).to.equal('image/jpeg');
        expect(Buffer.from(await res.arrayBuffer()).equals(middle), u).to.equal(true);
      }
      const crThumb = await get(`${study()}/series/${cr!.seriesInstanceUid}/thumbnail`, 'image/png');
      const img = await decode(crThumb);
      expect([img.width, img.height]).to.deep.equal([48, 32]); // never enlarged
    });

    it('study/series errors: 404 unknown, 406 unacceptable, 501 nothing renderable, 400 bad window', async () => {
      expect((await get(`${baseUrl(node)}/dicom-web/studies/1.2.3.4.5.6.7.8/rendered`)).status).to.equal(404);
      expect((await get(`${study()}/series/1.2.3.4.5.6.7.8/thumbnail`)).status).to.equal(404);
      expect((await get(`${study()}/rendered`, 'multipart/related; type="application/dicom"')).status).to.equal(406);
      expect((await get(`${study()}/rendered?window=1`)).status).to.equal(400);
      const pdfSeries = await get(`${seriesOf(urls.pdf)}/rendered`);
      expect(pdfSeries.status).to.equal(501);
      expect(pdfSeries.headers.get('cross-origin-resource-policy')).to.equal('cross-origin');
      expect((await get(`${studyOf(urls.pdf)}/thumbnail`)).status).to.equal(501);
      const rows = await auditRows(node, 'dicomweb.rendered');
      expect(rows.map((r) => (r as unknown as { resource_type: string }).resource_type)).to.include.members([
        'study',
        'series',
        'instance',
      ]);
    });
  });

  it('Encapsulated PDF: rendered is the document (application/pdf); its metadata BulkDataURI gives the same bytes', async () => {
    const file = await fsp.readFile(path.join(corpusRoot, FILES.pdf));
    const ab = file.buffer.slice(file.byteOffset, file.byteOffset + file.length) as ArrayBuffer;
    const dict = (dcmjs.data.DicomMessage.readFile(ab) as unknown as { dict: Record<string, { Value: ArrayBuffer[] }> }).dict;
    const pdf = Buffer.from(dict['00420011']!.Value[0]!);
    expect(pdf.subarray(0, 5).toString('latin1')).to.equal('%PDF-');

    for (const accept of ['application/pdf', undefined]) {
      const res = await get(`${urls.pdf}/rendered`, accept);
      expect(res.status, accept).to.equal(200);
      expect(res.headers.get('content-type')).to.equal('application/pdf');
      expect(res.headers.get('cross-origin-resource-policy')).to.equal('cross-origin');
      expect(Buffer.from(await res.arrayBuffer()).equals(pdf)).to.equal(true);
    }
    expect((await get(`${urls.pdf}/rendered`, 'image/jpeg')).status).to.equal(501);

    const meta = await get(`${urls.pdf}/metadata`, 'application/dicom+json');
    expect(meta.status).to.equal(200);
    const [ds] = (await meta.json()) as Array<Record<string, { vr: string; BulkDataURI?: string }>>;
    const doc = ds!['00420011']!;
    expect(doc.vr).to.equal('OB');
    expect(doc.BulkDataURI).to.equal(`${urls.pdf}/bulkdata/00420011`);
    const single = await get(doc.BulkDataURI!, 'application/octet-stream');
    expect(single.status).to.equal(200);
    expect(Buffer.from(await single.arrayBuffer()).equals(pdf)).to.equal(true);
    const multi = await readMultipartResponse(await get(doc.BulkDataURI!));
    expect(multi.parts).to.have.length(1);
    expect(multi.parts[0]!.body.equals(pdf)).to.equal(true);
  });

  it('Cross-Origin-Resource-Policy: cross-origin on /dicom-web answers, errors included', async () => {
    for (const [u, status] of [
      [`${urls.ct}/rendered`, 200],
      [`${urls.ct}/metadata`, 200],
      [`${urls.ct}/frames/9/rendered`, 404],
      [`${baseUrl(node)}/dicom-web/studies?limit=1`, 200],
    ] as const) {
      const res = await get(u);
      expect(res.status, u).to.equal(status);
      expect(res.headers.get('cross-origin-resource-policy'), u).to.equal('cross-origin');
      await res.arrayBuffer();
    }
    const anon = await fetch(`${urls.ct}/rendered`);
    expect(anon.status).to.equal(401);
    expect(anon.headers.get('cross-origin-resource-policy')).to.equal('cross-origin');
  });
});
