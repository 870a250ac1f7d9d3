import { expect } from 'chai';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import dcmjs, { type DicomJsonElement } from 'dcmjs';
import { makeCrImage, type GeneratedFile } from '../fixtures/generate.js';
import { countInstances, findInstance } from '../src/catalog/catalog.js';
import { auditRows } from './helpers/api.js';
import { corpusRoot } from './helpers/corpus.js';
import { echoscu, runTool, storescu } from './helpers/dcmtk.js';
import { baseUrl, bearer, tokenFor } from './helpers/http.js';
import { startTestNode, tempDir, type TestNode } from './helpers/node.js';
import { items, multipartBody, rawPost, stowContentType, value } from './helpers/stow.js';

/**
 * Issue 13 item 1, "one image stops the node": an instance claiming Rows × Columns far beyond the
 * pixel data it carries. Ingest refuses it (C-STORE 0xA900, STOW-RS failure, with the numbers);
 * one stored before the check (planted into storage under a valid instance's index row) is
 * answered 422 by every rendering resource, quickly, while C-ECHO and /healthz keep answering,
 * the event loop never stalls and memory stays bounded; a rendering that overruns
 * RENDER_TIMEOUT_MS answers 500 instead of hanging.
 */

dcmjs.log.setLevel('silent');

type Changes = Record<string, DicomJsonElement | null>;

/** The Part 10 bytes with data set elements set (or removed), re-encoded by dcmjs. */
function withElements(bytes: Buffer, changes: Changes): Buffer {
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer;
  const file = dcmjs.data.DicomMessage.readFile(ab);
  for (const [tag, el] of Object.entries(changes)) {
    if (el === null) delete file.dict[tag];
    else file.dict[tag] = el;
  }
  return Buffer.from(file.write());
}

/** An 8×8 CR (128 bytes of pixel data) whose header claims `rows` × `columns` (× frames). */
function claiming(f: GeneratedFile, rows: number, columns: number, frames?: number): Buffer {
  return withElements(f.bytes, {
    '00280010': { vr: 'US', Value: [rows] },
    '00280011': { vr: 'US', Value: [columns] },
    ...(frames ? { '00280008': { vr: 'IS', Value: [String(frames)] } } : {}),
  });
}

/** A valid CR of size × size with 16-bit pixel data (pattern, not noise: fast to build). */
function bigCr(size: number): GeneratedFile {
  const f = makeCrImage({ size: 8 })[0]!;
  const pixels = Buffer.alloc(size * size * 2);
  for (let i = 0; i < size * size; i++) pixels.writeUInt16LE((i * 7) & 0x0fff, i * 2);
  const bytes = withElements(f.bytes, {
    '00280010': { vr: 'US', Value: [size] },
    '00280011': { vr: 'US', Value: [size] },
    '7FE00010': { vr: 'OW', Value: [pixels.buffer.slice(pixels.byteOffset, pixels.byteOffset + pixels.length)] },
  });
  return { ...f, bytes };
}

/** The reason the node gave for the last STOW-RS failure (audit details; not in the DICOM response). */
function stowFailureMessage(rows: Array<{ details: string | null }>): string {
  const details = JSON.parse(rows.at(-1)?.details ?? '{}') as { failures?: Array<{ message: string }> };
  return details.failures?.[0]?.message ?? '';
}

/** The DICOMweb URL of an instance. */
function instanceUrl(node: TestNode, f: GeneratedFile): string {
  return `${baseUrl(node)}/dicom-web/studies/${f.studyInstanceUid}/series/${f.seriesInstanceUid}/instances/${f.sopInstanceUid}`;
}

/** Samples the process's RSS while `work` runs: the peak growth in MB. */
async function rssGrowth<T>(work: () => Promise<T>): Promise<{ result: T; growthMb: number }> {
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  try {
    const result = await work();
    peak = Math.max(peak, process.memoryUsage().rss);
    return { result, growthMb: (peak - baseline) / 1e6 };
  } finally {
    clearInterval(timer);
  }
}

