import { expect } from 'chai';
import http from 'node:http';
import Koa from 'koa';
import { makeCrImage, makeCtSeries, makeMrSeries } from '../fixtures/generate.js';
import { webUiRoutes } from '../src/http/routes/web-ui.js';
import { createLogger } from '../src/logger.js';
import { ingestFiles } from './helpers/api.js';
import { storescu } from './helpers/dcmtk.js';
import { baseUrl, bearer, tokenFor } from './helpers/http.js';
import { startTestNode, tempDir, type TestNode } from './helpers/node.js';
import { multipartBody, rawPost, stowContentType } from './helpers/stow.js';
import { ensureWebUiBuilt } from './helpers/web-ui.js';
import { onBothDatabases } from './helpers/postgres.js';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * What the worklist reads from the API on a real node: the latest analysis and report of each
 * study (status, progress, safety flags, signer), the filters, the three sorts and cursor paging;
 * GET /api/events (an event after a C-STORE, a STOW-RS, an analysis state change); /api/auth/me's
 * permissions; and the web UI served under / beside the node's own routes.
 */

interface Item {
  id: number;
  study_instance_uid: string;
  patient: { patient_id: string; patient_name: string | null };
  analysis_status: string | null;
  report_status: string | null;
  analysis: { id: number; status: string; progress: { stage: string | null; percent: number | null } } | null;
  safety_flags: { count: number; blocking: number };
  report: {
    id: number;
    status: string;
    signed: boolean;
    signed_by: string | null;
    signer_name: string | null;
    signed_at: string | null;
  } | null;
}
interface Page {
  total: number;
  items: Item[];
  next_cursor: string | null;
}

