import { expect } from 'chai';
import fsp from 'node:fs/promises';
import os from 'node:os';
import dcmjs from 'dcmjs';
import dicomweb from 'dicomweb-client';
import XHR2 from 'xhr2';
import { findInstance } from '../src/catalog/catalog.js';
import { corpusRoot } from './helpers/corpus.js';
import { runTool } from './helpers/dcmtk.js';
import { bearer, tokenFor } from './helpers/http.js';
import { startTestNode, type TestNode } from './helpers/node.js';
import { ensurePixelRoutes, readParts } from './helpers/pixel-routes.js';
import path from 'node:path';

/**
 * WADO-RS frames and bulk data, and WADO-URI, on a real node with corpus files ingested:
 * frame bytes against dcmjs's reading of the original files, native / RLE / JPEG, Accept
 * negotiation (quoted and unquoted type), transfer-syntax on every part, ranges, errors, audit.
 */

interface Ingested {
  study: string;
  series: string;
  sop: string;
  ts: string;
  file: Buffer;
  url: string;
}

const FILES = {
  ct: 'transfer-syntaxes/wg04-CT1-MR1/CT1_UNC',
  emri: 'multiframe/emri_small.dcm',
  rle: 'multiframe/SC_rgb_rle_2frame.dcm',
  jpeg: 'transfer-syntaxes/pydicom/SC_rgb_jpeg_dcmtk.dcm',
  implicit: 'transfer-syntaxes/pydicom/MR_small_implicit.dcm',
} as const;

type DcmValue = { Value: unknown[] };
function pixelValue(file: Buffer): unknown[] {
  const ab = file.buffer.slice(file.byteOffset, file.byteOffset + file.length) as ArrayBuffer;
  const dict = (dcmjs.data.DicomMessage.readFile(ab) as unknown as { dict: Record<string, DcmValue> }).dict;
  return dict['7FE00010']!.Value;
}
const buf = (ab: unknown) => Buffer.from(ab as ArrayBuffer);
dcmjs.log.setLevel('silent');

