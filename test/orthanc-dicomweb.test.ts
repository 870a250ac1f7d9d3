import { expect } from 'chai';
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import dcmjs from 'dcmjs';
import { makeCrImage } from '../fixtures/generate.js';
import { corpusDir } from './helpers/corpus.js';
import { bearer, baseUrl, tokenFor } from './helpers/http.js';
import { startTestNode, type TestNode } from './helpers/node.js';
import { startOrthanc, type TestOrthanc } from './helpers/orthanc.js';
import { readMultipartResponse } from './helpers/wado.js';

/**
 * Orthanc's DICOMweb plugin (orthanc-dicomweb, an independent DICOMweb client) pointed at the node
 * with a bearer token: QIDO-RS through /dicom-web/servers/{id}/qido, any GET through …/get (metadata),
 * WADO-RS retrieve into Orthanc through …/retrieve, and STOW-RS of one of Orthanc's instances into the
 * node through …/stow. What arrives on either side must be the same instances, pixels intact.
 */

dcmjs.log.setLevel('silent');

type DicomJson = Record<string, { vr: string; Value?: unknown[] }>;

/** SOP Instance UID and a hash of the Pixel Data value of a Part 10 file, read by dcmjs. */
function identity(part10: Buffer): { sop: string; pixels: string } {
  const ab = part10.buffer.slice(part10.byteOffset, part10.byteOffset + part10.length) as ArrayBuffer;
  const msg = dcmjs.data.DicomMessage.readFile(ab) as unknown as { dict: Record<string, { Value: unknown[] }> };
  const hash = crypto.createHash('sha256');
  for (const part of msg.dict['7FE00010']!.Value as ArrayBuffer[]) hash.update(Buffer.from(part));
  return { sop: String(msg.dict['00080018']!.Value[0]), pixels: hash.digest('hex') };
}

const value = (ds: DicomJson, tag: string) => ds[tag]?.Value?.[0];

/** Orthanc's answer to …/qido: its own JSON, one string per single-valued element. */
type OrthancJson = Record<string, { vr: string; Value?: unknown }>;

/**
 * Numbers in DICOM JSON (IS, DS, US, …: JSON numbers, PS3.18 F.2.3) come out of Orthanc 1.10's
 * …/qido without a value (it keeps string values only): for those only the tag is compared.
 */
const NUMERIC_VRS = new Set(['IS', 'DS', 'US', 'SS', 'UL', 'SL', 'FL', 'FD', 'UV', 'SV']);

/** Tag → value as a string, for the elements that are not sequences ('#' for a number). */
function flatten(ds: OrthancJson): Record<string, string> {
  return Object.fromEntries(
    Object.entries(ds).flatMap(([tag, e]) => (e.vr === 'SQ' ? [] : [[tag, NUMERIC_VRS.has(e.vr) ? '#' : String(e.Value ?? '')]])),
  );
}

/** The node's DICOM JSON flattened as Orthanc flattens it (PN as its alphabetic group). */
function ownFlat(ds: DicomJson): Record<string, string> {
  return Object.fromEntries(
    Object.entries(ds).flatMap(([tag, e]) => {
      if (e.vr === 'SQ') return [];
      if (NUMERIC_VRS.has(e.vr)) return [[tag, '#']];
      const v = (e.Value ?? []).map((x) => (x && typeof x === 'object' ? ((x as { Alphabetic?: string }).Alphabetic ?? '') : String(x)));
      return [[tag, v.join('\\')]];
    }),
  );
}

