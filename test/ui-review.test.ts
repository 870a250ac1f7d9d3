import { expect } from 'chai';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { makeCtSeries, writeSeries } from '../fixtures/generate.js';
import { createUser } from '../src/auth/users.js';
import type { Role } from '../src/auth/permissions.js';
import { apiClient, type ApiClient } from './helpers/api.js';
import { answeringEndpoint, noduleAndAtelectasisAnswer, autoAnalysisEnv } from './helpers/ai-results.js';
import { launchChromium } from './helpers/browser.js';
import { runTool, storescu } from './helpers/dcmtk.js';
import { rewrite } from './helpers/rewrite.js';
import { baseUrl } from './helpers/http.js';
import { startTestNode, tempDir, type TestNode } from './helpers/node.js';
import { until } from './helpers/until.js';
import { axeViolations, browserStorage, ensureWebUiBuilt, signInAs } from './helpers/web-ui.js';

/**
 * The study review screen (issue 18, item 3) in Chromium against a real node: storescu pushes a
 * CT, the node analyses it by itself with a stand-in OpenAI-compatible endpoint (two findings, the
 * first with a box) and publishes the draft; the radiologist opens it from the worklist, sees the
 * findings with confidence and place and the key image with its box (pixels), rejects one finding
 * (a reason is required), edits the impression, signs (a wrong password first), and sees the
 * signed version and the diff; the API then holds the VERIFIED SR and the decisions. A change made
 * elsewhere shows by itself (live events); the key image opens OHIF on its slice; a viewer sees
 * the draft read-only. axe-core finds no serious or critical violation; no PHI in URLs or storage.
 */

const artifacts = path.resolve('test-artifacts');
const PASSWORD = 'correct horse battery staple';
const PATIENT = { id: 'REV-1', name: 'Review^Rita' };

const ANSWER = noduleAndAtelectasisAnswer();
/** InstanceNumber of the slice at each position (z ascending): swapped in pairs, so neither n nor 9 - n is its viewer slice. */
const SHUFFLED = [2, 1, 4, 3, 6, 5, 8, 7];
const IMPRESSION = 'Small nodule in the right upper lobe; follow-up CT in 6 months.';
const REASON = 'motion artefact, not atelectasis';

interface Summary {
  id: number;
  status: string;
  version: number;
  state: string;
}

/** Yellow box pixels (the key image's box) in the <img> as the page shows it, read back through a canvas. */
function boxPixelsIn(img: unknown): number {
  const g = globalThis as any;
  const el = img as any;
  const c = g.document.createElement('canvas');
  c.width = el.naturalWidth;
  c.height = el.naturalHeight;
  const ctx = c.getContext('2d');
  ctx.drawImage(el, 0, 0);
  const d = ctx.getImageData(0, 0, c.width, c.height).data as Uint8ClampedArray;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i]! > 200 && d[i + 1]! > 170 && d[i + 2]! < 80) n++;
  return n;
}

