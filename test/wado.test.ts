import { expect } from 'chai';
import fsp from 'node:fs/promises';
import path from 'node:path';
import dicomweb from 'dicomweb-client';
import XHR2 from 'xhr2';
import { findInstance, getStudySummary } from '../src/catalog/catalog.js';
import { parseAccept, negotiateRetrieve } from '../dicomweb/accept.js';
import { whyNotTranscodable } from '../src/dicom/transcode-syntaxes.js';
import { corpusDir } from './helpers/corpus.js';
import { runTool } from './helpers/dcmtk.js';
import { baseUrl, bearer, tokenFor } from './helpers/http.js';
import { startTestNode, tempDir, type TestNode } from './helpers/node.js';
import { peakLiveGrowth } from './helpers/memory.js';
import { onBothDatabases } from './helpers/postgres.js';
import { readMultipartResponse, streamToBuffer } from './helpers/wado.js';

/**
 * WADO-RS (PS3.18 §10.4) on a real node: retrieve of study/series/instance as multipart/related
 * streamed from storage, Accept negotiation, metadata as DICOM JSON (checked against DCMTK's
 * dcm2json) with its per-series cache, DICOMweb DELETE, access control and audit.
 */

const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const DICOM_ACCEPT = 'multipart/related; type="application/dicom"';

type Json = Record<string, { vr: string; Value?: unknown[]; InlineBinary?: string; BulkDataURI?: string }>;

describe('WADO-RS Accept negotiation', () => {
  const stored = new Set([EXPLICIT_LE]);
  it('orders ranges by q and keeps commas inside quotes', () => {
    const r = parseAccept('application/json;q=0.5, multipart/related; type="application/dicom"; transfer-syntax=*');
    expect(r.map((x) => x.type)).to.deep.equal(['multipart/related', 'application/json']);
    expect(r[0]!.params).to.deep.equal({ type: 'application/dicom', 'transfer-syntax': '*' });
  });
  it('serves as stored for */*, no Accept, quoted or unquoted type, transfer-syntax=* or the stored one', () => {
    for (const h of [
      undefined,
      '*/*',
      'multipart/related',
      'multipart/related; type=application/dicom',
      'multipart/related; type="application/dicom"; transfer-syntax=*',
      `multipart/related; type=application/dicom; transfer-syntax=${EXPLICIT_LE}`,
      'image/jpeg, multipart/related; type="application/dicom"; q=0.5',
    ]) {
      expect(negotiateRetrieve(h, stored, whyNotTranscodable), String(h)).to.deep.include({ ok: true });
    }
  });
  it('transcodes to uncompressed, lossless and the three lossy targets, never to JPEG Extended; refuses bulk data types', () => {
    const ask = (ts: string, from = stored) =>
      negotiateRetrieve(`multipart/related; type="application/dicom"; transfer-syntax=${ts}`, from, whyNotTranscodable);
    expect(ask('1.2.840.10008.1.2')).to.deep.equal({ ok: true, transferSyntax: '1.2.840.10008.1.2' });
    expect(ask('1.2.840.10008.1.2.4.80')).to.deep.equal({ ok: true, transferSyntax: '1.2.840.10008.1.2.4.80' });
    expect(ask(EXPLICIT_LE, new Set([EXPLICIT_LE, '1.2.840.10008.1.2.4.90', '1.2.840.10008.1.2.5']))).to.deep.include({ ok: true });
    // Issue 17: lossy targets are offered when named.
    for (const ts of ['1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.81', '1.2.840.10008.1.2.4.91']) {
      expect(ask(ts)).to.deep.equal({ ok: true, transferSyntax: ts });
    }
    const lossy = ask('1.2.840.10008.1.2.4.51');
    expect(lossy.ok).to.equal(false);
    expect(!lossy.ok && lossy.reasons[0]).to.match(/not a syntax this node encodes to/);
    const undecodable = ask(EXPLICIT_LE, new Set([EXPLICIT_LE, '1.2.840.10008.1.2.4.51']));
    expect(!undecodable.ok && undecodable.reasons[0]).to.match(/1\.2\.840\.10008\.1\.2\.4\.51 cannot be decoded/);
    expect(ask('1.2.840.10008.1.2.4.51', new Set(['1.2.840.10008.1.2.4.51']))).to.deep.include({ ok: true });
    expect(
      negotiateRetrieve('multipart/related; type=application/octet-stream; transfer-syntax=*', stored, whyNotTranscodable).ok,
    ).to.equal(false);
    expect(negotiateRetrieve('application/dicom+json', stored, whyNotTranscodable).ok).to.equal(false);
  });
});

