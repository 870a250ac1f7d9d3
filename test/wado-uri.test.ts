import { expect } from 'chai';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import dcmjs from 'dcmjs';
import sharp from 'sharp';
import { makeCrImage } from '../fixtures/generate.js';
import type { StoredInstanceRow } from '../src/catalog/catalog.js';
import { auditRows, ingestCorpusFiles } from './helpers/api.js';
import { corpusRoot } from './helpers/corpus.js';
import { baseUrl, bearer, tokenFor } from './helpers/http.js';
import { startTestNode, type TestNode } from './helpers/node.js';

/**
 * WADO-URI rendered content types (PS3.18 §9) on a real node: JPEG / PNG / GIF decoded back with
 * sharp, rows/columns/region scaling, frameNumber on a multi-frame corpus file, windowing, the
 * PS3.18 defaults for an absent contentType, Encapsulated PDF, 400s, CORP.
 */

dcmjs.log.setLevel('silent');

const FILES = {
  ct: 'transfer-syntaxes/wg04-CT1-MR1/CT1_UNC',
  emri: 'multiframe/emri_small.dcm',
  pdf: 'non-image/sample-pdf.dcm',
} as const;
type Name = keyof typeof FILES | 'cr';

interface Obj {
  studyUID: string;
  seriesUID: string;
  objectUID: string;
}

async function decode(res: Response): Promise<{ width: number; height: number; format: string; data: Buffer }> {
  const bytes = Buffer.from(await res.arrayBuffer());
  const meta = await sharp(bytes).metadata();
  const { data, info } = await sharp(bytes).greyscale().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, format: meta.format ?? '', data };
}

function encapsulatedDocument(file: Buffer): Buffer {
  const ab = file.buffer.slice(file.byteOffset, file.byteOffset + file.length) as ArrayBuffer;
  const dict = (dcmjs.data.DicomMessage.readFile(ab) as unknown as { dict: Record<string, { Value: ArrayBuffer[] }> }).dict;
  return Buffer.from(dict['00420011']!.Value[0]!);
}

