import { expect } from 'chai';
import fsp from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import dcmjs from 'dcmjs';
import dicomweb from 'dicomweb-client';
import XHR2 from 'xhr2';
import type { StoredInstanceRow } from '../src/catalog/catalog.js';
import { ingestCorpusFiles } from './helpers/api.js';
import { corpusRoot } from './helpers/corpus.js';
import { runTool } from './helpers/dcmtk.js';
import { baseUrl, bearer, tokenFor } from './helpers/http.js';
import { startTestNode, tempDir, type TestNode } from './helpers/node.js';
import { readParts } from './helpers/pixel-routes.js';

/**
 * DICOMweb protocol conformance (issue 17) on a real node with corpus files, each checked with an
 * independent client: every BulkDataURI of the metadata resolves through dicomweb-client's
 * retrieveBulkData (and answers a Range with 206); metadata and QIDO-RS in XML
 * (application/dicom+xml, PS3.19), parsed by Python's XML parser and compared with DCMTK's
 * dcm2xml --native-format of the same file; QIDO-RS default attributes (PS3.18 Table
 * 6.7.1-2/-2a); an empty Expect header; Forwarded / X-Forwarded-* with HTTP_TRUST_PROXY.
 */

dcmjs.log.setLevel('silent');

const FILES = {
  ct: 'transfer-syntaxes/wg04-CT1-MR1/CT1_UNC',
  emri: 'multiframe/emri_small.dcm',
  jpeg: 'transfer-syntaxes/pydicom/SC_rgb_jpeg_dcmtk.dcm',
} as const;

type Json = Record<string, { vr: string; Value?: unknown[]; BulkDataURI?: string; InlineBinary?: string }>;

/** A Native DICOM Model document → {tag: {vr, values, items, bulk}}, by Python's own XML parser. */
const XML_TO_JSON = `
import json, sys, xml.etree.ElementTree as ET
NS = '{http://dicom.nema.org/PS3.19/models/NativeDICOM}'
def local(t): return t.split('}')[-1]
def pn(el):
    groups = []
    for g in ('Alphabetic', 'Ideographic', 'Phonetic'):
        e = next((c for c in el if local(c.tag) == g), None)
        if e is None: groups.append(''); continue
        comps = []
        for c in ('FamilyName', 'GivenName', 'MiddleName', 'NamePrefix', 'NameSuffix'):
            x = next((k for k in e if local(k.tag) == c), None)
            comps.append((x.text or '') if x is not None else '')
        groups.append('^'.join(comps).rstrip('^'))
    return '='.join(groups).rstrip('=')
def dataset(root):
    out = {}
    for a in root:
        if local(a.tag) != 'DicomAttribute': continue
        d = {'vr': a.get('vr'), 'values': [], 'items': 0}
        for c in a:
            n = local(c.tag)
            if n == 'Value': d['values'].append(c.text or '')
            elif n == 'PersonName': d['values'].append(pn(c))
            elif n == 'Item': d['items'] += 1
            elif n == 'BulkData': d['bulk'] = c.get('uri')
            elif n == 'InlineBinary': d['inline'] = True
        out[a.get('tag')] = d
    return out
print(json.dumps([dataset(ET.parse(f).getroot()) for f in sys.argv[1:]]))
`;

interface XmlAttr {
  vr: string;
  values: string[];
  items: number;
  bulk?: string;
  inline?: boolean;
}

async function parseXml(docs: Buffer[]): Promise<Array<Record<string, XmlAttr>>> {
  const dir = await tempDir('xml');
  try {
    const files = await Promise.all(
      docs.map(async (d, i) => {
        const f = path.join(dir, `${i}.xml`);
        await fsp.writeFile(f, d);
        return f;
      }),
    );
    const r = await runTool('python3', ['-c', XML_TO_JSON, ...files]);
    expect(r.code, r.stderr).to.equal(0);
    return JSON.parse(r.stdout) as Array<Record<string, XmlAttr>>;
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

const NUMERIC = new Set(['DS', 'IS', 'US', 'SS', 'UL', 'SL', 'FL', 'FD']);
const BINARY = new Set(['OB', 'OW', 'OF', 'OD', 'OL', 'OV', 'UN']);
const clean = (s: string) => s.replace(/[\0 ]+$/, '').trim();

function pixelValue(file: Buffer): Buffer {
  const ab = file.buffer.slice(file.byteOffset, file.byteOffset + file.length) as ArrayBuffer;
  const dict = (dcmjs.data.DicomMessage.readFile(ab) as unknown as { dict: Record<string, { Value: ArrayBuffer[] }> }).dict;
  return Buffer.from(dict['7FE00010']!.Value[0]!);
}

function withClient<T>(fn: () => Promise<T>): Promise<T> {
  const g = globalThis as { XMLHttpRequest?: unknown };
  const saved = g.XMLHttpRequest;
  g.XMLHttpRequest = XHR2;
  return fn().finally(() => {
    g.XMLHttpRequest = saved;
  });
}

/** One raw HTTP/1.1 request on a socket; the status line's code. */
function rawStatus(port: number, request: string | Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.write(request));
    let got = '';
    sock.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(got);
      if (m) {
        sock.destroy();
        resolve(Number(m[1]));
      }
    });
    sock.on('error', reject);
    sock.setTimeout(20_000, () => reject(new Error('no answer')));
  });
}