/** A reader of GET /api/events: every event, parsed, as it arrives. */
async function openEvents(url: string, token: string) {
  const ctrl = new AbortController();
  const res = await fetch(url, { headers: { ...bearer(token), accept: 'text/event-stream' }, signal: ctrl.signal });
  const events: Array<{ event: string; data: any }> = [];
  const waiters: Array<() => void> = [];
  const done = (async () => {
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) events.push({ event, data: JSON.parse(data) });
          for (const w of waiters.splice(0)) w();
        }
      }
    } catch {
      // aborted
    }
  })();
  return {
    res,
    events,
    async waitFor(pred: (e: { event: string; data: any }) => boolean, ms = 20_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const hit = events.find(pred);
        if (hit) return hit;
        if (Date.now() > deadline) throw new Error(`no such event within ${ms} ms; got ${JSON.stringify(events)}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 200);
        });
      }
    },
    async close() {
      ctrl.abort();
      await done;
    },
  };
}

/** The list, its filters, sorts and cursors on the embedded index and on a real PostgreSQL; the rest once. */
function describeWorklist(name: string, envFactory: () => Promise<Record<string, string>>): void {
  describe(`REST API: the worklist (studies with AI and report state, live events, the web UI) (${name})`, function () {
    this.timeout(120_000);
    let node: TestNode;
    let admin: string;
    let radiologist: string;
    const uids: Record<string, string> = {};

    const list = async (query: string, token = radiologist): Promise<Page> => {
      const res = await fetch(`${baseUrl(node)}/api/studies?${query}`, { headers: bearer(token) });
      const body = (await res.json()) as Page;
      expect(res.status, JSON.stringify(body)).to.equal(200);
      return body;
    };

    before(async () => {
      ensureWebUiBuilt();
      node = await startTestNode(await envFactory());
      admin = await tokenFor(node, 'admin');
      radiologist = await tokenFor(node, 'radiologist');
      const studies = {
        ada: makeCtSeries({ slices: 2, size: 16, patient: { id: 'WL-ADA', name: 'Lovelace^Ada' }, studyDate: '20240301' }),
        bob: makeMrSeries({ slices: 2, size: 16, patient: { id: 'WL-BOB', name: 'Builder^Bob' }, studyDate: '20240302' }),
        cyd: makeCrImage({ patient: { id: 'XY-CYD', name: 'Charisse^Cyd' }, studyDate: '20240303' }),
        dan: makeCtSeries({ slices: 1, size: 16, patient: { id: 'WL-DAN', name: 'Dare^Dan' }, studyDate: '20240304' }),
      };
      for (const [k, files] of Object.entries(studies)) {
        const list = Array.isArray(files) ? files : [files];
        await ingestFiles(node, list);
        uids[k] = list[0]!.studyInstanceUid;
      }
      // Analysis and report state as the pipeline and the report workflow leave it.
      const now = new Date().toISOString();
      const analysis = (uid: string, status: string, extra: Record<string, unknown> = {}) =>
        node
          .db('medgemma_analyses')
          .insert({ study_instance_uid: uid, status, analysis_type: 'primary', trigger: 'manual', created_at: now, ...extra })
          .returning('id')
          .then(([r]) => Number(typeof r === 'object' ? r.id : r));
      await analysis(uids.ada!, 'failed');
      const adaDone = await analysis(uids.ada!, 'succeeded', {
        safety_flags: JSON.stringify([
          { target: 0, rule: 'phi_echo', phrase: 'x' },
          { target: 'impression', rule: 'hedge', phrase: 'y' },
        ]),
      });
      await analysis(uids.bob!, 'running', { progress_stage: 'inference', progress_percent: 40 });
      const danDone = await analysis(uids.dan!, 'succeeded');
      const report = (uid: string, analysisId: number, state: string, extra: Record<string, unknown> = {}) =>
        node.db('reports').insert({
          study_instance_uid: uid,
          analysis_id: analysisId,
          one_per_analysis: analysisId,
          state,
          version: 2,
          include_ai_disclaimer: true,
          content: '{}',
          created_at: now,
          updated_at: now,
          ...extra,
        });
      await report(uids.ada!, adaDone, 'final', { signed_by: 'rad1', signer_name: 'Doe^Jane^^^MD', signed_at: now });
      await report(uids.dan!, danDone, 'draft');
    });
    after(async () => {
      await node?.cleanup();
    });

    it('lists each study with its latest analysis (status, progress, safety flags) and report (state, signer)', async () => {
      const page = await list('limit=50');
      expect(page.total).to.equal(4);
      const by = Object.fromEntries(page.items.map((i) => [i.patient.patient_id, i]));
      expect(by['WL-ADA']!.analysis_status).to.equal('succeeded');
      expect(by['WL-ADA']!.analysis).to.include({ status: 'succeeded' });
      expect(by['WL-ADA']!.safety_flags).to.deep.equal({ count: 2, blocking: 1 });
      expect(by['WL-ADA']!.report).to.include({ status: 'final', signed: true, signed_by: 'rad1', signer_name: 'Doe^Jane^^^MD' });
      expect(by['WL-ADA']!.report!.signed_at).to.be.a('string');
      expect(by['WL-BOB']!.analysis).to.deep.include({ status: 'running', progress: { stage: 'inference', percent: 40 } });
      expect(by['WL-BOB']!.report).to.equal(null);
      expect(by['XY-CYD']!.analysis).to.equal(null);
      expect(by['XY-CYD']!.analysis_status).to.equal(null);
      expect(by['XY-CYD']!.safety_flags).to.deep.equal({ count: 0, blocking: 0 });
      expect(by['WL-DAN']!.report).to.include({ status: 'draft', signed: false, signed_by: null });
      // The single study reads the same.
      const one = (await (
        await fetch(`${baseUrl(node)}/api/studies/${by['WL-ADA']!.id}`, { headers: bearer(radiologist) })
      ).json()) as Item;
      expect(one.report).to.include({ signed: true, signed_by: 'rad1' });
      expect(one.safety_flags).to.deep.equal({ count: 2, blocking: 1 });
    });

    it('filters by patient (name contains, ID prefix), AI status and report status', async () => {
      const ids = (p: Page) => p.items.map((i) => i.patient.patient_id).sort();
      expect(ids(await list('patient=ovel'))).to.deep.equal(['WL-ADA']);
      expect(ids(await list('patient=lovelace%5Eada'))).to.deep.equal(['WL-ADA']);
      expect(ids(await list('patient=WL-'))).to.deep.equal(['WL-ADA', 'WL-BOB', 'WL-DAN']);
      expect(ids(await list('patient=XY'))).to.deep.equal(['XY-CYD']);
      expect(ids(await list('ai_status=running'))).to.deep.equal(['WL-BOB']);
      expect(ids(await list('ai_status=none'))).to.deep.equal(['XY-CYD']);
      expect(ids(await list('ai_status=failed'))).to.deep.equal([]);
      expect(ids(await list('report_status=signed'))).to.deep.equal(['WL-ADA']);
      expect(ids(await list('report_status=unsigned'))).to.deep.equal(['WL-DAN']);
      expect(ids(await list('report_status=none'))).to.deep.equal(['WL-BOB', 'XY-CYD']);
      expect(ids(await list('report_status=none&ai_status=running&modality=MR'))).to.deep.equal(['WL-BOB']);
      const counted = await list('ai_status=succeeded&limit=1');
      expect(counted.total).to.equal(2);
      expect(counted.items).to.have.length(1);
    });

    it('sorts by date, patient and AI status, and pages each order by cursor', async () => {
      const walk = async (sort: string) => {
        const out: string[] = [];
        let cursor: string | null = null;
        do {
          const page: Page = await list(`sort=${sort}&limit=1${cursor ? `&cursor=${cursor}` : ''}`);
          out.push(...page.items.map((i) => i.patient.patient_id));
          cursor = page.next_cursor;
        } while (cursor);
        return out;
      };
      expect(await walk('date')).to.deep.equal(['WL-DAN', 'XY-CYD', 'WL-BOB', 'WL-ADA']);
      expect(await walk('patient')).to.deep.equal(['WL-BOB', 'XY-CYD', 'WL-DAN', 'WL-ADA']);
      // running, then succeeded (newest first), then none.
      expect(await walk('status')).to.deep.equal(['WL-BOB', 'WL-DAN', 'WL-ADA', 'XY-CYD']);
      // The cursor holds an id, never a name.
      const first = await list('sort=patient&limit=1');
      expect(Buffer.from(first.next_cursor!, 'base64url').toString()).to.not.match(/BUILDER|Bob/i);
    });

    it('refuses a cursor of another sort, a forged one, and unknown filter values with 400', async () => {
      const first = await list('sort=date&limit=1');
      for (const q of [
        `sort=patient&cursor=${first.next_cursor}`,
        'cursor=bm90LWpzb24',
        `cursor=${Buffer.from(JSON.stringify({ s: 'date', id: 999999 })).toString('base64url')}`,
        'cursor=a%20b',
        'ai_status=done',
        'report_status=maybe',
        'sort=name',
      ]) {
        const res = await fetch(`${baseUrl(node)}/api/studies?${q}`, { headers: bearer(radiologist) });
        expect(res.status, q).to.equal(400);
      }
    });

    it('GET /api/auth/me lists the role permissions the UI shows', async () => {
      const me = async (t: string) => (await (await fetch(`${baseUrl(node)}/api/auth/me`, { headers: bearer(t) })).json()) as any;
      expect((await me(admin)).permissions).to.include.members(['users:manage', 'audit:read', 'images:read']);
      const rad = await me(radiologist);
      expect(rad.permissions).to.include('reports:sign').and.not.include('users:manage');
      expect(rad.auth_disabled).to.equal(false);
      expect((await me(await tokenFor(node, 'viewer'))).permissions).to.deep.equal(['images:read']);
    });

    it('GET /api/events: 401 without a token; an event after a C-STORE, a STOW-RS and an analysis state change', async () => {
      expect((await fetch(`${baseUrl(node)}/api/events`)).status).to.equal(401);
      const viewer = await tokenFor(node, 'viewer');
      const live = await openEvents(`${baseUrl(node)}/api/events`, viewer);
      try {
        expect(live.res.status).to.equal(200);
        expect(live.res.headers.get('content-type')).to.match(/^text\/event-stream/);
        await live.waitFor((e) => e.event === 'ready');

        // C-STORE (storescu): one study event for several instances (coalesced per study).
        const dir = await tempDir('events');
        const ct = makeCtSeries({ slices: 4, size: 16, patient: { id: 'WL-EVT', name: 'Event^Eve' } });
        const files = await Promise.all(
          ct.map(async (f, i) => {
            const p = path.join(dir, `${i}.dcm`);
            await writeFile(p, f.bytes);
            return p;
          }),
        );
        const store = await storescu(node.dicomPort, files);
        expect(store.code, store.stderr).to.equal(0);
        await live.waitFor((e) => e.event === 'study' && e.data.study_instance_uid === ct[0]!.studyInstanceUid);
        await new Promise((r) => setTimeout(r, 1500));
        expect(live.events.filter((e) => e.event === 'study' && e.data.study_instance_uid === ct[0]!.studyInstanceUid)).to.have.length(1);

        // STOW-RS.
        const [cr] = makeCrImage({ patient: { id: 'WL-STOW', name: 'Stow^Stan' } }) as [ReturnType<typeof makeCrImage>[number]];
        const stow = await rawPost(
          `${baseUrl(node)}/dicom-web/studies`,
          { ...bearer(radiologist), 'content-type': stowContentType(), accept: 'application/dicom+json' },
          multipartBody([cr!.bytes]),
        );
        expect(stow.status).to.equal(200);
        await live.waitFor((e) => e.event === 'study' && e.data.study_instance_uid === cr!.studyInstanceUid);

        // An analysis requested through the API: queued at once (then run or failed by the worker).
        const res = await fetch(`${baseUrl(node)}/api/analysis`, {
          method: 'POST',
          headers: { ...bearer(radiologist), 'content-type': 'application/json' },
          body: JSON.stringify({ study_id: cr!.studyInstanceUid }),
        });
        expect(res.status, await res.clone().text()).to.equal(202);
        const { id } = (await res.json()) as { id: number };
        const queued = await live.waitFor((e) => e.event === 'analysis' && e.data.analysis_id === id);
        expect(queued.data).to.deep.include({ study_instance_uid: cr!.studyInstanceUid, status: 'queued' });
        // No engine on this node: the job fails the analysis, and that is announced too.
        const ended = await live.waitFor((e) => e.event === 'analysis' && e.data.analysis_id === id && e.data.status === 'failed', 60_000);
        expect(ended.data.study_instance_uid).to.equal(cr!.studyInstanceUid);
        // Events carry ids and states only: no names.
        expect(JSON.stringify(live.events)).to.not.match(/Event\^Eve|Stow\^Stan|WL-EVT|WL-STOW/);
      } finally {
        await live.close();
      }
    });

    it('serves the web UI under / with a CSP; the node routes keep their answers and 404s', async () => {
      const root = await fetch(`${baseUrl(node)}/`);
      expect(root.status).to.equal(200);
      expect(root.headers.get('content-type')).to.match(/^text\/html/);
      expect(root.headers.get('cache-control')).to.equal('no-cache');
      expect(root.headers.get('content-security-policy')).to.include("script-src 'self'").and.include("frame-ancestors 'none'");
      const html = await root.text();
      const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
      expect(asset, html).to.be.a('string');
      const js = await fetch(`${baseUrl(node)}${asset}`);
      expect(js.status).to.equal(200);
      expect(js.headers.get('cache-control')).to.equal('public, max-age=31536000, immutable');
      expect(js.headers.get('content-type')).to.match(/^text\/javascript/);
      // An SPA path falls back to the page; the node's own prefixes do not.
      const spa = await fetch(`${baseUrl(node)}/worklist/anything`);
      expect(spa.status).to.equal(200);
      expect(await spa.text()).to.equal(html);
      for (const p of [
        '/api/nothing-here',
        '/dicom-web/nothing-here',
        '/assets/missing-file.js',
        '/assets/..%2Fpackage.json',
        '/favicon.ico',
      ]) {
        expect((await fetch(`${baseUrl(node)}${p}`)).status, p).to.equal(404);
      }
      expect((await fetch(`${baseUrl(node)}/healthz`)).status).to.equal(200);
      expect((await fetch(`${baseUrl(node)}/openapi.json`)).headers.get('content-type')).to.match(/json/);
      expect((await fetch(`${baseUrl(node)}/viewer`, { redirect: 'manual' })).status).to.equal(302);
      const documented = (await (await fetch(`${baseUrl(node)}/openapi.json`)).json()) as any;
      expect(documented.paths['/api/events'].get).to.be.an('object');
      expect(documented.paths['/api/studies'].get.parameters.map((p: any) => p.name)).to.include.members([
        'patient',
        'ai_status',
        'report_status',
        'sort',
        'cursor',
      ]);
    });

    it('without a UI build the node still answers / with how to build it (503), and its API as before', async () => {
      const app = new Koa();
      const r = webUiRoutes(createLogger('silent'), path.join(await tempDir('no-ui'), 'dist'));
      app.use(r.routes());
      const server = http.createServer(app.callback());
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const port = (server.address() as { port: number }).port;
        const res = await fetch(`http://127.0.0.1:${port}/`);
        expect(res.status).to.equal(503);
        expect(await res.text()).to.include('npm run build:ui');
        expect((await fetch(`http://127.0.0.1:${port}/assets/index.js`)).status).to.equal(404);
      } finally {
        server.close();
      }
    });
  });
}

onBothDatabases(describeWorklist, 'radiant_api_worklist');
