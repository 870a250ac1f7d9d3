/**
 * Per-object SHA-256 (issue 21, item 4): the ingest path keeps each blob's digest in the index;
 * whole-instance reads check it. A blob damaged at rest is never served as the instance: a
 * buffered read (transcoding) answers 500 `blob_integrity`, a streamed one (WADO-URI) is cut off
 * before it completes (its last chunk held back until the digest is checked). An instance indexed without a digest (stored before
 * migration 028) gets it on its first complete read.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import fs from 'node:fs';
import { makeCtSeries } from '../fixtures/generate.js';
import { auditRows, ingestCorpusFiles, ingestFiles } from './helpers/api.js';
import { getscuStudy, movescuStudy, startStorescp, type ReferenceScp } from './helpers/dcmtk.js';
import { baseUrl, bearer, tokenFor } from './helpers/http.js';
import { freePort, startTestNode, tempDir, type TestNode } from './helpers/node.js';
import { until } from './helpers/until.js';
import { readMultipartResponse } from './helpers/wado.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('Per-object SHA-256: kept at ingest, checked on whole-instance reads', function () {
  this.timeout(120_000);
  let node: TestNode;
  let token: string;
  const files = makeCtSeries({ seed: 'integrity', slices: 3, size: 32 });
  const [a, b, c] = files;
  const blobPath = (key: string) => path.join(node.config.storage.type === 'local' ? node.config.storage.root : '', key);
  const row = (sop: string) =>
    node.db('instances').where({ sop_instance_uid: sop }).first() as Promise<{ sha256: string | null; storage_key: string }>;
  const wadoUri = (f: typeof a) =>
    fetch(
      `${baseUrl(node)}/wado?${new URLSearchParams({ requestType: 'WADO', studyUID: f!.studyInstanceUid, seriesUID: f!.seriesInstanceUid, objectUID: f!.sopInstanceUid, contentType: 'application/dicom' })}`,
      { headers: bearer(token) },
    );
  const wadoRs = (f: typeof a, accept: string) =>
    fetch(`${baseUrl(node)}/dicom-web/studies/${f!.studyInstanceUid}/series/${f!.seriesInstanceUid}/instances/${f!.sopInstanceUid}`, {
      headers: { ...bearer(token), accept },
    });
  /** The whole body, or the error that cut it off. */
  const body = async (res: Response | Promise<Response>): Promise<Buffer | Error> => {
    try {
      return Buffer.from(await (await res).arrayBuffer());
    } catch (err) {
      return err as Error;
    }
  };

  before(async () => {
    node = await startTestNode();
    token = await tokenFor(node, 'viewer');
    await ingestFiles(node, files);
  });
  after(async () => node?.cleanup());

  it('stores the SHA-256 of the blob as stored with each instance', async () => {
    for (const f of files) {
      const r = await row(f.sopInstanceUid);
      expect(r.sha256).to.match(/^[0-9a-f]{64}$/);
      expect(r.sha256).to.equal(sha(await fsp.readFile(blobPath(r.storage_key))));
    }
  });

  it('an intact instance is served whole (WADO-URI and WADO-RS)', async () => {
    const uri = await body(await wadoUri(a));
    expect(uri).to.be.instanceOf(Buffer);
    expect(sha(uri as Buffer)).to.equal((await row(a!.sopInstanceUid)).sha256);
    const rs = await wadoRs(a, 'multipart/related; type="application/dicom"');
    expect(rs.status).to.equal(200);
    expect(await body(rs)).to.be.instanceOf(Buffer);
  });

  it('a damaged blob: transcoding answers 500 blob_integrity; the WADO-URI stream is cut off, never complete', async () => {
    const r = await row(b!.sopInstanceUid);
    const file = blobPath(r.storage_key);
    const bytes = await fsp.readFile(file);
    bytes[bytes.length - 10] ^= 0xff; // one pixel byte: the same size, other content
    await fsp.writeFile(file, bytes);

    const transcoded = await wadoRs(b, 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2');
    expect(transcoded.status).to.equal(500);
    expect(((await transcoded.json()) as { error: { code: string } }).error.code).to.equal('blob_integrity');

    // Small blobs fail before even the status line is flushed: the connection just closes.
    const uriBody = await body(wadoUri(b));
    expect(uriBody, 'WADO-URI must not complete with damaged bytes').to.be.instanceOf(Error);

    // The node keeps serving the intact ones.
    expect(await body(wadoUri(a))).to.be.instanceOf(Buffer);
  });

  it('a damaged blob is never rendered: /rendered and /thumbnail answer 500 blob_integrity; the series rendering is cut off', async () => {
    // b was damaged by the test above.
    const base = `${baseUrl(node)}/dicom-web/studies/${b!.studyInstanceUid}/series/${b!.seriesInstanceUid}`;
    for (const resource of ['rendered', 'thumbnail', 'frames/1/rendered']) {
      const res = await fetch(`${base}/instances/${b!.sopInstanceUid}/${resource}`, { headers: { ...bearer(token), accept: 'image/png' } });
      expect(res.status, resource).to.equal(500);
      expect(((await res.json()) as { error: { code: string } }).error.code, resource).to.equal('blob_integrity');
    }
    // The series' parts are rendered in order: the damaged one fails the answer, before its status
    // (500) or after it (the connection cut, no closing delimiter), never as a complete multipart.
    const series = await fetch(`${base}/rendered`, { headers: { ...bearer(token), accept: 'multipart/related; type="image/png"' } });
    if (series.status === 200) {
      const boundary = /boundary=([^;]+)/.exec(series.headers.get('content-type') ?? '')![1]!;
      const got = await body(series);
      if (got instanceof Buffer) expect(got.includes(Buffer.from(`--${boundary}--`)), 'no closing delimiter').to.equal(false);
      else expect(got).to.be.instanceOf(Error);
    } else {
      expect(series.status).to.equal(500);
      expect(((await series.json()) as { error: { code: string } }).error.code).to.equal('blob_integrity');
    }
    const intact = await fetch(`${base}/instances/${a!.sopInstanceUid}/rendered`, { headers: { ...bearer(token), accept: 'image/png' } });
    expect(intact.status).to.equal(200);
    expect(intact.headers.get('content-type')).to.equal('image/png');
  });

  it('a damaged encapsulated PDF: WADO-RS rendered and WADO-URI answer 500 blob_integrity, never the document', async () => {
    const { pdf } = await ingestCorpusFiles(node, { pdf: 'non-image/sample-pdf.dcm' });
    const file = blobPath(pdf.storage_key);
    const url = `${baseUrl(node)}/dicom-web/studies/${pdf.study_instance_uid}/series/${pdf.series_instance_uid}/instances/${pdf.sop_instance_uid}/rendered`;
    const uri = `${baseUrl(node)}/wado?${new URLSearchParams({ requestType: 'WADO', studyUID: pdf.study_instance_uid, seriesUID: pdf.series_instance_uid, objectUID: pdf.sop_instance_uid, contentType: 'application/pdf' })}`;
    const good = await fetch(url, { headers: { ...bearer(token), accept: 'application/pdf' } });
    expect(good.status).to.equal(200);
    const doc = Buffer.from(await good.arrayBuffer());
    expect(doc.subarray(0, 5).toString('latin1')).to.equal('%PDF-');
    const bytes = await fsp.readFile(file);
    const at = bytes.indexOf(doc.subarray(0, 64)) + 32; // a byte inside the document itself
    bytes[at] ^= 0xff;
    await fsp.writeFile(file, bytes);
    for (const u of [url, uri]) {
      const res = await fetch(u, { headers: { ...bearer(token), accept: 'application/pdf' } });
      expect(res.status, u).to.equal(500);
      expect(((await res.json()) as { error: { code: string } }).error.code).to.equal('blob_integrity');
    }
    expect(await body(wadoUri(a))).to.be.instanceOf(Buffer);
  });

  it('an instance indexed without a digest gets it on its first complete read', async () => {
    await node.db('instances').where({ sop_instance_uid: c!.sopInstanceUid }).update({ sha256: null });
    const r = await row(c!.sopInstanceUid);
    expect(r.sha256).to.equal(null);
    const got = await body(wadoUri(c));
    expect(got).to.be.instanceOf(Buffer);
    const filled = await until('digest recorded', async () => (await row(c!.sopInstanceUid)).sha256 ?? undefined, 10_000);
    expect(filled).to.equal(sha(got as Buffer));
  });
});

