import { expect } from 'chai';
import path from 'node:path';
import sharp from 'sharp';
import { findInstance } from '../src/catalog/catalog.js';
import { corpusRoot } from './helpers/corpus.js';
import { auditRows } from './helpers/api.js';
import { baseUrl, bearer, tokenFor } from './helpers/http.js';
import { startTestNode, type TestNode } from './helpers/node.js';

/**
 * WADO-RS rendered and thumbnail resources (PS3.18 §10.4.1.1.3) on a real node: corpus files
 * ingested, rendered images decoded back with sharp (size, not flat), windowing, viewport,
 * thumbnail, compressed MONOCHROME1, and the errors (401, 404, 406, 400).
 */

const FILES = {
  ct: 'transfer-syntaxes/wg04-CT1-MR1/CT1_UNC',
  mono1: 'xray/Monochrome1-Jpeg.dcm',
} as const;

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
    for (const [name, rel] of Object.entries(FILES) as Array<[keyof typeof FILES, string]>) {
      const r = await node.ingestor.ingestFile(path.join(corpusRoot, rel), false, { source: 'import' });
      const row = (await findInstance(node.db, r.sopInstanceUid))!;
      urls[name] = `${baseUrl(node)}/dicom-web/studies/${row.study_instance_uid}/series/${row.series_instance_uid}/instances/${row.sop_instance_uid}`;
    }
  });
  after(async () => {
    await node?.cleanup();
  });

  const get = (u: string, accept?: string) => fetch(u, { headers: { ...bearer(token), ...(accept ? { accept } : {}) } });

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
});