describe("Orthanc's DICOMweb plugin as a client of the node: QIDO-RS, metadata, WADO-RS retrieve, STOW-RS", function () {
  this.timeout(240_000);
  let node: TestNode;
  let orthanc: TestOrthanc;
  let token: string;
  /** The ingested CT slices: SOP Instance UID → pixel hash of the original file. */
  const originals = new Map<string, string>();
  let study = '';
  let series = '';

  before(async () => {
    node = await startTestNode();
    // technician: images:read and images:write (STOW-RS).
    token = await tokenFor(node, 'technician');
    for (const f of corpusDir('ct-series-chest-99').slice(0, 4)) {
      const r = await node.ingestor.ingestFile(f.absPath, false, { source: 'import' });
      study = r.studyInstanceUid;
      series = r.seriesInstanceUid;
      const id = identity(await fsp.readFile(f.absPath));
      originals.set(id.sop, id.pixels);
    }
    orthanc = await startOrthanc({}, { dicomWeb: true });
    await orthanc.rest('PUT', '/dicom-web/servers/radiant', {
      Url: `${baseUrl(node)}/dicom-web/`,
      HttpHeaders: { Authorization: `Bearer ${token}` },
    });
  });
  after(async () => {
    await orthanc?.stop();
    await node?.cleanup();
  });

  const viaOrthanc = <T>(verb: 'qido' | 'get' | 'retrieve' | 'stow', body: unknown) =>
    orthanc.rest<T>('POST', `/dicom-web/servers/radiant/${verb}`, body);

  it('QIDO-RS at study, series and instance level answers Orthanc as it answers the node’s own client', async () => {
    const studies = await viaOrthanc<OrthancJson[]>('qido', { Uri: '/studies', Arguments: { StudyInstanceUID: study } });
    expect(studies).to.have.length(1);
    expect(studies[0]!['0020000D']?.Value).to.equal(study);
    const own = (await (
      await fetch(`${baseUrl(node)}/dicom-web/studies?StudyInstanceUID=${study}`, { headers: bearer(token) })
    ).json()) as DicomJson[];
    expect(flatten(studies[0]!)).to.deep.equal(ownFlat(own[0]!));

    const seriesList = await viaOrthanc<OrthancJson[]>('qido', { Uri: `/studies/${study}/series`, Arguments: {} });
    expect(seriesList.map((x) => x['0020000E']?.Value)).to.deep.equal([series]);
    const instances = await viaOrthanc<OrthancJson[]>('qido', { Uri: `/studies/${study}/series/${series}/instances`, Arguments: {} });
    expect(new Set(instances.map((i) => i['00080018']?.Value))).to.deep.equal(new Set(originals.keys()));
    const ownInstances = (await (
      await fetch(`${baseUrl(node)}/dicom-web/studies/${study}/series/${series}/instances`, { headers: bearer(token) })
    ).json()) as DicomJson[];
    const bySop = (l: Array<Record<string, string>>) => new Map(l.map((x) => [x['00080018'], x]));
    expect(bySop(instances.map(flatten))).to.deep.equal(bySop(ownInstances.map(ownFlat)));
    // A matching key on the wire (Orthanc builds the query string).
    const one = [...originals.keys()][0]!;
    const matched = await viaOrthanc<OrthancJson[]>('qido', { Uri: '/instances', Arguments: { SOPInstanceUID: one } });
    expect(matched.map((i) => i['00080018']?.Value)).to.deep.equal([one]);
  });

  it('…/get of an instance’s metadata gives the DICOM JSON the node serves', async () => {
    const sop = [...originals.keys()][0]!;
    const uri = `/studies/${study}/series/${series}/instances/${sop}/metadata`;
    const got = await viaOrthanc<DicomJson[]>('get', { Uri: uri });
    expect(got).to.have.length(1);
    expect(value(got[0]!, '00080018')).to.equal(sop);
    expect(value(got[0]!, '00280010')).to.equal(512);
    const own = (await (await fetch(`${baseUrl(node)}/dicom-web${uri}`, { headers: bearer(token) })).json()) as DicomJson[];
    expect(got).to.deep.equal(own);
  });

  it('WADO-RS retrieve of the study into Orthanc: every instance arrives, pixels identical to the originals', async () => {
    await viaOrthanc('retrieve', { Resources: [{ Study: study }] });
    const ids = await orthanc.rest<string[]>('GET', '/instances');
    const arrived = new Map<string, string>();
    for (const id of ids) {
      const res = await fetch(`${orthanc.url}/instances/${id}/file`);
      expect(res.status).to.equal(200);
      const { sop, pixels } = identity(Buffer.from(await res.arrayBuffer()));
      arrived.set(sop, pixels);
    }
    expect(arrived).to.deep.equal(originals);
  });

  it('STOW-RS from Orthanc: its instance is stored by the node, found by QIDO-RS, pixels intact', async () => {
    const [cr] = makeCrImage({ rows: 48, columns: 64 });
    const res = await fetch(`${orthanc.url}/instances`, { method: 'POST', body: cr!.bytes });
    expect(res.status).to.equal(200);
    const { ID } = (await res.json()) as { ID: string };
    await viaOrthanc('stow', { Resources: [ID], Synchronous: true });
    const deadline = Date.now() + 20_000;
    let found: DicomJson[] = [];
    while (Date.now() < deadline) {
      const q = await fetch(`${baseUrl(node)}/dicom-web/instances?SOPInstanceUID=${cr!.sopInstanceUid}`, { headers: bearer(token) });
      found = q.status === 200 ? ((await q.json()) as DicomJson[]) : [];
      if (found.length) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(found.map((i) => value(i, '00080018'))).to.deep.equal([cr!.sopInstanceUid]);
    expect(value(found[0]!, '0020000D')).to.equal(cr!.studyInstanceUid);
    const back = await fetch(
      `${baseUrl(node)}/dicom-web/studies/${cr!.studyInstanceUid}/series/${cr!.seriesInstanceUid}/instances/${cr!.sopInstanceUid}`,
      {
        headers: { ...bearer(token), accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' },
      },
    );
    expect(back.status).to.equal(200);
    const { parts } = await readMultipartResponse(back);
    expect(identity(parts[0]!.body)).to.deep.equal(identity(cr!.bytes));
  });
});
