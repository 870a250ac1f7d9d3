import { expect } from 'chai';
import fsp from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { findInstance } from '../src/catalog/catalog.js';
import { MultipartRelatedReader, parseMediaType } from '../dicomweb/multipart.js';
import { readAll } from '../storage/read-all.js';
import type { ByteRange } from '../storage/types.js';
import { corpusRoot } from './helpers/corpus.js';
import { baseUrl, bearer, tokenFor } from './helpers/http.js';
import { startTestNode, type TestNode } from './helpers/node.js';

/**
 * The mechanism of the fast WADO-RS paths (issue 20), watched at the storage interface:
 * - a whole-study retrieve as stored is the stored files, one part each, each streamed from its
 *   own storage read (no ranges, no whole-object reads), at most the part being written and the
 *   one opened ahead open at any moment, and nothing read ahead of a client that stops reading;
 * - frames come from the frame index cached per stored instance: after the first request, one
 *   ranged read per frame (no stat, no header walk), and an instance stored again is walked anew.
 */

const CT = path.join(corpusRoot, 'ct-series-chest-99');

interface StorageCall {
  key: string;
  range?: ByteRange;
}

describe('WADO-RS streaming from storage (issue 20)', function () {
  let node: TestNode;
  let token: string;
  let study: string;
  const files = new Map<string, Buffer>(); // SOP Instance UID → the file as sent
  const calls: StorageCall[] = [];
  const stats: string[] = [];
  let openNow = 0;
  let openMax = 0;

  before(async () => {
    // No metadata prebuild: its reads of the same blobs would be counted with the routes'.
    node = await startTestNode({ METADATA_PREBUILD_MS: '0' });
    token = await tokenFor(node, 'radiologist');
    for (const f of (await fsp.readdir(CT)).filter((n) => n.endsWith('.dcm')).sort()) {
      const r = await node.ingestor.ingestFile(path.join(CT, f), false, { source: 'import' });
      files.set(r.sopInstanceUid, await fsp.readFile(path.join(CT, f)));
      study ??= (await findInstance(node.db, r.sopInstanceUid))!.study_instance_uid;
    }
    // Watch every read the routes make through this node's store.
    const storage = node.storage;
    const get = storage.get.bind(storage);
    const stat = storage.stat.bind(storage);
    storage.get = async (key: string, range?: ByteRange): Promise<Readable> => {
      calls.push({ key, range });
      const s = await get(key, range);
      openMax = Math.max(openMax, ++openNow);
      // Done with at its end (its close follows a tick later) or when destroyed.
      let done = false;
      const finished = () => {
        if (!done) openNow--;
        done = true;
      };
      s.once('end', finished);
      s.once('close', finished);
      return s;
    };
    storage.stat = (key: string) => {
      stats.push(key);
      return stat(key);
    };
    // A frame answer is read straight into its buffer by a positioned read, a storage read too.
    const readRange = storage.readRange!.bind(storage);
    storage.readRange = (key, range, into) => {
      calls.push({ key, range });
      return readRange(key, range, into);
    };
  });
  after(async () => {
    await node?.cleanup();
  });

  const reset = () => {
    calls.length = 0;
    stats.length = 0;
    openMax = 0;
  };

  it('a study retrieve is the stored files, one streamed storage read per part, at most one opened ahead', async () => {
    reset();
    const res = await fetch(`${baseUrl(node)}/dicom-web/studies/${study}`, {
      headers: { ...bearer(token), accept: 'multipart/related; type="application/dicom"' },
    });
    expect(res.status).to.equal(200);
    const mt = parseMediaType(res.headers.get('content-type') ?? undefined)!;
    const reader = new MultipartRelatedReader(res.body! as unknown as AsyncIterable<Uint8Array>, { boundary: mt.params.boundary! });
    const seen: string[] = [];
    for (let p = await reader.next(); p; p = await reader.next()) {
      const body = await readAll(p.body);
      const sop = /\/instances\/([0-9.]+)$/.exec(p.headers['content-location'] ?? '')![1]!;
      expect(p.headers['content-type']).to.equal('application/dicom; transfer-syntax=1.2.840.10008.1.2.1');
      expect(body.equals(files.get(sop)!), `part for ${sop} is the stored file`).to.equal(true);
      seen.push(sop);
    }
    expect(seen).to.have.length(files.size);
    expect(new Set(seen).size).to.equal(files.size);
    // One whole-object read per instance: no header parse, no ranged re-reads, no stat.
    expect(calls).to.have.length(files.size);
    expect(calls.every((c) => c.range === undefined)).to.equal(true);
    expect(stats).to.deep.equal([]);
    // Streams, not buffers: the part being written and the next one opened ahead, never more.
    expect(openMax).to.be.at.most(2);
  });

  it('a client that stops reading stops the storage reads (backpressure reaches the store)', async () => {
    reset();
    const req = http.get(`${baseUrl(node)}/dicom-web/studies/${study}`, {
      headers: { ...bearer(token), accept: 'multipart/related; type="application/dicom"' },
    });
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => req.on('response', resolve).on('error', reject));
    expect(res.statusCode).to.equal(200);
    // Take one chunk, then stop reading for a while.
    await new Promise<void>((resolve) => res.once('data', () => resolve()));
    res.pause();
    await new Promise((r) => setTimeout(r, 1000));
    const readWhilePaused = calls.length;
    await new Promise((r) => setTimeout(r, 500));
    // Nothing more is opened while the client reads nothing: the socket's buffers (a few MB on
    // loopback) are all that went ahead of it, not the 52 MB study.
    expect(calls.length).to.equal(readWhilePaused);
    expect(readWhilePaused).to.be.lessThan(files.size / 2);
    res.resume();
    let bytes = 0;
    res.on('data', (c: Buffer) => (bytes += c.length));
    await new Promise((resolve) => res.on('end', resolve));
    expect(bytes).to.be.greaterThan(0);
    expect(calls).to.have.length(files.size);
    expect(openMax).to.be.at.most(2);
  });

  it('frames: after the first request of an instance, one ranged storage read per frame (the frame index is cached)', async () => {
    const sops = [...files.keys()].slice(0, 5);
    const frame = async (sop: string) => {
      const row = (await findInstance(node.db, sop))!;
      const res = await fetch(`${baseUrl(node)}/dicom-web/studies/${study}/series/${row.series_instance_uid}/instances/${sop}/frames/1`, {
        headers: { ...bearer(token), accept: 'multipart/related; type="application/octet-stream"; transfer-syntax=*' },
      });
      expect(res.status).to.equal(200);
      await res.arrayBuffer();
    };
    for (const sop of sops) await frame(sop); // first request of each: the header is walked
    reset();
    for (const sop of sops) await frame(sop);
    expect(stats, 'no stat once the index is cached').to.deep.equal([]);
    expect(calls).to.have.length(sops.length);
    for (const c of calls) {
      expect(c.range).to.not.equal(undefined);
      // 512 × 512 × 16 bits: the frame and nothing else.
      expect(c.range!.end! - c.range!.start + 1).to.equal(512 * 512 * 2);
    }
  });

  it('frames: an instance stored again is walked anew (the cache is keyed by the stored version)', async () => {
    const sop = [...files.keys()][0]!;
    const row = (await findInstance(node.db, sop))!;
    const url = `${baseUrl(node)}/dicom-web/studies/${study}/series/${row.series_instance_uid}/instances/${sop}/frames/1`;
    const accept = 'multipart/related; type="application/octet-stream"; transfer-syntax=*';
    await (await fetch(url, { headers: { ...bearer(token), accept } })).arrayBuffer();
    const first = path.join(CT, (await fsp.readdir(CT)).filter((n) => n.endsWith('.dcm')).sort()[0]!);
    await new Promise((r) => setTimeout(r, 5)); // a later stored_at
    await node.ingestor.ingestFile(first, false, { source: 'import' });
    reset();
    const res = await fetch(url, { headers: { ...bearer(token), accept } });
    expect(res.status).to.equal(200);
    await res.arrayBuffer();
    expect(stats, 'the new version is stat-ed and walked').to.have.length(1);
  });
});