describe('WADO-URI rendered, PDF and defaults', function () {
  let node: TestNode;
  let token: string;
  const obj = {} as Record<Name, Obj>;

  before(async () => {
    node = await startTestNode();
    token = await tokenFor(node, 'radiologist');
    for (const [name, row] of Object.entries(await ingestCorpusFiles(node, FILES)) as Array<[keyof typeof FILES, StoredInstanceRow]>) {
      obj[name] = { studyUID: row.study_instance_uid, seriesUID: row.series_instance_uid, objectUID: row.sop_instance_uid };
    }
    // 64 rows × 128 columns: not square, so aspect-keeping scaling shows.
    const [cr] = makeCrImage({ rows: 64, columns: 128 });
    await node.ingestor.ingestStream(Readable.from([cr!.bytes]), { source: 'upload' });
    obj.cr = { studyUID: cr!.studyInstanceUid, seriesUID: cr!.seriesInstanceUid, objectUID: cr!.sopInstanceUid };
  });
  after(async () => {
    await node?.cleanup();
  });

  const wado = (name: Name, params: Record<string, string> = {}, accept?: string, auth = true) =>
    fetch(`${baseUrl(node)}/wado?${new URLSearchParams({ requestType: 'WADO', ...obj[name], ...params })}`, {
      headers: { ...(auth ? bearer(token) : {}), ...(accept ? { accept } : {}) },
    });

  it('contentType absent on an image: image/jpeg at full size (PS3.18 default)', async () => {
    const res = await wado('ct');
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.equal('image/jpeg');
    const img = await decode(res);
    expect([img.format, img.width, img.height]).to.deep.equal(['jpeg', 512, 512]);
    expect(new Set(img.data).size).to.be.greaterThan(10);
  });

  it('contentType absent with Accept: application/dicom: the stored file', async () => {
    const res = await wado('ct', {}, 'application/dicom');
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.equal('application/dicom');
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.equals(await fsp.readFile(path.join(corpusRoot, FILES.ct)))).to.equal(true);
  });

  it('image/png and image/gif decode to the image size', async () => {
    for (const [type, format] of [
      ['image/png', 'png'],
      ['image/gif', 'gif'],
    ] as const) {
      const res = await wado('ct', { contentType: type });
      expect(res.status, type).to.equal(200);
      expect(res.headers.get('content-type')).to.equal(type);
      const img = await decode(res);
      expect([img.format, img.width, img.height]).to.deep.equal([format, 512, 512]);
    }
  });

  it('rows / columns scale keeping the aspect (one alone, both as maxima, enlarging too); region crops', async () => {
    const size = async (p: Record<string, string>) => {
      const res = await wado('cr', { contentType: 'image/png', ...p });
      expect(res.status, JSON.stringify(p)).to.equal(200);
      const img = await decode(res);
      return [img.width, img.height];
    };
    expect(await size({})).to.deep.equal([128, 64]);
    expect(await size({ rows: '32' })).to.deep.equal([64, 32]);
    expect(await size({ columns: '256' })).to.deep.equal([256, 128]);
    expect(await size({ rows: '10', columns: '100' })).to.deep.equal([20, 10]);
    expect(await size({ rows: '100', columns: '64' })).to.deep.equal([64, 32]);
    expect(await size({ region: '0,0,0.5,0.5' })).to.deep.equal([64, 32]);
    expect(await size({ region: '0.25,0,0.75,1', columns: '32' })).to.deep.equal([32, 32]);
  });

  it('frameNumber selects a frame of a multi-frame object; past the end or malformed is 400', async () => {
    const frame = async (n: string) => {
      const res = await wado('emri', { contentType: 'image/png', frameNumber: n });
      expect(res.status, n).to.equal(200);
      return decode(res);
    };
    const f1 = await frame('1');
    const f5 = await frame('5');
    const f10 = await frame('10');
    expect([f1.width, f1.height]).to.deep.equal([64, 64]);
    expect(f1.data.equals(f5.data)).to.equal(false);
    expect(f5.data.equals(f10.data)).to.equal(false);
    expect((await frame('1')).data.equals(f1.data)).to.equal(true);
    for (const n of ['11', '0', '-1', 'abc', '1.5', '']) {
      const res = await wado('emri', { contentType: 'image/png', frameNumber: n });
      expect(res.status, `frameNumber=${n}`).to.equal(400);
    }
  });

  it('windowCenter/windowWidth change the output; imageQuality changes the JPEG size', async () => {
    const png = async (p: Record<string, string>) => {
      const res = await wado('ct', { contentType: 'image/png', ...p });
      expect(res.status).to.equal(200);
      return (await decode(res)).data;
    };
    const soft = await png({ windowCenter: '40', windowWidth: '400' });
    const bone = await png({ windowCenter: '500', windowWidth: '2000' });
    const stored = await png({});
    expect(soft.equals(bone)).to.equal(false);
    expect(soft.equals(stored)).to.equal(false);
    // A narrow window saturates more pixels than a wide one.
    const extremes = (d: Buffer) => d.filter((v) => v === 0 || v === 255).length;
    expect(extremes(soft)).to.be.greaterThan(extremes(bone));
    const lo = await wado('ct', { imageQuality: '5' });
    const hi = await wado('ct', { imageQuality: '100' });
    expect(lo.status).to.equal(200);
    expect((await lo.arrayBuffer()).byteLength).to.be.lessThan((await hi.arrayBuffer()).byteLength);
  });

  it('bad rendering parameters are 400', async () => {
    const cases: Array<Record<string, string>> = [
      { windowCenter: '40' },
      { windowWidth: '400' },
      { windowCenter: 'x', windowWidth: '400' },
      { windowCenter: '40', windowWidth: '0' },
      { rows: '0' },
      { columns: 'abc' },
      { rows: '99999' },
      { imageQuality: '0' },
      { imageQuality: '101' },
      { region: '0.5,0,0.2,1' },
      { region: '0,0,1' },
      { contentType: 'image/jpeg', transferSyntax: '1.2.840.10008.1.2.1' },
      { contentType: 'application/dicom', rows: '10' },
    ];
    for (const p of cases) {
      const res = await wado('ct', p);
      expect(res.status, JSON.stringify(p)).to.equal(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).to.be.a('string');
    }
    expect((await wado('ct', { contentType: 'text/html' })).status).to.equal(406);
  });

  it('Encapsulated PDF: contentType=application/pdf gives the document; absent gives application/dicom', async () => {
    const file = await fsp.readFile(path.join(corpusRoot, FILES.pdf));
    const res = await wado('pdf', { contentType: 'application/pdf' });
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.equal('application/pdf');
    expect(res.headers.get('cross-origin-resource-policy')).to.equal('cross-origin');
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.subarray(0, 5).toString('latin1')).to.equal('%PDF-');
    expect(body.equals(encapsulatedDocument(file))).to.equal(true);

    const dflt = await wado('pdf');
    expect(dflt.status).to.equal(200);
    expect(dflt.headers.get('content-type')).to.equal('application/dicom');
    expect(Buffer.from(await dflt.arrayBuffer()).equals(file)).to.equal(true);

    expect((await wado('pdf', { contentType: 'image/jpeg' })).status).to.equal(406);
    expect((await wado('ct', { contentType: 'application/pdf' })).status).to.equal(406);
    expect((await wado('pdf', { contentType: 'application/pdf', rows: '10' })).status).to.equal(400);
  });

  it('Cross-Origin-Resource-Policy on every /wado answer; audited as wado.uri', async () => {
    for (const res of [await wado('ct'), await wado('ct', {}, undefined, false), await wado('ct', { rows: '0' })]) {
      expect(res.headers.get('cross-origin-resource-policy'), String(res.status)).to.equal('cross-origin');
      await res.arrayBuffer();
    }
    const rows = await auditRows(node, 'wado.uri');
    expect(rows.map((r) => r.status)).to.include.members([200, 400, 401, 406]);
  });
});