describe('web UI in Chromium: study review of an AI draft (findings, key images, decisions, sign, versions)', function () {
  this.timeout(300_000);
  let fake: Awaited<ReturnType<typeof answeringEndpoint>>;
  let node: TestNode;
  let browser: Browser;
  let admin: ApiClient;
  let studyUid = '';
  let studyId = 0;
  let reportId = 0;
  const visited: string[] = [];

  const user = (username: string, role: Role) => createUser(node.db, { username, password: PASSWORD, role, fullName: `${role} reviewer` });
  const newPage = async (viewport = { width: 1280, height: 800 }): Promise<{ context: BrowserContext; page: Page }> => {
    const context = await browser.newContext({ viewport, acceptDownloads: true });
    const page = await context.newPage();
    page.on('framenavigated', (f) => {
      if (f === page.mainFrame()) visited.push(f.url());
    });
    return { context, page };
  };

  before(async () => {
    ensureWebUiBuilt();
    await fsp.mkdir(artifacts, { recursive: true });
    fake = await answeringEndpoint(ANSWER);
    node = await startTestNode({
      ...autoAnalysisEnv(fake.url),
    });
    await user('rad.review', 'radiologist');
    await user('viewer.review', 'viewer');
    await user('admin.review', 'admin');
    const token = await fetch(`${baseUrl(node)}/api/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: 'admin.review', password: PASSWORD }),
    });
    admin = apiClient(node, ((await token.json()) as { access_token: string }).access_token);
    browser = await launchChromium();

    // A modality pushes the CT; the node analyses it and publishes the draft by itself. Its InstanceNumbers are
    // shuffled against the positions (neither the positions' order nor its reverse): the viewer's slice number
    // is the position's, and the key image must say the same.
    const files = makeCtSeries({ seed: 'ui-review', slices: 8, size: 96, patient: PATIENT, studyDate: '20240402' }).map((f, i) => ({
      ...f,
      bytes: rewrite(f.bytes, { '00200013': String(SHUFFLED[i]) }),
    }));
    studyUid = files[0]!.studyInstanceUid;
    const dir = await tempDir('ui-review');
    const sent = await storescu(node.dicomPort, await writeSeries(dir, files));
    expect(sent.code, sent.stderr).to.equal(0);
    const draft = await until(
      'the AI draft of the pushed study',
      async () => {
        const list = await admin.get<{ items: Summary[] }>(`/api/reports?study_uid=${studyUid}`);
        return list.status === 200 ? list.body.items[0] : undefined;
      },
      120_000,
      250,
    );
    reportId = draft.id;
    expect(draft).to.include({ status: 'draft', version: 1 });
    const studies = await admin.get<{ items: Array<{ id: number; study_instance_uid: string }> }>('/api/studies');
    studyId = studies.body.items.find((s) => s.study_instance_uid === studyUid)!.id;
  });

  after(async () => {
    await browser?.close();
    await node?.cleanup();
    await fake?.close();
  });

  it('a viewer sees the unverified draft read-only: no decision, edit, sign or decisions-export controls', async () => {
    const { context, page } = await newPage();
    try {
      await signInAs(page, baseUrl(node), 'viewer.review', PASSWORD);
      await page.getByRole('heading', { name: 'Worklist' }).waitFor();
      await page.locator('tbody a.open', { hasText: 'Review, Rita' }).click();
      await page.getByText('Unverified AI draft.').waitFor();
      await page.locator('[data-finding="2"]').waitFor();
      expect(await page.locator('article.finding').count()).to.equal(2);
      for (const name of ['Accept', 'Reject…', 'Edit…', 'Edit impression…', 'Sign…', 'Export all decisions (CSV)'])
        expect(await page.getByRole('button', { name, exact: true }).count(), name).to.equal(0);
      expect(await page.getByRole('button', { name: 'Download PDF' }).count()).to.equal(1);
      expect(await axeViolations(page)).to.deep.equal([]);
      await page.screenshot({ path: path.join(artifacts, 'web-ui-review-viewer.png'), fullPage: true });
    } finally {
      await context.close();
    }
  });

  it('the radiologist reviews the draft: findings, key image with its box, reject with a reason, impression, live change', async () => {
    const { context, page } = await newPage();
    try {
      await signInAs(page, baseUrl(node), 'rad.review', PASSWORD);
      await page.getByRole('heading', { name: 'Worklist' }).waitFor();
      await page.locator('tbody a.open', { hasText: 'Review, Rita' }).click();
      await page.getByRole('heading', { name: 'Study review' }).waitFor();
      expect(page.url()).to.match(new RegExp(`#/studies/${studyId}$`));

      // The header and the draft, labelled as unverified.
      const header = page.locator('dl.study-header');
      await header.getByText('Review, Rita').waitFor();
      expect(await header.textContent())
        .to.include('REV-1')
        .and.include('CT')
        .and.include('2024-04-02');
      await page.getByText('Unverified AI draft.').waitFor();
      const first = page.locator('[data-finding="1"]');
      const second = page.locator('[data-finding="2"]');
      await first.waitFor();
      expect(await first.textContent())
        .to.include('60%')
        .and.include('right upper lobe')
        .and.include('AI finding, unverified');
      expect(await second.textContent())
        .to.include('40%')
        .and.include('left lower lobe');

      // The key image, fetched with the token and shown as a blob: the box's pixels are there.
      const img = first.locator('img');
      await img.waitFor();
      await page.waitForFunction((el) => (el as any).complete && (el as any).naturalWidth > 0, await img.elementHandle());
      expect(await img.getAttribute('src')).to.match(/^blob:/);
      expect(await img.evaluate(boxPixelsIn)).to.be.greaterThan(20);
      expect(await axeViolations(page)).to.deep.equal([]);
      await page.screenshot({ path: path.join(artifacts, 'web-ui-review-draft.png'), fullPage: true });

      // Reject finding 2: the reason is required, then it is stored.
      await second.getByRole('button', { name: 'Reject…' }).click();
      const reason = second.getByLabel('Why is finding 2 rejected? (required)');
      expect(await reason.evaluate((el) => el === (globalThis as any).document.activeElement)).to.equal(true);
      await second.getByRole('button', { name: 'Reject finding 2' }).click();
      expect(await second.getByRole('alert').textContent()).to.equal('Say why the finding is rejected.');
      await reason.fill(REASON);
      await second.getByRole('button', { name: 'Reject finding 2' }).click();
      await second.locator('.badge.decision-rejected').waitFor();
      expect(await second.textContent()).to.include(REASON);

      // The impression, by keyboard.
      await page.getByRole('button', { name: 'Edit impression…' }).click();
      const text = page.getByLabel('Impression', { exact: true });
      // The editor takes the focus in an effect after it renders: on a loaded machine that comes a
      // moment after the click returns, so wait for it (bounded) before asserting it.
      await text
        .evaluate(
          (el) =>
            new Promise<void>((resolve) => {
              const doc = (globalThis as any).document;
              const started = Date.now();
              const check = () => (el === doc.activeElement || Date.now() - started > 5000 ? resolve() : setTimeout(check, 20));
              check();
            }),
        )
        .catch(() => undefined);
      expect(await text.evaluate((el) => el === (globalThis as any).document.activeElement)).to.equal(true);
      await text.fill(IMPRESSION);
      await page.keyboard.press('Tab');
      await page.keyboard.press('Enter');
      await page.locator('.impression-text', { hasText: IMPRESSION }).waitFor();
      await page.getByRole('heading', { name: /Report \d+, version 3/ }).waitFor();

      // Someone else accepts finding 1 through the API: the screen shows it by itself (live event), no reload.
      await page.evaluate(() => ((globalThis as any).__noReload = true));
      const rad2 = await fetch(`${baseUrl(node)}/api/auth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ username: 'rad.review', password: PASSWORD }),
      });
      const api = apiClient(node, ((await rad2.json()) as { access_token: string }).access_token);
      const v3 = await api.get<{ content: { findings: Array<{ number: number; description: string }> } }>(
        `/api/reports/${reportId}/versions/3`,
      );
      const accepted = await api.patch(`/api/reports/${reportId}?version=3`, {
        findings: v3.body.content.findings.map(({ number, description }) =>
          number === 1 ? { number, description, decision: 'accepted' } : { number, description },
        ),
      });
      expect(accepted.status, JSON.stringify(accepted.body)).to.equal(200);
      await first.locator('.badge.decision-accepted').waitFor({ timeout: 20_000 });
      await page.getByRole('heading', { name: /Report \d+, version 4/ }).waitFor();
      expect(await page.evaluate(() => (globalThis as any).__noReload)).to.equal(true);

      // Nothing of the session or the patient in storage; the URL holds the id only.
      expect(await browserStorage(page, context)).to.equal('{"local":{},"session":{},"cookie":""}[]');
    } finally {
      await context.close();
    }
  });

  it('signing asks for the password in a modal (Escape closes, Tab stays inside, a wrong one is refused), then shows v5 and the diff', async () => {
    const { context, page } = await newPage();
    try {
      await signInAs(page, baseUrl(node), 'rad.review', PASSWORD);
      await page.getByRole('heading', { name: 'Worklist' }).waitFor();
      await page.evaluate((id) => ((globalThis as any).location.hash = `#/studies/${id}`), studyId);
      const signButton = page.getByRole('button', { name: 'Sign…' });
      await signButton.waitFor();
      await signButton.click();
      const dialog = page.getByRole('dialog', { name: 'Sign the report' });
      await dialog.waitFor();
      const password = dialog.getByLabel('Your password');
      expect(await password.evaluate((el) => el === (globalThis as any).document.activeElement)).to.equal(true);
      // Tab cycles within the dialog.
      for (let i = 0; i < 4; i++) {
        await page.keyboard.press('Tab');
        expect(await dialog.evaluate((d) => d.contains((globalThis as any).document.activeElement))).to.equal(true);
      }
      await page.keyboard.press('Escape');
      await dialog.waitFor({ state: 'hidden' });
      await signButton.click();
      await dialog.waitFor();
      await password.fill('not my password');
      await dialog.getByRole('button', { name: 'Sign and publish' }).click();
      const alert = dialog.getByRole('alert');
      await alert.waitFor();
      expect(await alert.textContent()).to.equal('Wrong password: the report was not signed.');
      expect(await axeViolations(page)).to.deep.equal([]);
      await page.screenshot({ path: path.join(artifacts, 'web-ui-review-sign-refused.png') });
      expect((await admin.get<{ state: string }>(`/api/reports/${reportId}`)).body.state).to.equal('preliminary');

      await password.fill(PASSWORD);
      await page.keyboard.press('Enter');
      await page.getByText('Signed: the VERIFIED report is published.').waitFor({ timeout: 60_000 });
      await page.locator('.banner.signed').waitFor();
      expect(await page.locator('.banner.signed').textContent()).to.match(/radiologist reviewer|rad\.review/);
      // Signed: nothing to decide or edit any more.
      for (const name of ['Accept', 'Reject…', 'Edit…', 'Edit impression…', 'Sign…'])
        expect(await page.getByRole('button', { name, exact: true }).count(), name).to.equal(0);

      // The versions and the diff between the AI draft and the signed report.
      const rows = page.locator('table.versions tbody tr');
      await page.getByRole('heading', { name: /Report \d+, version 5/ }).waitFor();
      expect(await rows.count()).to.equal(5);
      expect(await rows.last().textContent())
        .to.include('sign')
        .and.include('signed');
      await page.getByLabel('From version').selectOption('1');
      await page.getByLabel('To version').selectOption('5');
      await page.getByRole('button', { name: 'Show changes' }).click();
      const diff = page.getByRole('region', { name: 'Changes from version 1 to version 5' });
      await diff.waitFor();
      const said = (await diff.textContent()) ?? '';
      expect(said).to.include(IMPRESSION).and.include(ANSWER.impression).and.include(`rejected`).and.include(REASON);
      expect(await axeViolations(page)).to.deep.equal([]);
      await page.screenshot({ path: path.join(artifacts, 'web-ui-review-signed.png'), fullPage: true });

      // Exports are downloads of blobs (no token in any URL).
      const [json] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download JSON' }).click()]);
      expect(json.suggestedFilename()).to.equal(`report-${reportId}-v5.json`);
      const exported = JSON.parse(await fsp.readFile((await json.path())!, 'utf8')) as { report: { state: string; impression: string } };
      expect(exported.report).to.include({ state: 'final', impression: IMPRESSION });
      const [pdf] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download PDF' }).click()]);
      expect(pdf.suggestedFilename()).to.equal(`report-${reportId}-v5.pdf`);
      expect((await fsp.readFile((await pdf.path())!)).subarray(0, 5).toString()).to.equal('%PDF-');
      const [csv] = await Promise.all([
        page.waitForEvent('download'),
        page.getByRole('button', { name: 'Export all decisions (CSV)' }).click(),
      ]);
      expect(csv.suggestedFilename()).to.equal('finding-decisions.csv');
      expect(await fsp.readFile((await csv.path())!, 'utf8')).to.include(REASON);

      // Tablet portrait: no page-wide horizontal scroll, still accessible.
      await page.setViewportSize({ width: 820, height: 1180 });
      expect(await page.evaluate(() => (globalThis as any).document.documentElement.scrollWidth)).to.be.at.most(821);
      expect(await axeViolations(page)).to.deep.equal([]);
      await page.screenshot({ path: path.join(artifacts, 'web-ui-review-tablet.png'), fullPage: true });
    } finally {
      await context.close();
    }
  });

  it('the API holds the VERIFIED report with the edit, without the rejected finding, and the stored decisions', async () => {
    const list = await admin.get<{ items: Summary[] }>(`/api/reports?study_uid=${studyUid}`);
    expect(list.body.items[0]).to.include({ id: reportId, status: 'signed', version: 5 });
    const rep = await admin.get<{ impression: string; dicom: { sr: { sop_instance_uid: string; series_instance_uid: string } } }>(
      `/api/reports/${reportId}`,
    );
    expect(rep.body.impression).to.equal(IMPRESSION);
    const { sop_instance_uid: sop, series_instance_uid: series } = rep.body.dicom.sr;
    const meta = await admin.get<Array<Record<string, { Value?: unknown[] }>>>(
      `/dicom-web/studies/${studyUid}/series/${series}/instances/${sop}/metadata`,
    );
    expect(meta.status).to.equal(200);
    const sr = meta.body[0]!;
    expect(sr['0040A493']?.Value).to.deep.equal(['VERIFIED']);
    const content = JSON.stringify(sr);
    expect(content).to.include('right upper lobe');
    expect(content).to.not.include('possibly atelectasis');

    const decisions = await admin.get<{
      items: Array<{ study_instance_uid: string; finding_number: number; decision: string; reason: string | null }>;
    }>('/api/reports/decisions');
    const mine = decisions.body.items.filter((d) => d.study_instance_uid === studyUid);
    expect(mine.map((d) => [d.finding_number, d.decision, d.reason])).to.have.deep.members([
      [1, 'accepted', null],
      [2, 'rejected', REASON],
    ]);
  });

  it("a click on the key image opens OHIF in a new tab on the finding's study, series and slice", async () => {
    const { context, page } = await newPage();
    try {
      await signInAs(page, baseUrl(node), 'rad.review', PASSWORD);
      await page.getByRole('heading', { name: 'Worklist' }).waitFor();
      await page.evaluate((id) => ((globalThis as any).location.hash = `#/studies/${id}`), studyId);
      const link = page.locator('[data-finding="1"] a.to-viewer');
      await link.locator('img').waitFor();
      const where = await admin.get<{
        SeriesInstanceUID: string;
        SOPInstanceUID: string;
        slice_number: number;
        slice_count: number;
        caption: string;
      }>(`/api/reports/${reportId}/findings/1/viewer-link`);
      const captionShown = (await page.locator('[data-finding="1"] figure.key-image').textContent()) ?? '';
      const href = (await link.getAttribute('href')) ?? '';
      expect(href).to.match(/^\/viewer\/viewer\?/);
      expect(href).to.not.match(/token/i);
      const [tab] = await Promise.all([context.waitForEvent('page'), link.click()]);
      // The new tab has no viewer session: the viewer's own sign-in, then back to the link.
      await tab.waitForURL(/\/viewer\/login\?next=/, { timeout: 30_000 });
      await tab.fill('#username', 'rad.review');
      await tab.fill('#password', PASSWORD);
      await tab.click('button[type=submit]');
      await tab.waitForURL((u) => u.pathname === '/viewer/viewer' && u.search.includes(studyUid), { timeout: 30_000 });
      // OHIF's viewport shows the finding's image: cornerstone's current image is the key image's SOP instance.
      let shown: string[] = [];
      const onSlice = await until(
        'OHIF showing the key image',
        async () => {
          shown = await tab.evaluate(() => {
            const cs = (globalThis as any).cornerstone;
            const ids: string[] = [];
            for (const e of cs?.getRenderingEngines?.() ?? [])
              for (const v of e.getViewports()) ids.push(String(v.getCurrentImageId?.() ?? ''));
            return ids.filter(Boolean);
          });
          return shown.some((id) => id.includes(where.body.SOPInstanceUID));
        },
        90_000,
        500,
      ).catch((err: Error) => {
        throw new Error(`${err.message}; OHIF shows ${shown.join(' ') || 'nothing'}`);
      });
      expect(onSlice).to.equal(true);
      expect(shown.some((id) => id.includes(where.body.SeriesInstanceUID) && id.includes(where.body.SOPInstanceUID))).to.equal(true);
      // OHIF's overlay, "I: <InstanceNumber> (k/N)": k/N is the key image's slice number, as the review screen says it.
      // The overlay is rendered after the viewport moves: wait until it names the key image's InstanceNumber.
      const meta = await admin.get<Array<Record<string, { Value?: unknown[] }>>>(
        `/dicom-web/studies/${studyUid}/series/${where.body.SeriesInstanceUID}/instances/${where.body.SOPInstanceUID}/metadata`,
      );
      const instanceNumber = Number(meta.body[0]!['00200013']!.Value![0]);
      let overlay = '';
      const said = await until(
        "OHIF's instance overlay on the key image",
        async () => {
          overlay =
            (await tab
              .locator('.overlay-item', { hasText: 'I:' })
              .first()
              .textContent({ timeout: 1000 })
              .catch(() => '')) ?? '';
          const m = /I:\s*(\d+)\s*\((\d+)\/(\d+)\)/.exec(overlay);
          return m && Number(m[1]) === instanceNumber ? { instance: Number(m[1]), k: Number(m[2]), n: Number(m[3]) } : undefined;
        },
        30_000,
        250,
      ).catch((err: Error) => {
        throw new Error(`${err.message}; overlay: ${JSON.stringify(overlay)}, InstanceNumber ${instanceNumber}`);
      });
      await tab.screenshot({ path: path.join(artifacts, 'web-ui-review-viewer-slice.png') });
      expect({ k: said.k, n: said.n }).to.deep.equal({ k: where.body.slice_number, n: where.body.slice_count });
      // Shuffled numbers: the InstanceNumber (or its reverse) would have named another slice.
      expect(where.body.slice_number).to.not.be.oneOf([said.instance, 9 - said.instance]);
      expect(captionShown).to.include(`slice ${where.body.slice_number} of 8`);
      expect(where.body.caption).to.include(`slice ${where.body.slice_number} of 8`);
      // The published PDF's key image says the same.
      const pdf = await admin.raw(`/api/export/report/${reportId}/pdf`);
      expect(pdf.status).to.equal(200);
      const file = path.join(await tempDir('ui-review-pdf'), 'report.pdf');
      await fsp.writeFile(file, Buffer.from(await pdf.arrayBuffer()));
      const text = (await runTool('pdftotext', [file, '-'])).stdout;
      expect(/Finding 1 · slice (\d+) of (\d+)/.exec(text)?.slice(1).map(Number), text).to.deep.equal([said.k, said.n]);
    } finally {
      await context.close();
    }
  });

  it('no URL visited held a patient name or ID', () => {
    expect(visited.length).to.be.greaterThan(3);
    for (const url of visited) expect(url, url).to.not.match(/review\^|rita|rev-1/i);
  });
});