describe('WADO-RS frames, bulkdata and WADO-URI', function () {
  let node: TestNode;
  let url: string;
  let token: string;
  let closeServed = async () => undefined as void;
  const inst: Record<keyof typeof FILES, Ingested> = {} as Record<keyof typeof FILES, Ingested>;

  before(async () => {
    node = await startTestNode();
    const served = await ensurePixelRoutes(node);
    url = served.url;
    closeServed = served.close;
    token = await tokenFor(node, 'radiologist');
    for (const [name, rel] of Object.entries(FILES) as Array<[keyof typeof FILES, string]>) {
      const abs = path.join(corpusRoot, rel);
      const r = await node.ingestor.ingestFile(abs, false, { source: 'import' });
      const row = (await findInstance(node.db, r.sopInstanceUid))!;
      inst[name] = {
        study: row.study_instance_uid,
        series: row.series_instance_uid,
        sop: row.sop_instance_uid,
        ts: row.transfer_syntax_uid,
        file: await fsp.readFile(abs),
        url: `${url}/dicom-web/studies/${row.study_instance_uid}/series/${row.series_instance_uid}/instances/${row.sop_instance_uid}`,
      };
    }
  });
  after(async () => {
    await closeServed();
    await node?.cleanup();
  });

  const get = (u: string, accept?: string, extra: Record<string, string> = {}) =>
    fetch(u, { headers: { ...bearer(token), ...(accept ? { accept } : {}), ...extra } });

  it('CT uncompressed frame 1 = the Pixel Data read with dcmjs (unquoted type, transfer-syntax=*)', async () => {
    const res = await get(`${inst.ct.url}/frames/1`, 'multipart/related; type=application/octet-stream; transfer-syntax=*');
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^multipart\/related; type="application\/octet-stream"/);
    const parts = await readParts(res);
    expect(parts).to.have.length(1);
    expect(parts[0]!.headers['content-type']).to.equal('application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1');
    expect(parts[0]!.headers['content-location']).to.equal(`${inst.ct.url}/frames/1`);
    expect(parts[0]!.body.equals(buf(pixelValue(inst.ct.file)[0]))).to.equal(true);
  });

  it('multi-frame native: frames 1..10 of emri_small (quoted type), in the order asked', async () => {
    const whole = buf(pixelValue(inst.emri.file)[0]);
    const frameBytes = 64 * 64 * 2;
    const res = await get(
      `${inst.emri.url}/frames/1,2,3,4,5,6,7,8,9,10`,
      'multipart/related; type="application/octet-stream"; transfer-syntax=*',
    );
    expect(res.status).to.equal(200);
    const parts = await readParts(res);
    expect(parts).to.have.length(10);
    parts.forEach((p, k) => {
      expect(p.headers['content-type']).to.contain('transfer-syntax=1.2.840.10008.1.2.1');
      expect(p.body.equals(whole.subarray(k * frameBytes, (k + 1) * frameBytes)), `frame ${k + 1}`).to.equal(true);
    });
    const res2 = await get(`${inst.emri.url}/frames/7,2`, 'multipart/related; type="application/octet-stream"');
    const p2 = await readParts(res2);
    expect(p2[0]!.body.equals(whole.subarray(6 * frameBytes, 7 * frameBytes))).to.equal(true);
    expect(p2[1]!.body.equals(whole.subarray(frameBytes, 2 * frameBytes))).to.equal(true);
  });

  it('RLE 2-frame: each frame = its fragment, as image/dicom-rle or octet-stream with transfer-syntax=*', async () => {
    const frames = pixelValue(inst.rle.file);
    expect(frames).to.have.length(2);
    for (const accept of [
      'multipart/related; type=application/octet-stream; transfer-syntax=*',
      'multipart/related; type="image/dicom-rle"',
      '*/*',
    ]) {
      const res = await get(`${inst.rle.url}/frames/1,2`, accept);
      expect(res.status, accept).to.equal(200);
      const parts = await readParts(res);
      expect(parts).to.have.length(2);
      parts.forEach((p, k) => {
        expect(p.headers['content-type']).to.match(/transfer-syntax=1\.2\.840\.10008\.1\.2\.5$/);
        expect(p.body.equals(buf(frames[k])), `${accept} frame ${k + 1}`).to.equal(true);
      });
    }
    // Uncompressed octet-stream (no transfer-syntax): decoded, and equal to what DCMTK's
    // dcmdrle makes of the same file.
    const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'radiant-rle-'));
    try {
      const ref = path.join(tmp, 'ref.dcm');
      const dec = await runTool('dcmdrle', [path.join(corpusRoot, FILES.rle), ref]);
      expect(dec.code, dec.stderr).to.equal(0);
      const refPixels = buf(pixelValue(await fsp.readFile(ref))[0]);
      const frameBytes = refPixels.length / 2;
      const res = await get(`${inst.rle.url}/frames/2,1`, 'multipart/related; type="application/octet-stream"');
      expect(res.status).to.equal(200);
      const parts = await readParts(res);
      expect(parts.map((p) => p.headers['content-type'])).to.deep.equal(
        Array(2).fill('application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1'),
      );
      expect(parts[0]!.body.equals(refPixels.subarray(frameBytes))).to.equal(true);
      expect(parts[1]!.body.equals(refPixels.subarray(0, frameBytes))).to.equal(true);
    } finally {
      await fsp.rm(tmp, { recursive: true, force: true });
    }
    // A lossy syntax is produced when named (issue 17: JPEG Baseline for 8-bit images); JPEG Extended never.
    const lossy = await get(`${inst.rle.url}/frames/1`, 'multipart/related; type="image/jpeg"; transfer-syntax=1.2.840.10008.1.2.4.50');
    expect(lossy.status).to.equal(200);
    const jpeg = (await readParts(lossy))[0]!.body;
    expect(jpeg.subarray(0, 2).toString('hex')).to.equal('ffd8');
    const extended = await get(`${inst.rle.url}/frames/1`, 'multipart/related; type="image/jpeg"; transfer-syntax=1.2.840.10008.1.2.4.51');
    expect(extended.status).to.equal(406);
    expect(((await extended.json()) as { error: { message: string } }).error.message).to.match(/not a syntax this node encodes to/);
  });

  it('JPEG baseline frame as image/jpeg: FFD8 … FFD9, TS in the part header', async () => {
    const res = await get(`${inst.jpeg.url}/frames/1`, 'multipart/related; type="image/jpeg"');
    expect(res.status).to.equal(200);
    const [p] = await readParts(res);
    expect(p!.headers['content-type']).to.equal('image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50');
    expect(p!.body.subarray(0, 2).toString('hex')).to.equal('ffd8');
    // Fragments may be padded to even length after EOI.
    expect(p!.body.subarray(0, p!.body.length).toString('hex')).to.match(/ffd9(00)?$/);
    const dcm = pixelValue(inst.jpeg.file);
    expect(p!.body.equals(buf(dcm[0]))).to.equal(true);
    // image/jp2 (lossless JPEG 2000 by default) is transcoded from the decoded JPEG.
    const jp2 = await get(`${inst.jpeg.url}/frames/1`, 'multipart/related; type="image/jp2"');
    expect(jp2.status).to.equal(200);
    const [j] = await readParts(jp2);
    expect(j!.headers['content-type']).to.equal('image/jp2; transfer-syntax=1.2.840.10008.1.2.4.90');
    expect(j!.body.subarray(0, 4).toString('hex')).to.equal('ff4fff51');
    // A syntax that is not of the media type asked is refused.
    expect(
      (await get(`${inst.jpeg.url}/frames/1`, 'multipart/related; type="image/jp2"; transfer-syntax=1.2.840.10008.1.2.4.80')).status,
    ).to.equal(406);
  });

  it('implicit VR little endian: frames labelled with the stored TS; explicit LE asked → labelled so', async () => {
    const r0 = await get(`${inst.implicit.url}/frames/1`, 'multipart/related; type=application/octet-stream; transfer-syntax=*');
    if (r0.status !== 200) throw new Error(await r0.text());
    let [p] = await readParts(r0);
    expect(p!.headers['content-type']).to.equal('application/octet-stream; transfer-syntax=1.2.840.10008.1.2');
    expect(p!.body.equals(buf(pixelValue(inst.implicit.file)[0]))).to.equal(true);
    [p] = await readParts(
      await get(`${inst.implicit.url}/frames/1`, 'multipart/related; type=application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1'),
    );
    expect(p!.headers['content-type']).to.equal('application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1');
  });

  it('errors: frame out of range 404, 0 / abc / empty entries 400, wrong series 404, no token 401; big endian decoded', async () => {
    const acc = 'multipart/related; type=application/octet-stream; transfer-syntax=*';
    expect((await get(`${inst.emri.url}/frames/11`, acc)).status).to.equal(404);
    expect((await get(`${inst.ct.url}/frames/1,2`, acc)).status).to.equal(404);
    for (const bad of ['0', 'abc', '1,,2', '-1', '1.5']) expect((await get(`${inst.ct.url}/frames/${bad}`, acc)).status, bad).to.equal(400);
    // Same SOP Instance UID as MR_small_implicit (whose tests ran already): replaces it.
    const be = await node.ingestor.ingestFile(path.join(corpusRoot, 'transfer-syntaxes/pydicom/MR_small_bigendian.dcm'), false, {
      source: 'import',
    });
    const beUrl = `${url}/dicom-web/studies/${be.studyInstanceUid}/series/${be.seriesInstanceUid}/instances/${be.sopInstanceUid}`;
    // Big endian frames are byte-swapped by transcoding: the same pixels as the little endian copy.
    const beFrame = await get(`${beUrl}/frames/1`, acc);
    expect(beFrame.status).to.equal(200);
    const [bp] = await readParts(beFrame);
    expect(bp!.headers['content-type']).to.equal('application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1');
    const little = buf(pixelValue(await fsp.readFile(path.join(corpusRoot, 'transfer-syntaxes/pydicom/MR_small.dcm')))[0]);
    expect(bp!.body.equals(little)).to.equal(true);
    const wrong = `${url}/dicom-web/studies/${inst.ct.study}/series/${inst.emri.series}/instances/${inst.ct.sop}/frames/1`;
    expect((await get(wrong, acc)).status).to.equal(404);
    const anon = await fetch(`${inst.ct.url}/frames/1`, { headers: { accept: acc } });
    expect(anon.status).to.equal(401);
  });

  it('dicomweb-client retrieveInstanceFrames (OHIF) gets the native frame', async () => {
    const g = globalThis as { XMLHttpRequest?: unknown };
    const saved = g.XMLHttpRequest;
    g.XMLHttpRequest = XHR2;
    try {
      const client = new dicomweb.api.DICOMwebClient({
        url: `${url}/dicom-web`,
        headers: { Authorization: `Bearer ${token}` },
        verbose: false,
        singlepart: false,
      });
      const frames = (await client.retrieveInstanceFrames({
        studyInstanceUID: inst.emri.study,
        seriesInstanceUID: inst.emri.series,
        sopInstanceUID: inst.emri.sop,
        frameNumbers: '3',
        request: undefined as never,
      })) as ArrayBuffer[];
      expect(frames).to.have.length(1);
      const whole = buf(pixelValue(inst.emri.file)[0]);
      expect(Buffer.from(frames[0]!).equals(whole.subarray(2 * 8192, 3 * 8192))).to.equal(true);
    } finally {
      g.XMLHttpRequest = saved;
    }
  });

  it('bulkdata: Pixel Data whole value (multipart), a Range → 206 single part, 416, bad tag 400, absent 404', async () => {
    const whole = buf(pixelValue(inst.ct.file)[0]);
    let res = await get(`${inst.ct.url}/bulkdata/7FE00010`, 'multipart/related; type="application/octet-stream"');
    expect(res.status).to.equal(200);
    const [p] = await readParts(res);
    expect(p!.headers['content-type']).to.contain('transfer-syntax=');
    expect(p!.body.equals(whole)).to.equal(true);

    res = await get(`${inst.ct.url}/bulkdata/7fe00010`, 'application/octet-stream', { range: 'bytes=100-1099' });
    expect(res.status).to.equal(206);
    expect(res.headers.get('content-range')).to.equal(`bytes 100-1099/${whole.length}`);
    expect(res.headers.get('content-type')).to.contain('transfer-syntax=1.2.840.10008.1.2.1');
    expect(Buffer.from(await res.arrayBuffer()).equals(whole.subarray(100, 1100))).to.equal(true);

    res = await get(`${inst.ct.url}/bulkdata/7FE00010`, undefined, { range: 'bytes=-10' });
    expect(res.status).to.equal(206);
    expect(Buffer.from(await res.arrayBuffer()).equals(whole.subarray(whole.length - 10))).to.equal(true);

    res = await get(`${inst.ct.url}/bulkdata/7FE00010`, 'application/octet-stream', { range: `bytes=${whole.length}-` });
    expect(res.status).to.equal(416);
    expect(res.headers.get('content-range')).to.equal(`bytes */${whole.length}`);

    expect((await get(`${inst.ct.url}/bulkdata/7FE0001`)).status).to.equal(400);
    expect((await get(`${inst.ct.url}/bulkdata/00091234`)).status).to.equal(404);
    // A short top-level element (Patient Name) is still a value you can fetch.
    res = await get(`${inst.ct.url}/bulkdata/00100010`, 'application/octet-stream');
    expect(res.status).to.equal(200);
    expect(
      Buffer.from(await res.arrayBuffer())
        .toString('latin1')
        .trim(),
    ).to.equal('CompressedSamples^CT1');
  });

  it('bulkdata of encapsulated Pixel Data answers the frames in their media type', async () => {
    const res = await get(`${inst.rle.url}/bulkdata/7FE00010`, 'multipart/related; type=application/octet-stream; transfer-syntax=*');
    expect(res.status).to.equal(200);
    const parts = await readParts(res);
    expect(parts).to.have.length(2);
    expect(parts[1]!.body.equals(buf(pixelValue(inst.rle.file)[1]))).to.equal(true);
  });

  it('WADO-URI application/dicom returns the stored bytes; errors 400/404/406; 401 without token', async () => {
    const q = (p: Record<string, string>) => `${url}/wado?${new URLSearchParams(p)}`;
    const ok = { requestType: 'WADO', studyUID: inst.ct.study, seriesUID: inst.ct.series, objectUID: inst.ct.sop };
    let res = await get(q({ ...ok, contentType: 'application/dicom' }));
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.equal('application/dicom');
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.equals(inst.ct.file)).to.equal(true);
    res = await get(q({ ...ok, contentType: 'application/dicom', transferSyntax: inst.ct.ts }));
    expect(res.status).to.equal(200);
    await res.arrayBuffer();
    expect((await get(q({ ...ok, contentType: 'application/dicom', transferSyntax: '1.2.840.10008.1.2.4.50' }))).status).to.equal(406);
    // A lossless syntax is transcoded to: JPEG-LS, decoding back to the same pixels.
    res = await get(q({ ...ok, contentType: 'application/dicom', transferSyntax: '1.2.840.10008.1.2.4.80' }));
    expect(res.status).to.equal(200);
    const jls = Buffer.from(await res.arrayBuffer());
    const back = await node.transcoder.transcode(jls, '1.2.840.10008.1.2.4.80', '1.2.840.10008.1.2.1');
    expect(buf(pixelValue(back)[0]).equals(buf(pixelValue(inst.ct.file)[0]))).to.equal(true);
    // Rendered contentTypes are served now (test/wado-uri.test.ts); a type nothing produces is 406.
    expect((await get(q({ ...ok, contentType: 'text/html' }))).status).to.equal(406);
    expect((await get(q({ ...ok, requestType: 'WADX' }))).status).to.equal(400);
    expect((await get(q({ ...ok, objectUID: 'not a uid' }))).status).to.equal(400);
    expect((await get(q({ ...ok, objectUID: '1.2.3.4.5.6.7' }))).status).to.equal(404);
    expect((await get(q({ ...ok, seriesUID: inst.emri.series }))).status).to.equal(404);
    expect((await get(q({ ...ok, contentType: 'application/dicom', frameNumber: '1' }))).status).to.equal(400);
    expect((await fetch(q(ok))).status).to.equal(401);
  });

  it('audit rows: dicomweb.retrieve for frames, wado.uri for WADO-URI', async () => {
    await node.audit.flush();
    const rows = (await node.db('audit_logs').whereIn('action', ['dicomweb.retrieve', 'wado.uri']).orderBy('id')) as Array<{
      action: string;
      status: number;
      study_instance_uid: string | null;
      resource_type: string;
    }>;
    const wado = rows.filter((r) => r.action === 'wado.uri');
    expect(wado.map((r) => r.status)).to.include.members([200, 401, 404, 406, 400]);
    expect(wado.find((r) => r.status === 200)!.study_instance_uid).to.equal(inst.ct.study);
    const frames = rows.filter((r) => r.action === 'dicomweb.retrieve');
    expect(frames.map((r) => r.status)).to.include.members([200, 206, 400, 404, 406, 401]);
    expect(frames.every((r) => r.resource_type === 'instance')).to.equal(true);
  });
});
