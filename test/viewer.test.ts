import { expect } from 'chai';
import { createHash } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { corpusDir } from './helpers/corpus.js';
import { baseUrl, tokenFor } from './helpers/http.js';
import { startTestNode, type TestNode } from './helpers/node.js';
import { launchChromium, type RecordedRequest } from './helpers/browser.js';
import { ohifDistDir } from '../src/http/routes/viewer.js';
import { createUser } from '../src/auth/users.js';

/**
 * The OHIF viewer served by the node at /viewer, driven by a real (headless) Chromium against
 * the node's own DICOMweb: study list from QIDO-RS, then the viewer for the 99-slice chest CT.
 */
/** In the page (no DOM types here): the most non-black pixels on any large canvas. */
const LIT_PIXELS = `(() => {
          let best = 0;
          for (const c of Array.from(document.querySelectorAll('canvas'))) {
            if (c.width < 64 || c.height < 64) continue;
            const probe = document.createElement('canvas');
            probe.width = c.width;
            probe.height = c.height;
            const ctx = probe.getContext('2d');
            if (!ctx) continue;
            try {
              ctx.drawImage(c, 0, 0);
            } catch {
              continue;
            }
            const d = ctx.getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] > 30) n++;
            best = Math.max(best, n);
          }
          return best;
})()`;