describe('DICOMweb protocol conformance (issue 17)', function () {
  this.timeout(120_000);
  let node: TestNode;
  let url: string;
  let token: string;
  let rows: Record<keyof typeof FILES, StoredInstanceRow>;
  const instanceUrl = (r: StoredInstanceRow) =>
    `${url}/dicom-web/studies/${r.study_instance_uid}/series/${r.series_instance_uid}/instances/${r.sop_instance_uid}`;

  before(async () => {
    node = await startTestNode({ HTTP_TRUST_PROXY: 'true' });
    url = baseUrl(node);
    token = await tokenFor(node, 'technician');
    rows = await ingestCorpusFiles(node, FILES);
  });
  after(async () => {
    await node?.cleanup();
  });

  const get = (u: string, headers: Record<string, string> = {}) => fetch(u, { headers: { ...bearer(token), ...headers } });
  const client = () =>
    new dicomweb.api.DICOMwebClient({
      url: `${url}/dicom-web`,
      headers: { Authorization: `Bearer ${token}` },
      verbose: false,
      singlepart: false,
    });

  type Client = ReturnType<typeof client>;
  const bulk = async (c: Client, uri: string) =>
    (await c.retrieveBulkData({ BulkDataURI: uri } as Parameters<Client['retrieveBulkData']>[0])) as ArrayBuffer[];

  it('GET /docs/conformance: the DICOM Conformance Statement, HTML and its Markdown source (no token needed)', async () => {
    const html = await fetch(`${url}/docs/conformance`);
    expect(html.status).to.equal(200);
    expect(html.headers.get('content-type')).to.match(/^text\/html/);
    const body = await html.text();
    expect(body).to.include('<h1>RadiantAI DICOM Conformance Statement</h1>');
    expect(body).to.include('1.2.840.10008.5.1.4.1.2.2.1');
    const md = await fetch(`${url}/docs/conformance.md`);
    expect(md.headers.get('content-type')).to.match(/^text\/markdown/);
    expect(await md.text()).to.equal(await fsp.readFile('docs/conformance.md', 'utf8'));
  });

  it('every BulkDataURI of the metadata resolves through dicomweb-client retrieveBulkData (CT, multi-frame, JPEG)', async () => {
    await withClient(async () => {
      const c = client();
      for (const name of Object.keys(FILES) as Array<keyof typeof FILES>) {
        const r = rows[name];
        const [meta] = (await c.retrieveInstanceMetadata({
          studyInstanceUID: r.study_instance_uid,
          seriesInstanceUID: r.series_instance_uid,
          sopInstanceUID: r.sop_instance_uid,
        })) as Json[];
        const uris: Array<[string, string]> = [];
        const walk = (ds: Json) => {
          for (const [t, a] of Object.entries(ds)) {
            if (a.BulkDataURI) uris.push([t, a.BulkDataURI]);
            if (a.vr === 'SQ') for (const item of (a.Value ?? []) as Json[]) walk(item);
          }
        };
        walk(meta!);
        expect(meta!['7FE00010']!.BulkDataURI, name).to.equal(`${instanceUrl(r)}/bulkdata/7FE00010`);
        for (const [t, uri] of uris) {
          const parts = await bulk(c, uri);
          expect(parts.length, `${name} ${t}`).to.be.greaterThan(0);
          expect(parts[0]!.byteLength, `${name} ${t}`).to.be.greaterThan(0);
        }
      }
      // Native pixel data: the stored value byte for byte.
      const file = await fsp.readFile(path.join(corpusRoot, FILES.emri));
      const [pixels] = await bulk(c, `${instanceUrl(rows.emri)}/bulkdata/7FE00010`);
      expect(Buffer.from(pixels!).equals(pixelValue(file))).to.equal(true);
      // Encapsulated pixel data asked as application/octet-stream: decoded (Explicit VR LE), rows × columns × 3 bytes.
      const [rgb] = await bulk(c, `${instanceUrl(rows.jpeg)}/bulkdata/7FE00010`);
      const meta = (await (await get(`${instanceUrl(rows.jpeg)}/metadata`)).json()) as Json[];
      const rowsN = meta[0]!['00280010']!.Value![0] as number;
      const cols = meta[0]!['00280011']!.Value![0] as number;
      expect(rgb!.byteLength).to.be.at.least(rowsN * cols * 3);
    });
  });

  it('Pixel Data bulk data: single-part octet-stream, a Range → 206, the frames as stored with transfer-syntax=*', async () => {
    const whole = pixelValue(await fsp.readFile(path.join(corpusRoot, FILES.ct)));
    const bulk = `${instanceUrl(rows.ct)}/bulkdata/7FE00010`;
    let res = await get(bulk, { accept: 'application/octet-stream' });
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.equal('application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1');
    expect(Buffer.from(await res.arrayBuffer()).equals(whole)).to.equal(true);
    res = await get(bulk, { accept: 'application/octet-stream', range: 'bytes=512-1023' });
    expect(res.status).to.equal(206);
    expect(res.headers.get('content-range')).to.equal(`bytes 512-1023/${whole.length}`);
    expect(Buffer.from(await res.arrayBuffer()).equals(whole.subarray(512, 1024))).to.equal(true);
    res = await get(`${instanceUrl(rows.jpeg)}/bulkdata/7FE00010`, {
      accept: 'multipart/related; type="application/octet-stream"; transfer-syntax=*',
    });
    expect(res.status).to.equal(200);
    const [frame] = await readParts(res);
    expect(frame!.headers['content-type']).to.equal('application/octet-stream; transfer-syntax=1.2.840.10008.1.2.4.50');
    expect(frame!.body.subarray(0, 2).toString('hex')).to.equal('ffd8');
  });

  it('metadata as multipart/related; type="application/dicom+xml" matches dcm2xml --native-format of the file', async () => {
    const res = await get(`${instanceUrl(rows.ct)}/metadata`, { accept: 'multipart/related; type="application/dicom+xml"' });
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^multipart\/related; type="application\/dicom\+xml"; boundary=/);
    const parts = await readParts(res);
    expect(parts).to.have.length(1);
    expect(parts[0]!.headers['content-type']).to.contain('application/dicom+xml');
    const ref = await runTool('dcm2xml', ['--native-format', path.join(corpusRoot, FILES.ct)]);
    expect(ref.code, ref.stderr).to.equal(0);
    const [ours, theirs] = await parseXml([parts[0]!.body, Buffer.from(ref.stdout, 'latin1')]);
    expect(ours!['7FE00010']!.bulk).to.equal(`${instanceUrl(rows.ct)}/bulkdata/7FE00010`);
    let compared = 0;
    for (const [t, a] of Object.entries(theirs!)) {
      if (t.startsWith('0002') || t === '00080005' || t === '7FE00010' || BINARY.has(a.vr)) continue;
      const o = ours![t];
      expect(o, t).to.not.equal(undefined);
      expect(o!.vr, t).to.equal(a.vr);
      if (a.vr === 'SQ') {
        expect(o!.items, t).to.equal(a.items);
        continue;
      }
      const want = a.values.map(clean);
      const got = o!.values.map(clean);
      if (NUMERIC.has(a.vr)) {
        expect(got.map(Number), t).to.have.length(want.length);
        got.forEach((g, i) => expect(Number(g), t).to.be.closeTo(Number(want[i]), Math.abs(Number(want[i])) * 1e-6 + 1e-9));
      } else expect(got, t).to.deep.equal(want);
      compared++;
    }
    expect(compared).to.be.greaterThan(40);
  });

  it('QIDO-RS in XML: one Native DICOM Model part per match, the same attributes as the JSON answer', async () => {
    const study = rows.ct.study_instance_uid;
    const json = (await (await get(`${url}/dicom-web/studies?StudyInstanceUID=${study}`)).json()) as Json[];
    const res = await get(`${url}/dicom-web/studies?StudyInstanceUID=${study}`, {
      accept: 'multipart/related; type="application/dicom+xml"',
    });
    expect(res.status).to.equal(200);
    const parts = await readParts(res);
    expect(parts).to.have.length(1);
    const [doc] = await parseXml([parts[0]!.body]);
    expect(Object.keys(doc!).sort()).to.deep.equal(Object.keys(json[0]!).sort());
    expect(doc!['0020000D']!.values).to.deep.equal([study]);
    expect((await get(`${url}/dicom-web/studies`, { accept: 'text/html' })).status).to.equal(406);
  });

  it('QIDO-RS default attributes (PS3.18 Table 6.7.1-2/-2a): BitsAllocated, Rows, Columns, NumberOfFrames, TimezoneOffsetFromUTC', async () => {
    const r = rows.emri;
    const res = await get(`${url}/dicom-web/studies/${r.study_instance_uid}/series/${r.series_instance_uid}/instances`);
    const [inst] = (await res.json()) as Json[];
    for (const t of [
      '00080016',
      '00080018',
      '00080056',
      '00080201',
      '00081190',
      '00200013',
      '00280010',
      '00280011',
      '00280100',
      '00280008',
    ]) {
      expect(inst, t).to.have.property(t);
    }
    expect(inst!['00280100']!.Value).to.deep.equal([16]);
    expect(inst!['00280008']!.Value).to.deep.equal([10]);
    const [series] = (await (await get(`${url}/dicom-web/studies/${r.study_instance_uid}/series`)).json()) as Json[];
    expect(series).to.have.property('00400275');
    expect(series).to.have.property('00080201');
    const [studyRow] = (await (await get(`${url}/dicom-web/studies?StudyInstanceUID=${r.study_instance_uid}`)).json()) as Json[];
    expect(studyRow).to.have.property('00080201');
  });

  it('an empty Expect header is ignored; an unknown expectation is 417', async () => {
    const port = node.httpPort;
    const req = (expect: string) =>
      `GET /dicom-web/studies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n${expect}Content-Length: 0\r\nConnection: close\r\n\r\n`;
    expect(await rawStatus(port, req('Expect:\r\n'))).to.equal(200);
    expect(await rawStatus(port, req('Expect: \r\n'))).to.equal(200);
    expect(await rawStatus(port, req('Expect: something-else\r\n'))).to.equal(417);
    // A POST with an empty Expect is served too (STOW-RS without a body part is a 400 of ours, not Node's 417).
    const post = `POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nExpect:\r\nContent-Type: multipart/related; type="application/dicom"; boundary=b\r\nContent-Length: 6\r\nConnection: close\r\n\r\n--b--\r\n`;
    const status = await rawStatus(port, post);
    expect(status).to.not.equal(417);
    expect(status).to.be.within(200, 499);
  });

  it('HTTP_TRUST_PROXY: Forwarded / X-Forwarded-* make RetrieveURL, BulkDataURI and STOW URLs point to the external address', async () => {
    const r = rows.ct;
    const study = r.study_instance_uid;
    const viaForwarded = {
      forwarded: 'for=192.0.2.60;proto=https;host="pacs.example.org", for=10.0.0.1',
      'x-forwarded-prefix': '/radiant/',
    };
    let [q] = (await (await get(`${url}/dicom-web/studies?StudyInstanceUID=${study}`, viaForwarded)).json()) as Json[];
    expect(q!['00081190']!.Value).to.deep.equal([`https://pacs.example.org/radiant/dicom-web/studies/${study}`]);
    const [meta] = (await (await get(`${url}/dicom-web/studies/${study}/metadata`, viaForwarded)).json()) as Json[];
    expect(meta!['7FE00010']!.BulkDataURI).to.match(/^https:\/\/pacs\.example\.org\/radiant\/dicom-web\/studies\/.+\/bulkdata\/7FE00010$/);
    const viaX = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'gateway.example.org:8443, inner:80' };
    [q] = (await (await get(`${url}/dicom-web/studies?StudyInstanceUID=${study}`, viaX)).json()) as Json[];
    expect(q!['00081190']!.Value).to.deep.equal([`https://gateway.example.org:8443/dicom-web/studies/${study}`]);
    // A header value that is not a host is ignored: the request's own address is written.
    [q] = (await (await get(`${url}/dicom-web/studies?StudyInstanceUID=${study}`, { 'x-forwarded-host': 'evil/host' })).json()) as Json[];
    expect(q!['00081190']!.Value).to.deep.equal([`${url}/dicom-web/studies/${study}`]);
    // STOW-RS: the store response's RetrieveURLs too.
    const file = await fsp.readFile(path.join(corpusRoot, FILES.ct));
    const boundary = 'proxytestboundary';
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`),
      file,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const stow = await fetch(`${url}/dicom-web/studies`, {
      method: 'POST',
      headers: {
        ...bearer(token),
        ...viaForwarded,
        accept: 'application/dicom+json',
        'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
      },
      body: new Uint8Array(body),
    });
    expect(stow.status).to.equal(200);
    const out = (await stow.json()) as Json;
    expect(out['00081190']!.Value).to.deep.equal([`https://pacs.example.org/radiant/dicom-web/studies/${study}`]);
  });
});