describe('Per-object SHA-256 on study retrieves: WADO-RS multipart, C-MOVE, C-GET', function () {
  this.timeout(300_000);
  let node: TestNode;
  let token: string;
  let scp: ReferenceScp;
  let scpDir: string;
  // Three studies of five slices: one damaged, one with a blob missing, one intact.
  const damaged = makeCtSeries({ seed: 'integrity-damaged', slices: 5, size: 256 });
  const missing = makeCtSeries({ seed: 'integrity-missing', slices: 5, size: 256 });
  const intact = makeCtSeries({ seed: 'integrity-intact', slices: 5, size: 256 });
  // Small slices, the first damaged: the failure comes while the audit row is being written,
  // before Koa pipes the body (an uncaught exception before multipart-writer held it).
  const damagedFirst = makeCtSeries({ seed: 'integrity-damaged-first', slices: 3, size: 16 });
  const studyOf = (files: typeof damaged) => files[0]!.studyInstanceUid;
  const uncaught: unknown[] = [];
  let damagedSop = '';
  const onUncaught = (err: unknown) => uncaught.push(err);
  const blobFile = async (sop: string) => {
    const r = (await node.db('instances').where({ sop_instance_uid: sop }).first()) as { storage_key: string };
    return path.join(node.config.storage.type === 'local' ? node.config.storage.root : '', r.storage_key);
  };
  const retrieveStudy = (study: string) =>
    fetch(`${baseUrl(node)}/dicom-web/studies/${study}`, {
      headers: { ...bearer(token), accept: 'multipart/related; type="application/dicom"' },
    });
  /** The SOP Instance UIDs in the order the study retrieve sends them (from an intact retrieve). */
  const partOrder = async (study: string): Promise<string[]> => {
    const res = await retrieveStudy(study);
    expect(res.status).to.equal(200);
    const { parts } = await readMultipartResponse(res);
    return parts.map((p) => p.headers['content-location']!.split('/').at(-1)!);
  };
  /** What the client got: the status (undefined: cut before it), the bytes read, whether the body errored. */
  const rawRetrieve = async (study: string) => {
    let res: Response;
    try {
      res = await retrieveStudy(study);
    } catch (err) {
      return { status: undefined, bytes: Buffer.alloc(0), boundary: undefined, error: err as Error };
    }
    const boundary = /boundary=([^;]+)/.exec(res.headers.get('content-type') ?? '')?.[1];
    const chunks: Buffer[] = [];
    let error: Error | undefined;
    try {
      for await (const c of res.body!) chunks.push(Buffer.from(c));
    } catch (err) {
      error = err as Error;
    }
    return { status: res.status, bytes: Buffer.concat(chunks), boundary, error };
  };
  /** A study retrieve that fails midway: cut off (an error, no closing delimiter), never a complete multipart. */
  const expectCutOff = async (study: string) => {
    const got = await rawRetrieve(study);
    expect(got.error, 'the transfer must fail visibly').to.be.instanceOf(Error);
    if (got.status !== undefined) {
      expect(got.status).to.equal(200);
      expect(got.boundary).to.be.a('string');
      expect(got.bytes.includes(Buffer.from(`--${got.boundary}--`)), 'no closing delimiter').to.equal(false);
    }
  };
  const expectIntactRetrieve = async () => {
    const res = await retrieveStudy(studyOf(intact));
    expect(res.status).to.equal(200);
    const { parts } = await readMultipartResponse(res);
    expect(parts).to.have.length(intact.length);
    for (const part of parts) {
      const sop = part.headers['content-location']!.split('/').at(-1)!;
      const r = (await node.db('instances').where({ sop_instance_uid: sop }).first()) as { sha256: string };
      expect(sha(part.body)).to.equal(r.sha256);
    }
  };

  before(async () => {
    process.on('uncaughtException', onUncaught);
    node = await startTestNode();
    token = await tokenFor(node, 'viewer');
    await ingestFiles(node, [...damaged, ...missing, ...intact, ...damagedFirst]);
    scpDir = await tempDir('integrity-scp');
    scp = await startStorescp(await freePort(), scpDir, { aeTitle: 'INTEGSCP' });
    const admin = await tokenFor(node, 'admin');
    const res = await fetch(`${baseUrl(node)}/api/nodes`, {
      method: 'POST',
      headers: { ...bearer(admin), 'content-type': 'application/json' },
      body: JSON.stringify({ ae_title: 'INTEGSCP', host: '127.0.0.1', port: scp.port }),
    });
    expect(res.status).to.equal(201);
    // Third in the order sent: the status line and two whole parts are out when it fails.
    damagedSop = (await partOrder(studyOf(damaged)))[2]!;
    const flip = await blobFile(damagedSop);
    const bytes = await fsp.readFile(flip);
    bytes[bytes.length - 10] ^= 0xff;
    await fsp.writeFile(flip, bytes);
    await fsp.rm(await blobFile((await partOrder(studyOf(missing)))[2]!));
    const first = await blobFile((await partOrder(studyOf(damagedFirst)))[0]!);
    const small = await fsp.readFile(first);
    small[small.length - 10] ^= 0xff;
    await fsp.writeFile(first, small);
  });
  after(async () => {
    process.off('uncaughtException', onUncaught);
    await scp?.stop();
    await node?.cleanup();
    if (scpDir) await fsp.rm(scpDir, { recursive: true, force: true });
  });
  afterEach(() => expect(uncaught, 'no uncaught exception in the node').to.deep.equal([]));

  it('a damaged instance mid-study: the WADO-RS study download is cut off, audited, and the node keeps serving', async () => {
    for (let k = 0; k < 3; k++) await expectCutOff(studyOf(damaged));
    await expectIntactRetrieve();
    const failures = await until(
      'failure audited',
      async () => {
        const rows = (await auditRows(node, 'dicomweb.retrieve')).filter(
          (r) => r.outcome === 'failure' && r.study_instance_uid === studyOf(damaged),
        );
        return rows.length >= 3 ? rows : undefined;
      },
      10_000,
    );
    expect(JSON.parse(failures[0]!.details!)).to.include({ failedMidway: 'blob_integrity' });
    expect(failures[0]!.status).to.equal(500);
  });

  it('the first instance damaged: the retrieve fails visibly (no uncaught exception), the node keeps serving', async () => {
    for (let k = 0; k < 5; k++) await expectCutOff(studyOf(damagedFirst));
    await expectIntactRetrieve();
  });

  it('a blob missing mid-study: the same, and the node keeps serving', async () => {
    for (let k = 0; k < 3; k++) await expectCutOff(studyOf(missing));
    await expectIntactRetrieve();
    const failures = await until(
      'failure audited',
      async () => {
        const rows = (await auditRows(node, 'dicomweb.retrieve')).filter(
          (r) => r.outcome === 'failure' && r.study_instance_uid === studyOf(missing),
        );
        return rows.length ? rows : undefined;
      },
      10_000,
    );
    expect(JSON.parse(failures[0]!.details!)).to.include({ failedMidway: 'blob_missing' });
  });

  it('C-MOVE of a study with a damaged instance: that sub-operation fails, the others are sent, the counts say so', async () => {
    const bad = (await partOrder(studyOf(damaged)).catch(() => undefined)) ?? [];
    expect(bad, 'the damaged study cannot be read whole any more').to.deep.equal([]);
    const r = await movescuStudy(node.dicomPort, studyOf(damaged), 'INTEGSCP');
    // The final response (after the pending ones): 0xB000, the counts, the failed instance and why.
    const final = r.output.slice(r.output.indexOf('Received Final Move Response'));
    expect(final).to.match(/DIMSE Status\s*:\s*0xb000/);
    expect(final).to.match(/Completed Suboperations\s*:\s*4/);
    expect(final).to.match(/Failed Suboperations\s*:\s*1/);
    expect(final).to.match(/Warning Suboperations\s*:\s*0/);
    expect(final).to.match(/\(0000,0902\) LO \[[^\]]*SHA-256/);
    expect(final).to.match(new RegExp(`\\(0008,0058\\) UI \\[${damagedSop.replace(/\./g, '\\.')}\\]`));
    const received = fs.readdirSync(scpDir);
    expect(received).to.have.length(4);
    expect(received.some((f) => f.includes(damagedSop))).to.equal(false);
  });

  it('C-MOVE of a study with a blob missing: that sub-operation fails as a processing failure of the node, the others are sent', async () => {
    const before = new Set(fs.readdirSync(scpDir));
    const r = await movescuStudy(node.dicomPort, studyOf(missing), 'INTEGSCP');
    const final = r.output.slice(r.output.indexOf('Received Final Move Response'));
    expect(final).to.match(/DIMSE Status\s*:\s*0xb000/);
    expect(final).to.match(/Completed Suboperations\s*:\s*4/);
    expect(final).to.match(/Failed Suboperations\s*:\s*1/);
    // 0x0110 with this comment, as a damaged blob: not 0xC000 "cannot understand" naming a storage key.
    expect(final).to.match(/\(0000,0902\) LO \[stored object is missing from the storage/);
    expect(fs.readdirSync(scpDir).filter((f) => !before.has(f))).to.have.length(4);
  });

  it('C-GET of a study with a damaged instance: that sub-operation fails, the others arrive, the counts say so', async () => {
    const out = await tempDir('integrity-getscu');
    try {
      const r = await getscuStudy(node.dicomPort, studyOf(damaged), out);
      expect(r.output).to.match(/Number of Completed Suboperations\s*:\s*4/);
      expect(r.output).to.match(/Number of Failed Suboperations\s*:\s*1/);
      const received = fs.readdirSync(out);
      expect(received).to.have.length(4);
      expect(received.some((f) => f.includes(damagedSop))).to.equal(false);
    } finally {
      await fsp.rm(out, { recursive: true, force: true });
    }
  });
});
