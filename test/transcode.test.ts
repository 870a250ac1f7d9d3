import { expect } from 'chai';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import dcmjs from 'dcmjs';
import dicomweb from 'dicomweb-client';
import XHR2 from 'xhr2';
import { corpusRoot } from './helpers/corpus.js';
import { runTool } from './helpers/dcmtk.js';
import { bearer, baseUrl, tokenFor } from './helpers/http.js';
import { startTestNode, type TestNode } from './helpers/node.js';
import { readMultipartResponse } from './helpers/wado.js';

/**
 * Every file of the corpus's transfer-syntaxes/ through dicomweb-client (OHIF's client): as
 * stored (byte for byte) and as explicit VR little endian, whose pixel data must equal an
 * independent decoding — the corpus's own uncompressed twin of the same image (WG04 *_UNC,
 * pydicom MR_small), or DCMTK's decoder — byte for byte for lossless syntaxes, closely for lossy
 * ones. The syntaxes this node cannot decode are listed and must answer 406 with a reason.
 */

dcmjs.log.setLevel('silent');
const ELE = '1.2.840.10008.1.2.1';
const TS_DIR = 'transfer-syntaxes';

type Reference = { twin: string } | { dcmtk: string[] } | { roundTrip: true };
interface Case {
  file: string;
  ref: Reference;
  /** Mean absolute difference allowed, as a fraction of the stored range; 0 = byte-equal. */
  lossy?: number;
}

const CASES: Case[] = [
  ...['J2KR', 'JLSL', 'JPLL', 'RLE'].map((s) => ({ file: `wg04-CT1-MR1/CT1_${s}`, ref: { twin: 'wg04-CT1-MR1/CT1_UNC' } })),
  { file: 'wg04-CT1-MR1/CT1_J2KI', ref: { twin: 'wg04-CT1-MR1/CT1_UNC' }, lossy: 0.01 },
  { file: 'wg04-CT1-MR1/CT1_JLSN', ref: { twin: 'wg04-CT1-MR1/CT1_UNC' }, lossy: 0.01 },
  { file: 'wg04-CT1-MR1/CT1_UNC', ref: { twin: 'wg04-CT1-MR1/CT1_UNC' } },
  ...['J2KR', 'JPLL', 'RLE', 'UNC'].map((s) => ({ file: `wg04-CT1-MR1/MR1_${s}`, ref: { twin: 'wg04-CT1-MR1/MR1_UNC' } })),
  { file: 'wg04-CT1-MR1/MR1_J2KI', ref: { twin: 'wg04-CT1-MR1/MR1_UNC' }, lossy: 0.01 },
  { file: 'wg04-CT1-MR1/MR1_JLSN', ref: { twin: 'wg04-CT1-MR1/MR1_UNC' }, lossy: 0.01 },
  ...['MR_small_RLE', 'MR_small_bigendian', 'MR_small_implicit', 'MR_small_jp2klossless', 'MR_small_jpeg_ls_lossless', 'MR_small'].map(
    (f) => ({
      file: `pydicom/${f}.dcm`,
      ref: { twin: 'pydicom/MR_small.dcm' },
    }),
  ),
  { file: 'pydicom/JPGLosslessP14SV1_1s_1f_8b.dcm', ref: { dcmtk: ['dcmdjpeg'] } },
  { file: 'pydicom/SC_rgb_jpeg_dcmtk.dcm', ref: { dcmtk: ['dcmdjpeg'] }, lossy: 0.01 },
  { file: 'pydicom/image_dfl.dcm', ref: { dcmtk: ['dcmconv', '+te'] } },
  { file: 'pydicom/SC_ybr_full_422_uncompressed.dcm', ref: { twin: 'pydicom/SC_ybr_full_422_uncompressed.dcm' } },
];