/** Retrieve, metadata and delete against the embedded index and a real PostgreSQL. */
function describeWado(name: string, envFactory: () => Promise<Record<string, string>>): void {
  describe(`WADO-RS (${name})`, function () {
    this.timeout(120_000);
    let node: TestNode;
    let url: string;
    let token: string;
    let study: string;
    let series: string;
    const ct = corpusDir('ct-series-chest-99');

    before(async () => {
      node = await startTestNode(await envFactory());
      url = baseUrl(node);
      token = await tokenFor(node, 'viewer');
      for (const e of ct) await node.ingestor.ingestFile(e.absPath, false, { source: 'import' });
      const first = (await node
        .db('instances as i')
        .join('series as se', 'se.id', 'i.series_pk')
        .join('studies as st', 'st.id', 'se.study_pk')
        .select('st.study_instance_uid', 'se.series_instance_uid')
        .first()) as { study_instance_uid: string; series_instance_uid: string };
      study = first.study_instance_uid;
      series = first.series_instance_uid;
    });
    after(async () => {
      await node?.cleanup();
    });

    const get = (p: string, headers: Record<string, string> = {}) =>
      fetch(`${url}/dicom-web${p}`, { headers: { ...bearer(token), ...headers } });
    const sopOf = async (n: number) => {
      const rows = (await node.db('instances').select('sop_instance_uid').orderBy('id')) as Array<{ sop_instance_uid: string }>;
      return rows[n]!.sop_instance_uid;
    };

    it('retrieves the 99-slice study as multipart/related, each part byte-identical to its blob', async () => {
      const res = await get(`/studies/${study}`, { accept: `${DICOM_ACCEPT}; transfer-syntax=*` });
      expect(res.status).to.equal(200);
      const { rootType, parts } = await readMultipartResponse(res);
      expect(rootType).to.equal('application/dicom');
      expect(parts).to.have.length(99);
      const seen = new Set<string>();
      for (const part of parts) {
        expect(part.headers['content-type']).to.equal(`application/dicom; transfer-syntax=${EXPLICIT_LE}`);
        const loc = part.headers['content-location']!;
        expect(loc.startsWith(`${url}/dicom-web/studies/${study}/series/${series}/instances/`), loc).to.equal(true);
        const sop = loc.split('/instances/')[1]!;
        seen.add(sop);
        const row = await findInstance(node.db, sop);
        const blob = await streamToBuffer(await node.storage.get(row!.storage_key));
        expect(part.body.equals(blob), sop).to.equal(true);
      }
      expect(seen.size).to.equal(99);
      await node.audit.flush();
      const audit = (await node.db('audit_logs').where({ action: 'dicomweb.retrieve' }).orderBy('id', 'desc').first()) as {
        status: number;
        resource_type: string;
        study_instance_uid: string;
        details: string;
      };
      expect(audit).to.include({ status: 200, resource_type: 'study', study_instance_uid: study });
      expect(JSON.parse(audit.details)).to.include({ level: 'study', instances: 99 });
    });

    it('retrieves a series and an instance; Accept quoted/unquoted, */*, none, the stored syntax', async () => {
      const sop = await sopOf(10);
      const row = await findInstance(node.db, sop);
      const blob = await streamToBuffer(await node.storage.get(row!.storage_key));
      for (const accept of [
        undefined,
        '*/*',
        'multipart/related; type=application/dicom',
        'multipart/related; type="application/dicom"',
        `multipart/related; type=application/dicom; transfer-syntax=${EXPLICIT_LE}`,
      ]) {
        const res = await get(`/studies/${study}/series/${series}/instances/${sop}`, accept ? { accept } : {});
        expect(res.status, String(accept)).to.equal(200);
        const { parts } = await readMultipartResponse(res);
        expect(parts).to.have.length(1);
        expect(parts[0]!.body.equals(blob)).to.equal(true);
        expect(parts[0]!.headers['content-type']).to.equal(`application/dicom; transfer-syntax=${EXPLICIT_LE}`);
      }
      const s = await readMultipartResponse(await get(`/studies/${study}/series/${series}`));
      expect(s.parts).to.have.length(99);
    });

    it('answers 406 for a transfer syntax it would have to transcode to, 404 for unknown, 400 for malformed UIDs, 401 without a token', async () => {
      const sop = await sopOf(0);
      const r406 = await get(`/studies/${study}`, { accept: `${DICOM_ACCEPT}; transfer-syntax=1.2.840.10008.1.2.4.51` });
      expect(r406.status).to.equal(406);
      expect(((await r406.json()) as { error: { message: string } }).error.message).to.match(/not a syntax this node encodes to/);
      expect(
        (
          await get(`/studies/${study}/series/${series}/instances/${sop}`, {
            accept: 'multipart/related; type=application/octet-stream; transfer-syntax=*',
          })
        ).status,
      ).to.equal(406);
      expect((await get('/studies/1.2.3.4.5')).status).to.equal(404);
      expect((await get(`/studies/${study}/series/1.2.3.4.5`)).status).to.equal(404);
      expect((await get(`/studies/${study}/series/${series}/instances/1.2.3`)).status).to.equal(404);
      expect((await get(`/studies/1.2.3/series/${series}/instances/${sop}`)).status).to.equal(404);
      expect((await get('/studies/1.2.abc')).status).to.equal(400);
      expect((await get(`/studies/${study}/series/x.y/metadata`)).status).to.equal(400);
      expect((await fetch(`${url}/dicom-web/studies/${study}`)).status).to.equal(401);
      expect((await fetch(`${url}/dicom-web/studies/${study}/metadata`)).status).to.equal(401);
    });

    it('works with dicomweb-client (OHIF): retrieveInstance and retrieveSeriesMetadata', async () => {
      const g = globalThis as { XMLHttpRequest?: unknown };
      const saved = g.XMLHttpRequest;
      g.XMLHttpRequest = XHR2;
      try {
        const client = new dicomweb.api.DICOMwebClient({
          url: `${url}/dicom-web`,
          headers: bearer(token),
          verbose: false,
          singlepart: false,
        });
        const sop = await sopOf(5);
        const got = (await client.retrieveInstance({
          studyInstanceUID: study,
          seriesInstanceUID: series,
          sopInstanceUID: sop,
        } as Parameters<typeof client.retrieveInstance>[0])) as ArrayBuffer;
        const row = await findInstance(node.db, sop);
        const blob = await streamToBuffer(await node.storage.get(row!.storage_key));
        expect(Buffer.from(got).equals(blob)).to.equal(true);
        const meta = (await client.retrieveSeriesMetadata({ studyInstanceUID: study, seriesInstanceUID: series } as Parameters<
          typeof client.retrieveSeriesMetadata
        >[0])) as Json[];
        expect(meta).to.have.length(99);
        expect(meta.map((m) => m['00080018']!.Value![0])).to.include(sop);
      } finally {
        g.XMLHttpRequest = saved;
      }
    });

    it('answers instance metadata as PS3.18 F.2 DICOM JSON matching dcm2json', async () => {
      const sop = await sopOf(3);
      const row = await findInstance(node.db, sop);
      const res = await get(`/studies/${study}/series/${series}/instances/${sop}/metadata`);
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.match(/^application\/dicom\+json/);
      const [ours] = (await res.json()) as Json[];
      // dcm2json on the stored blob itself (identical to the corpus file).
      const dir = await tempDir('wado-dcm2json');
      try {
        const file = path.join(dir, 'in.dcm');
        await fsp.writeFile(file, await streamToBuffer(await node.storage.get(row!.storage_key)));
        const r = await runTool('dcm2json', [file, path.join(dir, 'out.json')]);
        expect(r.code, r.output).to.equal(0);
        const ref = JSON.parse(await fsp.readFile(path.join(dir, 'out.json'), 'utf8')) as Json;
        // The sampled shapes the issue names.
        expect(ours!['00100010']).to.deep.equal(ref['00100010']);
        expect(ours!['00100010']!.Value![0]).to.have.property('Alphabetic');
        expect(ours!['00200013']).to.deep.equal(ref['00200013']);
        expect(ours!['00200013']!.Value![0]).to.be.a('number');
        expect(ours!['00280030']).to.deep.equal(ref['00280030']);
        expect(ours!['00081140']).to.deep.equal(ref['00081140']);
        expect(ours!['00081140']!.vr).to.equal('SQ');
        const instanceUrl = `${url}/dicom-web/studies/${study}/series/${series}/instances/${sop}`;
        expect(ours!['7FE00010']).to.deep.equal({ vr: 'OW', BulkDataURI: `${instanceUrl}/bulkdata/7FE00010` });
        expect(ref['7FE00010']!.InlineBinary).to.be.a('string');
        // Every attribute: the same set of tags, the same values, except binary values that
        // dcm2json always inlines and we reference by BulkDataURI when larger than 1 KiB.
        expect(Object.keys(ours!).sort()).to.deep.equal(
          Object.keys(ref)
            .filter((t) => !t.startsWith('0002'))
            .sort(),
        );
        const differing: string[] = [];
        for (const [tag, a] of Object.entries(ours!)) {
          if (a.BulkDataURI !== undefined) continue;
          if (JSON.stringify(a) !== JSON.stringify(ref[tag]))
            differing.push(`${tag}: ${JSON.stringify(a).slice(0, 80)} vs ${JSON.stringify(ref[tag]).slice(0, 80)}`);
        }
        expect(differing).to.deep.equal([]);
      } finally {
        await fsp.rm(dir, { recursive: true, force: true });
      }
    });

    it('builds series metadata once and serves it from series_metadata; study metadata concatenates its series', async () => {
      await node.db('series_metadata').delete();
      const t0 = performance.now();
      const first = await get(`/studies/${study}/series/${series}/metadata`);
      const built = performance.now() - t0;
      expect(first.status).to.equal(200);
      const a = (await first.json()) as Json[];
      expect(a).to.have.length(99);
      const row = (await node.db('series_metadata').where({ series_instance_uid: series }).first()) as {
        instance_count: number;
        built_at: string;
      };
      expect(row.instance_count).to.equal(99);
      const t1 = performance.now();
      const second = await get(`/studies/${study}/series/${series}/metadata`);
      const cached = performance.now() - t1;
      const b = (await second.json()) as Json[];
      expect(b).to.deep.equal(a);
      const again = (await node.db('series_metadata').where({ series_instance_uid: series }).first()) as { built_at: string };
      expect(String(again.built_at)).to.equal(String(row.built_at)); // not rebuilt (PostgreSQL returns Dates)
      await node.audit.flush();
      const audit = (await node.db('audit_logs').where({ action: 'dicomweb.metadata' }).orderBy('id', 'desc').first()) as {
        details: string;
      };
      expect(JSON.parse(audit.details)).to.include({ level: 'series', instances: 99, cachedSeries: 1 });
      if (process.env.WADO_TEST_VERBOSE) console.log(`      series metadata: built ${built.toFixed(0)} ms, cached ${cached.toFixed(0)} ms`);
      const s = (await (await get(`/studies/${study}/metadata`)).json()) as Json[];
      expect(s).to.deep.equal(a);
      // Host-relative URIs in the cache, absolute in the answer (per the address the client used).
      const viaLocalhost = (await (
        await fetch(`${url.replace('127.0.0.1', 'localhost')}/dicom-web/studies/${study}/metadata`, { headers: bearer(token) })
      ).json()) as Json[];
      expect(viaLocalhost[0]!['7FE00010']!.BulkDataURI).to.match(/^http:\/\/localhost:\d+\/dicom-web\/studies\//);
    });

    it('streams the whole-study retrieve without the heap growing with the study', async function () {
      const dir = await tempDir('wado-big');
      try {
        const summary = await getStudySummary(node.db, study);
        expect(summary?.num_instances).to.equal(99);
        const { result: res, growthMb } = await peakLiveGrowth(() =>
          // curl reads it, limited to 20 MB/s so the transfer lasts a few samples; the client's
          // buffers are not in this process.
          runTool('curl', [
            '-sS',
            '-o',
            path.join(dir, 'out.bin'),
            '-w',
            '%{http_code} %{size_download}',
            '--limit-rate',
            '20M',
            '-H',
            `Authorization: Bearer ${token}`,
            '-H',
            `Accept: ${DICOM_ACCEPT}; transfer-syntax=*`,
            `${url}/dicom-web/studies/${study}`,
          ]),
        );
        expect(res.code, res.output).to.equal(0);
        const [status, size] = res.stdout.split(' ');
        expect(status).to.equal('200');
        expect(Number(size)).to.be.greaterThan(50e6);
        const growth = growthMb;
        if (process.env.WADO_TEST_VERBOSE)
          console.log(`      live heap + buffers: +${growth.toFixed(1)} MB for ${(Number(size) / 1e6).toFixed(1)} MB`);
        expect(growth, `live heap + buffers grew ${growth.toFixed(1)} MB`).to.be.lessThan(20);
      } finally {
        await fsp.rm(dir, { recursive: true, force: true });
      }
    });

    it('DELETE: viewer 403, admin removes an instance (counts, blob, cache), then the series and study; audited', async () => {
      const sop = await sopOf(7);
      const row = (await findInstance(node.db, sop))!;
      const instancePath = `/studies/${study}/series/${series}/instances/${sop}`;
      expect((await fetch(`${url}/dicom-web${instancePath}`, { method: 'DELETE', headers: bearer(token) })).status).to.equal(403);
      expect((await fetch(`${url}/dicom-web${instancePath}`, { method: 'DELETE' })).status).to.equal(401);
      expect(await findInstance(node.db, sop)).to.not.equal(undefined);
      const admin = await tokenFor(node, 'admin');
      await get(`/studies/${study}/series/${series}/metadata`); // make sure a cache row exists
      const del = await fetch(`${url}/dicom-web${instancePath}`, { method: 'DELETE', headers: bearer(admin) });
      expect(del.status).to.equal(204);
      expect(await findInstance(node.db, sop)).to.equal(undefined);
      expect(await node.storage.exists(row.storage_key)).to.equal(false);
      expect((await getStudySummary(node.db, study))?.num_instances).to.equal(98);
      const se = (await node.db('series').where({ series_instance_uid: series }).first()) as { num_instances: number };
      expect(Number(se.num_instances)).to.equal(98);
      expect(await node.db('series_metadata').where({ series_instance_uid: series }).first()).to.equal(undefined);
      expect((await get(instancePath)).status).to.equal(404);
      expect((await fetch(`${url}/dicom-web${instancePath}`, { method: 'DELETE', headers: bearer(admin) })).status).to.equal(404);
      const meta = (await (await get(`/studies/${study}/series/${series}/metadata`)).json()) as Json[];
      expect(meta).to.have.length(98);

      const audit = (await node.db('audit_logs').where({ action: 'dicomweb.delete' }).orderBy('id')) as Array<{
        status: number;
        details: string;
        resource_type: string;
      }>;
      expect(audit.map((a) => a.status)).to.include.members([401, 403, 204, 404]);
      const ok = audit.find((a) => a.status === 204)!;
      expect(ok.resource_type).to.equal('instance');
      expect(JSON.parse(ok.details)).to.include({ level: 'instance', instances: 1 });

      // The whole study: series and study rows go, every blob goes.
      const keys = ((await node.db('instances').select('storage_key')) as Array<{ storage_key: string }>).map((r) => r.storage_key);
      expect((await fetch(`${url}/dicom-web/studies/${study}`, { method: 'DELETE', headers: bearer(admin) })).status).to.equal(204);
      expect(await getStudySummary(node.db, study)).to.equal(undefined);
      expect(await node.db('series').where({ series_instance_uid: series }).first()).to.equal(undefined);
      for (const k of keys) expect(await node.storage.exists(k), k).to.equal(false);
      expect((await get(`/studies/${study}/metadata`)).status).to.equal(404);
    });
  });
}

onBothDatabases(describeWado, 'radiant_wado');
