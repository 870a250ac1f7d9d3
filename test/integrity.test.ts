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
import { makeCtSeries } from '../fixtures/generate.js';
import { ingestFiles } from './helpers/api.js';
import { baseUrl, bearer, tokenFor } from './helpers/http.js';
import { startTestNode, type TestNode } from './helpers/node.js';
import { until } from './helpers/until.js';

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