/** Stored in a syntax this node does not decode (or whose codec fails on it): 406 with a reason. */
const UNDECODABLE: Array<{ file: string; reason: RegExp }> = [
  { file: 'pydicom/JPGExtended.dcm', reason: /1\.2\.840\.10008\.1\.2\.4\.51 cannot be decoded/ },
  { file: 'wg04-CT1-MR1/MR1_JPLY', reason: /1\.2\.840\.10008\.1\.2\.4\.51 cannot be decoded/ },
  { file: 'pydicom/liver_deflate.dcm', reason: /1\.2\.840\.10008\.1\.2\.8\.1 cannot be decoded/ },
  // CharLS traps on this file's JPEG-LS stream; the worker is replaced.
  { file: 'wg04-CT1-MR1/MR1_JLSL', reason: /cannot transcode from 1\.2\.840\.10008\.1\.2\.4\.80/ },
];

interface Pixels {
  bytes: Buffer;
  bitsAllocated: number;
  bitsStored: number;
  signed: boolean;
  ts: string;
}

function pixelsOf(part10: Buffer | ArrayBuffer): Pixels {
  const b = Buffer.isBuffer(part10) ? part10 : Buffer.from(part10);
  const ab = b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
  const msg = dcmjs.data.DicomMessage.readFile(ab) as unknown as {
    meta: Record<string, { Value: unknown[] }>;
    dict: Record<string, { Value: unknown[] }>;
  };
  const v = (tag: string) => msg.dict[tag]?.Value?.[0];
  const raw = msg.dict['7FE00010']!.Value as ArrayBuffer[];
  return {
    bytes: Buffer.concat(raw.map((x) => Buffer.from(x))),
    bitsAllocated: Number(v('00280100')),
    bitsStored: Number(v('00280101')),
    signed: Number(v('00280103')) === 1,
    ts: String(msg.meta['00020010']!.Value[0]),
  };
}

function sopOf(part10: Buffer): string {
  const ab = part10.buffer.slice(part10.byteOffset, part10.byteOffset + part10.length) as ArrayBuffer;
  const msg = dcmjs.data.DicomMessage.readFile(ab) as unknown as { dict: Record<string, { Value: unknown[] }> };
  return String(msg.dict['00080018']!.Value[0]);
}

function samples(p: Pixels): number[] {
  const out: number[] = [];
  if (p.bitsAllocated === 8) for (const x of p.bytes) out.push(x);
  else for (let i = 0; i + 1 < p.bytes.length; i += 2) out.push(p.signed ? p.bytes.readInt16LE(i) : p.bytes.readUInt16LE(i));
  return out;
}

/** Mean |a-b| over the samples, as a fraction of the stored range. */
function meanError(a: Pixels, b: Pixels): number {
  const x = samples(a);
  const y = samples(b);
  expect(x.length).to.equal(y.length);
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += Math.abs(x[i]! - y[i]!);
  return sum / x.length / 2 ** a.bitsStored;
}