describe('hostile pixel geometry (issue 13 item 1)', function () {
  this.timeout(120_000);
  let node: TestNode;
  let token: string;
  let work: string;

  before(async () => {
    node = await startTestNode();
    token = await tokenFor(node, 'admin');
    work = await tempDir('hostile');
  });
  after(async () => {
    await node?.cleanup();
    if (work) await fsp.rm(work, { recursive: true, force: true });
  });

  const stow = (bytes: Buffer) =>
    rawPost(`${baseUrl(node)}/dicom-web/studies`, { ...bearer(token), 'content-type': stowContentType() }, multipartBody([bytes]));

  describe('ingest refuses it', () => {
    const cases: Array<[string, (f: GeneratedFile) => Buffer, RegExp]> = [
      [
        'Rows = Columns = 65535 over 128 bytes',
        (f) => claiming(f, 65535, 65535),
        /^frame of 65535x65535 pixels over MAX_FRAME_PIXELS \(268435456\)/,
      ],
      ['Rows = Columns = 46341 (2^31 pixels)', (f) => claiming(f, 46341, 46341), /^frame of 46341x46341 pixels over MAX_FRAME_PIXELS/],
      [
        'Rows = Columns = 4096 over 128 bytes (under the ceiling)',
        (f) => claiming(f, 4096, 4096),
        /^pixel data too short: 128 bytes of PixelData for 4096x4096 x 1 sample\(s\) x 16 bits x 1 frame\(s\) = 33554432 bytes$/,
      ],
      ['10000 frames of 8 x 8 over one', (f) => claiming(f, 8, 8, 10000), /^pixel data too short: 128 bytes .* x 10000 frame.*= 1280000/],
      ['Rows = 0', (f) => claiming(f, 0, 8), /^pixel data with Rows 0 x Columns 8 \(both must be above 0\)$/],
      ['no Columns', (f) => withElements(f.bytes, { '00280011': null }), /^pixel data without Rows \(0028,0010\) or Columns/],
      ['no Bits Allocated', (f) => withElements(f.bytes, { '00280100': null }), /^native pixel data without Bits Allocated \(0028,0100\)$/],
    ];
    for (const [name, make, reason] of cases) {
      it(`C-STORE (storescu) and STOW-RS: ${name} → 0xA900 with the reason, nothing indexed`, async () => {
        const f = makeCrImage({ size: 8 })[0]!;
        const bytes = make(f);
        const file = path.join(work, `${f.sopInstanceUid}.dcm`);
        await fsp.writeFile(file, bytes);
        const before = await countInstances(node.db);

        const r = await storescu(node.dicomPort, [file], ['-d']);
        expect(r.output).to.match(/DIMSE Status\s*: 0xa900/);
        const comment = /\(0000,0902\) LO \[(.*)\]/.exec(r.output)?.[1];

        const res = await stow(bytes);
        expect(res.status, res.text).to.equal(409);
        const failed = items(res.json(), '00081198');
        expect(failed).to.have.length(1);
        expect(value<number>(failed[0]!, '00081197')).to.equal(0xa900);
        const message = stowFailureMessage(await auditRows(node, 'dicomweb.stow'));
        expect(message).to.match(reason);
        // The ErrorComment is the same reason, cut to 64 characters.
        expect(comment, r.output).to.be.a('string');
        expect(message.startsWith(comment!.replace(/\.\.\.$/, '')), `${comment} vs ${message}`).to.equal(true);

        expect(await findInstance(node.db, f.sopInstanceUid)).to.equal(undefined);
        expect(await countInstances(node.db)).to.equal(before);
      });
    }

    for (const [name, rel, modification, reason] of [
      [
        'an RLE multi-frame claiming 5 frames over 2 fragments',
        'multiframe/SC_rgb_rle_2frame.dcm',
        '(0028,0008)=5',
        /^encapsulated pixel data has 2 fragment\(s\) for 5 frame\(s\)$/,
      ],
      [
        'a parametric map claiming 1024 rows of Float Pixel Data over 64 KB',
        'non-image/parametric_map_float.dcm',
        '(0028,0010)=1024',
        /^pixel data too short: 65536 bytes of FloatPixelData for 128x1024 x 1 sample\(s\) x 32 bits x 1 frame\(s\) = 524288 bytes$/,
      ],
    ] as const) {
      it(`STOW-RS: ${name} (corpus file changed by dcmodify) → 0xA900 with the reason; the original is stored`, async () => {
        const file = path.join(work, path.basename(rel));
        await fsp.copyFile(path.join(corpusRoot, rel), file);
        await fsp.chmod(file, 0o644);
        const original = await fsp.readFile(file);
        const mod = await runTool('dcmodify', ['-nb', '-m', modification, file]);
        expect(mod.code, mod.output).to.equal(0);
        const res = await stow(await fsp.readFile(file));
        expect(res.status, res.text).to.equal(409);
        expect(value<number>(items(res.json(), '00081198')[0]!, '00081197')).to.equal(0xa900);
        expect(stowFailureMessage(await auditRows(node, 'dicomweb.stow'))).to.match(reason);
        const ok = await stow(original);
        expect(ok.status, ok.text).to.equal(200);
      });
    }

    it('the same 8 × 8 image with its true geometry is stored (the check refuses claims, not images)', async () => {
      const f = makeCrImage({ size: 8 })[0]!;
      const res = await stow(f.bytes);
      expect(res.status, res.text).to.equal(200);
      expect(await findInstance(node.db, f.sopInstanceUid)).to.not.equal(undefined);
    });
  });

  describe('an instance stored before the check', () => {
    const planted: Record<string, GeneratedFile> = {};

    /** A valid instance ingested, then its blob replaced by the hostile bytes (same UIDs) and its digest dropped. */
    async function plant(name: string, hostile: (f: GeneratedFile) => Buffer): Promise<void> {
      const f = makeCrImage({ size: 8 })[0]!;
      await node.ingestor.ingestStream(Readable.from([f.bytes]), { source: 'upload' });
      const row = (await findInstance(node.db, f.sopInstanceUid))!;
      const file = path.join(work, `planted-${name}.dcm`);
      await fsp.writeFile(file, hostile(f));
      await node.storage.putFile(row.storage_key, file, { contentType: 'application/dicom' });
      // Stored before the check, and before the index kept a SHA-256 (migration 028): no digest, so the
      // planted bytes are what the node holds, not damage at rest (that case is test/integrity.test.ts).
      await node.db('instances').where({ sop_instance_uid: f.sopInstanceUid }).update({ sha256: null });
      planted[name] = f;
    }

    before(async () => {
      await plant('huge', (f) => claiming(f, 65535, 65535));
      await plant('short', (f) => claiming(f, 4096, 4096));
    });

    const urls = (f: GeneratedFile) => {
      const instance = instanceUrl(node, f);
      const uids = `studyUID=${f.studyInstanceUid}&seriesUID=${f.seriesInstanceUid}&objectUID=${f.sopInstanceUid}`;
      const wado = `${baseUrl(node)}/wado?requestType=WADO&${uids}&contentType=image/jpeg`;
      return [`${instance}/rendered`, `${instance}/frames/1/rendered`, `${instance}/thumbnail`, wado];
    };

    for (const [name, reason] of [
      ['huge', /frame of 65535x65535 pixels over MAX_FRAME_PIXELS/],
      ['short', /pixel data too short: 128 bytes of PixelData for 4096x4096 .* = 33554432 bytes/],
    ] as const) {
      it(`${name}: /rendered, /frames/1/rendered, /thumbnail and WADO-URI answer 422 with the reason, quickly`, async () => {
        for (const url of urls(planted[name]!)) {
          const started = Date.now();
          const res = await fetch(url, { headers: bearer(token) });
          const body = (await res.json()) as { error: { code: string; message: string } };
          expect(res.status, `${url}: ${JSON.stringify(body)}`).to.equal(422);
          expect(body.error.code).to.equal('invalid_pixel_data');
          expect(body.error.message).to.match(reason);
          expect(Date.now() - started, url).to.be.below(5000);
        }
      });
    }

    it('while they are asked for, C-ECHO and /healthz keep answering, the event loop never stalls, RSS stays bounded', async () => {
      const loop = monitorEventLoopDelay({ resolution: 10 });
      loop.enable();
      const { result, growthMb } = await rssGrowth(async () => {
        const all = [...urls(planted.huge!), ...urls(planted.short!)];
        const renders = Array.from({ length: 3 }, () =>
          Promise.all(all.map((u) => fetch(u, { headers: bearer(token) }).then((r) => r.status))),
        );
        const probes = (async () => {
          const latencies: number[] = [];
          for (let i = 0; i < 5; i++) {
            const t0 = Date.now();
            const [echo, health] = await Promise.all([echoscu(node.dicomPort), fetch(`${baseUrl(node)}/healthz`)]);
            expect(echo.code, echo.output).to.equal(0);
            expect(health.status).to.equal(200);
            await health.arrayBuffer();
            latencies.push(Date.now() - t0);
          }
          return latencies;
        })();
        return { statuses: (await Promise.all(renders)).flat(), latencies: await probes };
      });
      loop.disable();
      expect(result.statuses).to.have.length(24);
      expect(new Set(result.statuses)).to.deep.equal(new Set([422]));
      expect(Math.max(...result.latencies), `C-ECHO + /healthz latencies ${result.latencies.join(', ')} ms`).to.be.below(3000);
      expect(loop.max / 1e6, 'longest event loop stall (ms)').to.be.below(1000);
      expect(growthMb, 'RSS growth (MB)').to.be.below(400);
    });

    it('a series rendered leaves the hostile instance out instead of failing', async () => {
      const f = planted.short!;
      const good = makeCrImage({ size: 8, studyInstanceUid: f.studyInstanceUid, seriesInstanceUid: f.seriesInstanceUid, seed: 'good' })[0]!;
      await node.ingestor.ingestStream(Readable.from([good.bytes]), { source: 'upload' });
      const series = `${baseUrl(node)}/dicom-web/studies/${f.studyInstanceUid}/series/${f.seriesInstanceUid}`;
      const rendered = await fetch(`${series}/rendered`, { headers: { ...bearer(token), accept: 'multipart/related; type="image/png"' } });
      expect(rendered.status).to.equal(200);
      const body = Buffer.from(await rendered.arrayBuffer()).toString('latin1');
      expect(body.match(/Content-Type: image\/png/g)).to.have.length(1);
      expect(body).to.include(`/instances/${good.sopInstanceUid}/rendered`);
      expect(body).to.not.include(`/instances/${f.sopInstanceUid}/rendered`);
    });
  });
});

describe('a rendering that overruns RENDER_TIMEOUT_MS', function () {
  this.timeout(120_000);
  let node: TestNode;
  let token: string;

  before(async () => {
    node = await startTestNode({ RENDER_TIMEOUT_MS: '100', RENDER_WORKERS: '1' });
    token = await tokenFor(node, 'admin');
  });
  after(async () => {
    await node?.cleanup();
  });

  it('answers 500 naming the limit, while /healthz keeps answering', async () => {
    const f = bigCr(4096);
    await node.ingestor.ingestStream(Readable.from([f.bytes]), { source: 'upload' });
    const url = `${instanceUrl(node, f)}/rendered`;
    const render = fetch(url, { headers: bearer(token) });
    const health = await fetch(`${baseUrl(node)}/healthz`);
    expect(health.status).to.equal(200);
    const res = await render;
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(res.status, JSON.stringify(body)).to.equal(500);
    expect(body.error.code).to.equal('render_failed');
    expect(body.error.message).to.match(/took longer than 100 ms \(RENDER_TIMEOUT_MS\)/);
  });
});