describe('OHIF viewer (/viewer)', function () {
  this.timeout(180_000);
  let node: TestNode;
  let browser: Browser | undefined;
  let study = '';
  const artifacts = path.resolve('test-artifacts');

  before(async () => {
    // Auth off here (AUTH_DISABLED, a closed lab network); the sign-in path is the suite below.
    expect(ohifDistDir(), 'the OHIF viewer (@ohif/app dist/) is not installed').to.be.a('string');
    node = await startTestNode({ AUTH_DISABLED: 'true' });
    const files = corpusDir('ct-series-chest-99');
    expect(files).to.have.length(99);
    for (const f of files) {
      const res = await node.ingestor.ingestFile(f.absPath, false, { source: 'import' });
      study = res.studyInstanceUid;
    }
    browser = await launchChromium();
    await fsp.mkdir(artifacts, { recursive: true });
  });

  after(async () => {
    await browser?.close();
    await node?.cleanup();
  });

  it('serves index.html rebased to /viewer/, isolation headers, app-config and no traversal', async () => {
    const base = baseUrl(node);
    const index = await fetch(`${base}/viewer/`);
    expect(index.status).to.equal(200);
    expect(index.headers.get('cross-origin-opener-policy')).to.equal('same-origin');
    expect(index.headers.get('cross-origin-embedder-policy')).to.equal('require-corp');
    expect(index.headers.get('cross-origin-resource-policy')).to.equal('same-origin');
    const html = await index.text();
    expect(html).to.include('window.PUBLIC_URL="/viewer/"');
    // The viewer's CSP (src/http/security-headers.ts): the page's inline scripts by hash, wasm, no framing, no eval.
    const csp = index.headers.get('content-security-policy') ?? '';
    const inline = [...html.matchAll(/<script(?![^>]*\ssrc=)[^>]*>([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
    expect(inline).to.not.be.empty;
    for (const script of inline) expect(csp).to.include(`'sha256-${createHash('sha256').update(script).digest('base64')}'`);
    expect(csp).to.include("frame-ancestors 'none'").and.include("'wasm-unsafe-eval'").and.not.include("'unsafe-eval'");
    expect(csp).to.not.match(/script-src[^;]*'unsafe-inline'/);
    expect(index.headers.get('x-content-type-options')).to.equal('nosniff');
    expect(index.headers.get('referrer-policy')).to.equal('no-referrer');
    expect(html).to.include('src="/viewer/app-config.js"');
    expect(html).not.to.match(/(src|href)="\/(?!viewer\/|\/)/);

    const cfg = await fetch(`${base}/viewer/app-config.js`);
    expect(cfg.status).to.equal(200);
    expect(cfg.headers.get('content-type')).to.match(/javascript/);
    const js = await cfg.text();
    expect(js).to.include('"routerBasename": "/viewer"');
    expect(js, js).to.include(`"qidoRoot": "${base}/dicom-web"`);

    const spa = await fetch(`${base}/viewer/viewer?StudyInstanceUIDs=${study}`);
    expect(spa.status).to.equal(200);
    expect(await spa.text()).to.include('window.PUBLIC_URL="/viewer/"');
    const wasm = await fetch(`${base}/viewer/${(await fsp.readdir(ohifDistDir()!)).find((n) => n.endsWith('.wasm'))}`);
    expect(wasm.headers.get('content-type')).to.equal('application/wasm');
    expect((await fetch(`${base}/viewer/nope.js`)).status).to.equal(404);
    for (const evil of ['/viewer/..%2Fpackage.json', '/viewer/%2e%2e/%2e%2e/package.json', '/viewer/..%2F..%2F..%2Fetc%2Fpasswd']) {
      const res = await fetch(`${base}${evil}`);
      const text = await res.text();
      expect(text, evil).not.to.include('"name"');
      expect(text, evil).not.to.include('root:');
    }
    expect((await fetch(`${base}/viewer`, { redirect: 'manual' })).headers.get('location')).to.equal('/viewer/');
  });

  it('lists the CT study and opens it in the viewer', async () => {
    const base = baseUrl(node);
    const page: Page = await browser!.newPage({ viewport: { width: 1280, height: 800 } });
    const requests: RecordedRequest[] = [];
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('requestfinished', async (req) => {
      const res = await req.response();
      requests.push({ method: req.method(), url: req.url(), status: res?.status() });
    });
    page.on('requestfailed', (req) => requests.push({ method: req.method(), url: req.url(), failure: req.failure()?.errorText }));
    const dicomweb = () => requests.filter((r) => r.url.includes('/dicom-web/'));
    const report = () =>
      JSON.stringify(
        {
          failed: requests.filter((r) => r.failure || (r.status ?? 0) >= 400).slice(0, 30),
          dicomweb: dicomweb()
            .map((r) => `${r.status ?? r.failure} ${r.url.replace(base, '')}`)
            .slice(0, 15),
          errors: errors.slice(0, 10),
        },
        null,
        1,
      );

    try {
      await page.goto(`${base}/viewer`, { waitUntil: 'domcontentloaded' });
      // Study list: the CT's patient or description.
      const qidoRes = (await (await fetch(`${base}/dicom-web/studies?StudyInstanceUID=${study}&includefield=00081030`)).json()) as Array<
        Record<string, { Value?: unknown[] }>
      >;
      const description = String(qidoRes[0]?.['00081030']?.Value?.[0] ?? '');
      expect(description).to.not.equal('');
      const row = page.getByText(description, { exact: true }).first();
      await row.waitFor({ timeout: 45_000 }).catch(async (err: unknown) => {
        await page.screenshot({ path: path.join(artifacts, 'viewer-list.png') });
        throw new Error(`study list did not render: ${String(err)}\n${report()}`);
      });
      await page.screenshot({ path: path.join(artifacts, 'viewer-list.png') });
      const qido = dicomweb().filter((r) => /\/dicom-web\/studies(\?|$)/.test(r.url));
      expect(qido, report()).to.not.be.empty;
      expect(
        qido.every((r) => r.status === 200),
        report(),
      ).to.equal(true);

      await page.goto(`${base}/viewer/viewer?StudyInstanceUIDs=${study}`, { waitUntil: 'domcontentloaded' });
      // Wait for the viewport canvas to show non-black pixels.
      const deadline = Date.now() + 60_000;
      let lit = 0;
      while (Date.now() < deadline) {
        lit = await page.evaluate<number>(LIT_PIXELS);
        if (lit > 1000) break;
        await page.waitForTimeout(1000);
      }
      await page.screenshot({ path: path.join(artifacts, 'viewer.png') });
      const meta = dicomweb().filter((r) => r.url.includes('/metadata'));
      expect(meta, report()).to.not.be.empty;
      expect(
        meta.every((r) => r.status === 200),
        report(),
      ).to.equal(true);
      const frames = dicomweb().filter((r) => r.url.includes('/frames/'));
      const failed = dicomweb().filter((r) => r.failure || (r.status ?? 0) >= 400);
      console.log(
        `      viewer: ${dicomweb().length} DICOMweb requests, ${frames.length} frames, ${failed.length} failed, ${lit} lit pixels`,
      );
      expect(failed, report()).to.deep.equal([]);
      expect(frames, report()).to.not.be.empty;
      expect(lit, report()).to.be.greaterThan(1000);
      // OHIF ran under its Content-Security-Policy without being refused anything.
      expect(
        errors.filter((e) => /Content Security Policy/i.test(e)),
        report(),
      ).to.deep.equal([]);
    } finally {
      await page.close();
    }
  });
});

/**
 * With auth on. OHIF's mode route takes `?token=` (updateAuthServiceAndCleanUrl); everything
 * else — the study list included — gets its bearer token from the node's login page
 * (/viewer/login), which app-config.js adds to the viewer's DICOMweb requests.
 */
describe('OHIF viewer with auth on (login page, ?token=)', function () {
  this.timeout(240_000);
  let node: TestNode;
  let browser: Browser | undefined;
  let study = '';
  let mrStudy = '';
  let usStudy = '';
  const password = 'correct horse battery';

  before(async () => {
    node = await startTestNode();
    for (const f of corpusDir('ct-series-chest-99')) {
      study = (await node.ingestor.ingestFile(f.absPath, false, { source: 'import' })).studyInstanceUid;
    }
    for (const f of corpusDir('mr-series-brain-sag-192')) {
      mrStudy = (await node.ingestor.ingestFile(f.absPath, false, { source: 'import' })).studyInstanceUid;
    }
    const us = corpusDir('multiframe').find((e) => e.path.endsWith('/Issue16.dcm'))!;
    usStudy = (await node.ingestor.ingestFile(us.absPath, false, { source: 'import' })).studyInstanceUid;
    await createUser(node.db, { username: 'reader', password, role: 'radiologist' });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await node?.cleanup();
  });

  async function record(page: Page, base: string) {
    const requests: RecordedRequest[] = [];
    page.on('requestfinished', async (req) => {
      const res = await req.response();
      requests.push({ method: req.method(), url: req.url(), status: res?.status() });
    });
    page.on('requestfailed', (req) => requests.push({ method: req.method(), url: req.url(), failure: req.failure()?.errorText }));
    const dw = () => requests.filter((r) => r.url.includes('/dicom-web/'));
    const report = () =>
      JSON.stringify(
        dw()
          .map((r) => `${r.status ?? r.failure} ${r.url.replace(base, '')}`)
          .slice(-25),
        null,
        1,
      );
    return { requests, dw, report };
  }

  async function waitLit(page: Page, min = 1000): Promise<number> {
    const deadline = Date.now() + 60_000;
    let lit = 0;
    while (Date.now() < deadline && (lit = await page.evaluate<number>(LIT_PIXELS)) <= min) await page.waitForTimeout(1000);
    return lit;
  }

  it('sends the viewer to the login page; signing in shows the study list, then the CT, the MR and a multi-frame US', async () => {
    const base = baseUrl(node);
    expect((await fetch(`${base}/dicom-web/studies`)).status).to.equal(401);
    const cfg = await (await fetch(`${base}/viewer/app-config.js`)).text();
    expect(cfg).to.include('/viewer/login');
    const page: Page = await browser!.newPage({ viewport: { width: 1280, height: 800 } });
    const { dw, report } = await record(page, base);
    try {
      await page.goto(`${base}/viewer/`, { waitUntil: 'domcontentloaded' });
      await page.waitForURL(/\/viewer\/login\?next=/, { timeout: 20_000 });
      await page.fill('#username', 'reader');
      await page.fill('#password', 'wrong password');
      await page.click('button[type=submit]');
      await page.getByText('invalid username or password').waitFor({ timeout: 10_000 });
      await page.fill('#password', password);
      await page.click('button[type=submit]');
      await page.waitForURL((u) => !u.pathname.startsWith('/viewer/login'), { timeout: 20_000 });

      // The study list: all three studies, from QIDO-RS with the token.
      const qidoRes = (await (
        await fetch(`${base}/dicom-web/studies?StudyInstanceUID=${study}&includefield=00081030`, {
          headers: { authorization: `Bearer ${await tokenFor(node, 'viewer')}` },
        })
      ).json()) as Array<Record<string, { Value?: unknown[] }>>;
      const description = String(qidoRes[0]?.['00081030']?.Value?.[0] ?? '');
      await page
        .getByText(description, { exact: true })
        .first()
        .waitFor({ timeout: 45_000 })
        .catch((err: unknown) => {
          throw new Error(`study list did not render: ${String(err)}\n${report()}`);
        });
      await page.screenshot({ path: path.resolve('test-artifacts', 'viewer-auth-list.png') });
      const qido = dw().filter((r) => /\/dicom-web\/studies(\?|$)/.test(r.url));
      expect(qido, report()).to.not.be.empty;
      expect(
        qido.every((r) => r.status === 200),
        report(),
      ).to.equal(true);

      for (const [name, uid] of [
        ['ct', study],
        ['mr', mrStudy],
        ['us-multiframe', usStudy],
      ] as const) {
        const before = dw().length;
        await page.goto(`${base}/viewer/viewer?StudyInstanceUIDs=${uid}`, { waitUntil: 'domcontentloaded' });
        const lit = await waitLit(page);
        await page.screenshot({ path: path.resolve('test-artifacts', `viewer-auth-${name}.png`) });
        // Requests of the study before it that navigating away aborted are not this study's.
        const mine = dw()
          .slice(before)
          .filter((r) => r.url.includes(uid));
        console.log(
          `      ${name}: ${mine.length} DICOMweb requests, ${mine.filter((r) => r.url.includes('/frames/')).length} frames, ${lit} lit pixels`,
        );
        expect(
          mine.filter((r) => r.url.includes('/metadata')),
          `${name} ${report()}`,
        ).to.not.be.empty;
        expect(
          mine.filter((r) => r.url.includes('/frames/')),
          `${name} ${report()}`,
        ).to.not.be.empty;
        expect(
          mine.filter((r) => r.failure || (r.status ?? 0) >= 400),
          `${name} ${report()}`,
        ).to.deep.equal([]);
        expect(lit, `${name} ${report()}`).to.be.greaterThan(1000);
      }
      // Every DICOMweb request was authenticated and audited under the user who signed in.
      await node.audit.flush();
      const audited = await node.db('audit_logs').where({ actor: 'reader' }).whereLike('action', 'dicomweb.%').count({ n: '*' });
      expect(Number(audited[0]!.n)).to.be.greaterThan(3);
    } finally {
      await page.close();
    }
  });

  it('an expired or missing token goes back to the login page; ?token= still opens a study', async () => {
    const base = baseUrl(node);
    const page: Page = await browser!.newPage({ viewport: { width: 1280, height: 800 } });
    const { dw, report } = await record(page, base);
    try {
      const expired = `${Buffer.from('{"alg":"HS256"}').toString('base64url')}.${Buffer.from(JSON.stringify({ exp: 1 })).toString('base64url')}.x`;
      await page.goto(`${base}/viewer/?token=${expired}`, { waitUntil: 'domcontentloaded' });
      await page.waitForURL(/\/viewer\/login\?next=/, { timeout: 20_000 });
      const token = await tokenFor(node, 'viewer');
      await page.goto(`${base}/viewer/viewer?StudyInstanceUIDs=${study}&token=${token}`, { waitUntil: 'domcontentloaded' });
      const lit = await waitLit(page);
      await page.screenshot({ path: path.resolve('test-artifacts', 'viewer-auth.png') });
      expect(
        dw().filter((r) => r.url.includes('/frames/')),
        report(),
      ).to.not.be.empty;
      expect(
        dw().filter((r) => r.failure || (r.status ?? 0) >= 400),
        report(),
      ).to.deep.equal([]);
      expect(lit, report()).to.be.greaterThan(1000);
    } finally {
      await page.close();
    }
  });
});