describe('WADO-RS transcoding: every corpus transfer syntax via dicomweb-client', function () {
  this.timeout(180_000);
  let node: TestNode;
  let token: string;
  let tmp: string;
  let client: InstanceType<typeof dicomweb.api.DICOMwebClient>;
  const g = globalThis as { XMLHttpRequest?: unknown };
  let savedXhr: unknown;

  before(async () => {
    node = await startTestNode();
    token = await tokenFor(node, 'viewer');
    tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'radiant-transcode-'));
    savedXhr = g.XMLHttpRequest;
    g.XMLHttpRequest = XHR2;
    client = new dicomweb.api.DICOMwebClient({
      url: `${baseUrl(node)}/dicom-web`,
      headers: bearer(token),
      verbose: false,
      singlepart: false,
    });
  });
  after(async () => {
    g.XMLHttpRequest = savedXhr;
    await node?.cleanup();
    if (tmp) await fsp.rm(tmp, { recursive: true, force: true });
  });

  /** Ingests one file (several corpus files share a SOP Instance UID: one at a time). */
  async function ingest(rel: string) {
    const r = await node.ingestor.ingestFile(path.join(corpusRoot, TS_DIR, rel), false, { source: 'import' });
    return { studyInstanceUID: r.studyInstanceUid, seriesInstanceUID: r.seriesInstanceUid, sopInstanceUID: r.sopInstanceUid };
  }
  /**
   * As stored through retrieveInstance; in a named syntax through the client's own multipart
   * request (its Accept header builder): retrieveInstance refuses any mediaTypes in 0.11.3
   * (its common-type check compares "application/" with "application/dicom").
   */
  const retrieve = async (ids: Awaited<ReturnType<typeof ingest>>, ts?: string): Promise<Buffer> => {
    if (!ts) return Buffer.from((await client.retrieveInstance(ids as Parameters<typeof client.retrieveInstance>[0])) as ArrayBuffer);
    const url = `${baseUrl(node)}/dicom-web/studies/${ids.studyInstanceUID}/series/${ids.seriesInstanceUID}/instances/${ids.sopInstanceUID}`;
    const raw = client as unknown as {
      _httpGetMultipartApplicationDicom(u: string, m: unknown[], p: boolean, r: object): Promise<ArrayBuffer[]>;
    };
    const parts = await raw._httpGetMultipartApplicationDicom(url, [{ mediaType: 'application/dicom', transferSyntaxUID: ts }], false, {});
    expect(parts).to.have.length(1);
    return Buffer.from(parts[0]!);
  };

  async function reference(c: Case, asEle: Buffer): Promise<Pixels> {
    if ('twin' in c.ref) return pixelsOf(await fsp.readFile(path.join(corpusRoot, TS_DIR, c.ref.twin)));
    if ('dcmtk' in c.ref) {
      const out = path.join(tmp, `${path.basename(c.file)}.ref.dcm`);
      const [cmd, ...opts] = c.ref.dcmtk;
      const r = await runTool(cmd!, [...opts, path.join(corpusRoot, TS_DIR, c.file), out]);
      expect(r.code, r.output).to.equal(0);
      return pixelsOf(await fsp.readFile(out));
    }
    // No independent decoder here: ELE → lossless JPEG-LS → ELE must give the same pixels back.
    const jls = await node.transcoder.transcode(asEle, ELE, '1.2.840.10008.1.2.4.80');
    return pixelsOf(await node.transcoder.transcode(jls, '1.2.840.10008.1.2.4.80', ELE));
  }

  for (const c of CASES) {
    it(`${c.file}: as stored (*) byte for byte; by default and as explicit VR little endian ${c.lossy ? 'close to' : 'equal to'} ${Object.keys(c.ref)[0]}`, async () => {
      const original = await fsp.readFile(path.join(corpusRoot, TS_DIR, c.file));
      const ids = await ingest(c.file);
      expect((await retrieve(ids, '*')).equals(original)).to.equal(true);
      // No transfer syntax named: the default (PS3.18 §8.7.3.4), Explicit VR LE unless lossy.
      const byDefault = pixelsOf(await retrieve(ids));
      expect(byDefault.ts, 'default syntax').to.equal(c.lossy ? pixelsOf(original).ts : ELE);
      const ele = await retrieve(ids, ELE);
      const got = pixelsOf(ele);
      expect(got.ts).to.equal(ELE);
      const ref = await reference(c, ele);
      if (c.lossy) {
        expect(got.bytes.length).to.equal(ref.bytes.length);
        const err = meanError(got, ref);
        expect(err, 'mean error').to.be.lessThan(c.lossy);
      } else {
        expect(got.bytes.length, 'pixel data length').to.equal(ref.bytes.length);
        expect(got.bytes.equals(ref.bytes), 'pixel data equal').to.equal(true);
      }
    });
  }

  it('a series: transcoded parts labelled explicit VR LE; one the codec fails on is sent as stored and labelled so', async () => {
    // The WG04 MR1 files share one series; JPLY (.51, undecodable by syntax) is left out of it.
    const names = ['MR1_J2KR', 'MR1_JLSL', 'MR1_RLE', 'MR1_UNC'];
    for (const n of names) await ingest(`wg04-CT1-MR1/${n}`);
    const { studyInstanceUID, seriesInstanceUID } = await ingest('wg04-CT1-MR1/MR1_J2KR');
    const res = await fetch(`${baseUrl(node)}/dicom-web/studies/${studyInstanceUID}/series/${seriesInstanceUID}`, {
      headers: { ...bearer(token), accept: `multipart/related; type="application/dicom"; transfer-syntax=${ELE}` },
    });
    expect(res.status).to.equal(200);
    const { parts } = await readMultipartResponse(res);
    const labels = parts.map((p) => p.headers['content-type']!.replace(/^application\/dicom; transfer-syntax=/, ''));
    expect(labels.length).to.be.greaterThanOrEqual(3);
    expect(labels.filter((l) => l === '1.2.840.10008.1.2.4.80')).to.have.length(1);
    for (const [k, p] of parts.entries()) expect(pixelsOf(p.body).ts, `part ${k}`).to.equal(labels[k]);
    // The lossless ones decode to the uncompressed original.
    const unc = pixelsOf(await fsp.readFile(path.join(corpusRoot, TS_DIR, 'wg04-CT1-MR1/MR1_UNC')));
    const lossless = new Set(
      await Promise.all(
        ['MR1_J2KR', 'MR1_UNC'].map(async (n) => sopOf(await fsp.readFile(path.join(corpusRoot, TS_DIR, 'wg04-CT1-MR1', n)))),
      ),
    );
    const checked = parts.filter((p) => lossless.has(sopOf(p.body)));
    expect(checked).to.have.length(2);
    for (const p of checked) expect(pixelsOf(p.body).bytes.equals(unc.bytes)).to.equal(true);
    // With the undecodable JPEG Extended instance in the series, nothing can promise ELE: 406.
    await ingest('wg04-CT1-MR1/MR1_JPLY');
    const refused = await fetch(`${baseUrl(node)}/dicom-web/studies/${studyInstanceUID}/series/${seriesInstanceUID}`, {
      headers: { ...bearer(token), accept: `multipart/related; type="application/dicom"; transfer-syntax=${ELE}` },
    });
    expect(refused.status).to.equal(406);
  });

  for (const u of UNDECODABLE) {
    it(`${u.file}: explicit VR little endian is 406 with the reason; as stored still works`, async () => {
      const ids = await ingest(u.file);
      const res = await fetch(
        `${baseUrl(node)}/dicom-web/studies/${ids.studyInstanceUID}/series/${ids.seriesInstanceUID}/instances/${ids.sopInstanceUID}`,
        {
          headers: { ...bearer(token), accept: `multipart/related; type="application/dicom"; transfer-syntax=${ELE}` },
        },
      );
      expect(res.status).to.equal(406);
      expect(((await res.json()) as { error: { message: string } }).error.message).to.match(u.reason);
      expect((await retrieve(ids)).equals(await fsp.readFile(path.join(corpusRoot, TS_DIR, u.file)))).to.equal(true);
    });
  }

  // These have no Study Instance UID, so the node refuses to store them: their codecs are
  // checked on the transcoder itself.
  it('JLSL_16_15_1_1F (16-bit JPEG-LS) decodes as DCMTK does; HTJ2K lossless round-trips and its lossy twin is close', async () => {
    const file = (f: string) => fsp.readFile(path.join(corpusRoot, TS_DIR, 'pydicom', f));
    const jls = await node.transcoder.transcode(await file('JLSL_16_15_1_1F.dcm'), '1.2.840.10008.1.2.4.80', ELE);
    const out = path.join(tmp, 'jlsl16.dcm');
    const r = await runTool('dcmdjpls', [path.join(corpusRoot, TS_DIR, 'pydicom/JLSL_16_15_1_1F.dcm'), out]);
    expect(r.code, r.output).to.equal(0);
    expect(pixelsOf(jls).bytes.equals(pixelsOf(await fsp.readFile(out)).bytes)).to.equal(true);

    const ht = await node.transcoder.transcode(await file('HTJ2KLossless_08_RGB.dcm'), '1.2.840.10008.1.2.4.201', ELE);
    const again = await node.transcoder.transcode(
      await node.transcoder.transcode(ht, ELE, '1.2.840.10008.1.2.4.201'),
      '1.2.840.10008.1.2.4.201',
      ELE,
    );
    expect(pixelsOf(again).bytes.equals(pixelsOf(ht).bytes)).to.equal(true);
    const htLossy = await node.transcoder.transcode(await file('HTJ2K_08_RGB.dcm'), '1.2.840.10008.1.2.4.203', ELE);
    expect(meanError(pixelsOf(htLossy), pixelsOf(ht))).to.be.lessThan(0.02);
  });

  it('multiframe/Issue164.dcm (87-frame YBR_FULL_422 JPEG Baseline, odd frame size): every frame as explicit VR LE = dcmdjpeg', async () => {
    const file = path.join(corpusRoot, 'multiframe/Issue164.dcm');
    const out = path.join(tmp, 'issue164.ref.dcm');
    const r = await runTool('dcmdjpeg', [file, out]);
    expect(r.code, r.output).to.equal(0);
    const ref = pixelsOf(await fsp.readFile(out));
    const i = await node.ingestor.ingestFile(file, false, { source: 'import' });
    const url = `${baseUrl(node)}/dicom-web/studies/${i.studyInstanceUid}/series/${i.seriesInstanceUid}/instances/${i.sopInstanceUid}`;
    const frameSize = 743 * 975 * 3;
    /** Largest |a-b| over one frame's samples (JPEG decoders may differ by rounding). */
    const maxDiff = (a: Buffer, b: Buffer) => {
      expect(a.length).to.equal(b.length);
      let max = 0;
      for (let k = 0; k < a.length; k++) max = Math.max(max, Math.abs(a[k]! - b[k]!));
      return max;
    };
    const ids = { studyInstanceUID: i.studyInstanceUid, seriesInstanceUID: i.seriesInstanceUid, sopInstanceUID: i.sopInstanceUid };
    const ele = await retrieve(ids, ELE);
    const got = pixelsOf(ele);
    expect(got.ts).to.equal(ELE);
    expect(got.bytes.length, 'pixel data length (87 frames, padded once)').to.equal(ref.bytes.length);
    for (let f = 0; f < 87; f++) {
      const at = f * frameSize;
      expect(maxDiff(got.bytes.subarray(at, at + frameSize), ref.bytes.subarray(at, at + frameSize)), `frame ${f + 1}`).to.be.at.most(2);
    }
    // The frames resource in explicit VR LE: each frame the same as DCMTK's.
    for (const f of [1, 2, 44, 87]) {
      const res = await fetch(`${url}/frames/${f}`, {
        headers: { ...bearer(token), accept: `multipart/related; type="application/octet-stream"; transfer-syntax=${ELE}` },
      });
      expect(res.status, `frame ${f}`).to.equal(200);
      const { parts } = await readMultipartResponse(res);
      expect(parts).to.have.length(1);
      const at = (f - 1) * frameSize;
      expect(maxDiff(parts[0]!.body.subarray(0, frameSize), ref.bytes.subarray(at, at + frameSize)), `frame ${f}`).to.be.at.most(2);
    }
  });

  it('to a lossless compression (JPEG-LS) and back: the pixels survive', async () => {
    const ids = await ingest('wg04-CT1-MR1/CT1_UNC');
    const jls = await retrieve(ids, '1.2.840.10008.1.2.4.80');
    expect(pixelsOf(jls).ts).to.equal('1.2.840.10008.1.2.4.80');
    const back = await node.transcoder.transcode(jls, '1.2.840.10008.1.2.4.80', ELE);
    expect(pixelsOf(back).bytes.equals(pixelsOf(await fsp.readFile(path.join(corpusRoot, TS_DIR, 'wg04-CT1-MR1/CT1_UNC'))).bytes)).to.equal(
      true,
    );
  });

  it('lossy targets when asked for: JPEG-LS near-lossless, JPEG 2000, JPEG Baseline (8-bit only), marked as derived lossy images', async () => {
    /** The DCMTK dump of a retrieved instance, and its pixels decoded by `decoder` (DCMTK) or by the node. */
    const check = async (ids: Awaited<ReturnType<typeof ingest>>, ts: string, decoder: string | undefined, original: Pixels) => {
      const got = await retrieve(ids, ts);
      const file = path.join(tmp, `lossy-${ts}.dcm`);
      await fsp.writeFile(file, got);
      const dump = await runTool('dcmdump', [
        '-Un',
        '+P',
        '0002,0010',
        '+P',
        '0008,0018',
        '+P',
        '0008,0008',
        '+P',
        '0028,2110',
        '+P',
        '0028,2112',
        '+P',
        '0028,2114',
        file,
      ]);
      expect(dump.code, dump.output).to.equal(0);
      expect(dump.output).to.include(ts);
      expect(dump.output).to.match(/\(0028,2110\) CS \[01\]/);
      expect(dump.output).to.match(/\(0028,2112\) DS \[[0-9.\\]+\]/);
      expect(sopOf(got), 'a new SOP Instance UID').to.not.equal(ids.sopInstanceUID);
      expect(dump.output).to.match(/\(0008,0008\) CS \[DERIVED/);
      let decoded: Pixels;
      if (decoder) {
        const out = path.join(tmp, `lossy-${ts}.dec.dcm`);
        const r = await runTool(decoder, [file, out]);
        expect(r.code, r.output).to.equal(0);
        decoded = pixelsOf(await fsp.readFile(out));
      } else {
        decoded = pixelsOf(await node.transcoder.transcode(got, ts, ELE));
      }
      expect(decoded.bytes.length).to.equal(original.bytes.length);
      expect(meanError(decoded, original), `${ts} mean error`).to.be.lessThan(0.01);
      return dump.output;
    };
    const ct = await ingest('wg04-CT1-MR1/CT1_UNC');
    const ctPixels = pixelsOf(await fsp.readFile(path.join(corpusRoot, TS_DIR, 'wg04-CT1-MR1/CT1_UNC')));
    expect(await check(ct, '1.2.840.10008.1.2.4.81', 'dcmdjpls', ctPixels)).to.match(/\(0028,2114\) CS \[ISO_14495_1\]/);
    // DCMTK has no JPEG 2000 decoder: the node's own (OpenJPEG) decodes it.
    expect(await check(ct, '1.2.840.10008.1.2.4.91', undefined, ctPixels)).to.match(/\(0028,2114\) CS \[ISO_15444_1\]/);
    // 16-bit CT cannot be JPEG Baseline: 406 with the reason.
    const url = `${baseUrl(node)}/dicom-web/studies/${ct.studyInstanceUID}/series/${ct.seriesInstanceUID}/instances/${ct.sopInstanceUID}`;
    const refused = await fetch(url, {
      headers: { ...bearer(token), accept: 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50' },
    });
    expect(refused.status).to.equal(406);
    expect(((await refused.json()) as { error: { message: string } }).error.message).to.match(/8-bit samples only/);

    const gray8 = await ingest('pydicom/JPGLosslessP14SV1_1s_1f_8b.dcm');
    const ref = path.join(tmp, 'gray8.ref.dcm');
    expect((await runTool('dcmdjpeg', [path.join(corpusRoot, TS_DIR, 'pydicom/JPGLosslessP14SV1_1s_1f_8b.dcm'), ref])).code).to.equal(0);
    expect(await check(gray8, '1.2.840.10008.1.2.4.50', 'dcmdjpeg', pixelsOf(await fsp.readFile(ref)))).to.match(
      /\(0028,2114\) CS \[ISO_10918_1\]/,
    );
    // Already lossy (JPEG Baseline RGB) → JPEG 2000: ratios and methods appended, in step order.
    const rgb = await ingest('pydicom/SC_rgb_jpeg_dcmtk.dcm');
    const again = await retrieve(rgb, '1.2.840.10008.1.2.4.91');
    const file = path.join(tmp, 'rgb-again.dcm');
    await fsp.writeFile(file, again);
    const dump = await runTool('dcmdump', ['+P', '0028,2114', '+P', '0028,2112', file]);
    expect(dump.output).to.match(/\(0028,2114\) CS \[ISO_10918_1\\ISO_15444_1\]/);
    expect(dump.output).to.match(/\(0028,2112\) DS \[[0-9.]+\\[0-9.]+\]/);
  });
});
