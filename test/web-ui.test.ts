import { expect } from 'chai';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { makeCrImage, makeCtSeries } from '../fixtures/generate.js';
import { createUser } from '../src/auth/users.js';
import type { Role } from '../src/auth/permissions.js';
import { ingestFiles } from './helpers/api.js';
import { launchChromium } from './helpers/browser.js';
import { storescu } from './helpers/dcmtk.js';
import { baseUrl, bearer, tokenFor } from './helpers/http.js';
import { startTestNode, tempDir, type TestNode } from './helpers/node.js';
import { axeViolations, browserStorage, ensureWebUiBuilt, signInAs } from './helpers/web-ui.js';

/**
 * The web UI in Chromium against a real node: sign-in (and its failure message), the worklist
 * (filter, pages, a study pushed with storescu appearing by itself, its AI state changing in
 * place), the navigation per role, sign-out, token expiry, AUTH_DISABLED; axe-core finds no
 * serious or critical violation; nothing of the token or the patients is left in browser
 * storage or in any URL visited. Screenshots go to test-artifacts/.
 */

const artifacts = path.resolve('test-artifacts');
const PASSWORD = 'correct horse battery staple';

/** Studies beyond one page (50): a paging CR per patient, plus the one the filter looks for. */
const PAGING = 52;

async function user(node: TestNode, username: string, role: Role): Promise<void> {
  await createUser(node.db, { username, password: PASSWORD, role, fullName: `${role} user` });
}

const signIn = (page: Page, node: TestNode, username: string, password = PASSWORD) => signInAs(page, baseUrl(node), username, password);

describe('web UI in Chromium: sign-in, worklist, live updates, roles', function () {
  this.timeout(180_000);
  let node: TestNode;
  let browser: Browser;
  const visited: string[] = [];

  const newPage = async (viewport = { width: 1280, height: 800 }) => {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    page.on('framenavigated', (f) => {
      if (f === page.mainFrame()) visited.push(f.url());
    });
    return { context, page };
  };

  before(async () => {
    ensureWebUiBuilt();
    await fsp.mkdir(artifacts, { recursive: true });
    node = await startTestNode();
    await user(node, 'rad.ui', 'radiologist');
    await user(node, 'admin.ui', 'admin');
    await user(node, 'viewer.ui', 'viewer');
    const files = [
      ...Array.from({ length: PAGING }, (_, i) =>
        makeCrImage({ size: 16, patient: { id: `PG-${i}`, name: `Paging^Patient${i}` }, studyDate: '20230105' }),
      ).flat(),
      ...makeCtSeries({ slices: 2, size: 16, patient: { id: 'ADA-1', name: 'Lovelace^Ada' }, studyDate: '20240301' }),
    ];
    await ingestFiles(node, files);
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await node?.cleanup();
  });

  it('shows why a sign-in failed, and keeps the password out of the page', async () => {
    const { context, page } = await newPage();
    try {
      await signIn(page, node, 'rad.ui', 'wrong password');
      const alert = page.getByRole('alert');
      await alert.waitFor();
      expect(await alert.textContent()).to.equal('Invalid username or password.');
      expect(await page.getByLabel('Password').inputValue()).to.equal('');
      expect(await axeViolations(page)).to.deep.equal([]);
      await page.screenshot({ path: path.join(artifacts, 'web-ui-sign-in-failed.png') });
    } finally {
      await context.close();
    }
  });

  it('a radiologist signs in, filters and pages the worklist, sees a pushed study and its AI state arrive live, signs out', async () => {
    const { context, page } = await newPage();
    try {
      await signIn(page, node, 'rad.ui');
      await page.getByRole('heading', { name: 'Worklist' }).waitFor();
      const count = page.locator('p.count');
      await count.getByText(`of ${PAGING + 1}`).waitFor();
      expect(await count.textContent()).to.equal(`Studies 1–50 of ${PAGING + 1}`);
      // Newest first: the 2024 study heads the list.
      expect(await page.locator('tbody tr').first().locator('a.open').textContent()).to.equal('Lovelace, Ada');
      // The radiologist's navigation: the worklist, no administration.
      const nav = page.getByRole('navigation', { name: 'Main' });
      expect(await nav.getByRole('link', { name: 'Worklist' }).count()).to.equal(1);
      expect(await nav.getByRole('link', { name: 'Administration' }).count()).to.equal(0);
      await page.locator('.live.on').waitFor();
      expect(await axeViolations(page)).to.deep.equal([]);
      await page.screenshot({ path: path.join(artifacts, 'web-ui-worklist.png') });

      // Keyboard: Tab reaches the first row's link (with a visible focus ring), arrows move between rows.
      const firstLink = page.locator('tbody a.open').first();
      for (let i = 0; i < 40 && !(await firstLink.evaluate((a) => a === (globalThis as any).document.activeElement)); i++)
        await page.keyboard.press('Tab');
      expect(await firstLink.evaluate((a) => a === (globalThis as any).document.activeElement)).to.equal(true);
      const ring = await firstLink.evaluate((a) => (globalThis as any).getComputedStyle(a).outlineStyle);
      expect(ring).to.not.equal('none');
      await page.keyboard.press('ArrowDown');
      expect(
        await page
          .locator('tbody a.open')
          .nth(1)
          .evaluate((a) => a === (globalThis as any).document.activeElement),
      ).to.equal(true);

      // Pages by cursor.
      await page.getByRole('button', { name: 'Next page' }).click();
      await count.getByText(`Studies 51–${PAGING + 1} of ${PAGING + 1}`).waitFor();
      expect(await page.getByRole('button', { name: 'Next page' }).isDisabled()).to.equal(true);
      await page.getByRole('button', { name: 'Previous page' }).click();
      await count.getByText(`Studies 1–50 of ${PAGING + 1}`).waitFor();

      // Filters: patient text, then modality; the URL never holds them.
      await page.getByLabel('Patient name or ID').fill('lovelace');
      await page.getByRole('button', { name: 'Apply' }).click();
      await count.getByText('of 1').waitFor();
      expect(await page.locator('tbody tr').count()).to.equal(1);
      await page.getByRole('button', { name: 'Clear' }).click();
      await page.getByLabel('Modality').selectOption('CR');
      await page.getByRole('button', { name: 'Apply' }).click();
      await count.getByText(`of ${PAGING}`).waitFor();
      await page.getByLabel('Patient name or ID').fill('nobody-matches-this');
      await page.getByRole('button', { name: 'Apply' }).click();
      await page.getByText('No studies match these filters.').waitFor();
      await page.getByRole('button', { name: 'Clear' }).click();
      await count.getByText(`Studies 1–50 of ${PAGING + 1}`).waitFor();

      // storescu pushes a study: it appears without a reload (the marker survives), then its analysis state changes in place.
      await page.evaluate(() => ((globalThis as any).__noReload = true));
      const dir = await tempDir('web-ui');
      const live = makeCtSeries({ slices: 3, size: 16, patient: { id: 'LIVE-1', name: 'Live^Lara' }, studyDate: '20250101' });
      const paths = await Promise.all(
        live.map(async (f, i) => {
          const p = path.join(dir, `${i}.dcm`);
          await fsp.writeFile(p, f.bytes);
          return p;
        }),
      );
      const store = await storescu(node.dicomPort, paths);
      expect(store.code, store.stderr).to.equal(0);
      const row = page.locator('tbody tr', { hasText: 'Live, Lara' });
      await row.waitFor({ timeout: 20_000 });
      expect(await page.evaluate(() => (globalThis as any).__noReload)).to.equal(true);
      expect(await row.locator('td.num').textContent()).to.equal('3');
      expect(await row.locator('td.ai .badge').textContent()).to.equal('none');
      const token = await tokenFor(node, 'radiologist');
      const res = await fetch(`${baseUrl(node)}/api/analysis`, {
        method: 'POST',
        headers: { ...bearer(token), 'content-type': 'application/json' },
        body: JSON.stringify({ study_id: live[0]!.studyInstanceUid }),
      });
      expect(res.status).to.equal(202);
      // No engine on this node: queued, then failed, each shown in the row as it happens.
      await row.locator('td.ai .badge', { hasText: 'failed' }).waitFor({ timeout: 60_000 });
      expect(await page.evaluate(() => (globalThis as any).__noReload)).to.equal(true);
      await page.screenshot({ path: path.join(artifacts, 'web-ui-worklist-live.png') });

      // Tablet portrait: still usable (no page-wide horizontal scroll), still accessible.
      await page.setViewportSize({ width: 820, height: 1180 });
      expect(await page.evaluate(() => (globalThis as any).document.documentElement.scrollWidth)).to.be.at.most(821);
      expect(await axeViolations(page)).to.deep.equal([]);
      await page.screenshot({ path: path.join(artifacts, 'web-ui-worklist-tablet.png'), fullPage: true });

      // The study link goes to the review placeholder by id only.
      await row.locator('a.open').click();
      await page.getByRole('heading', { name: 'Study review' }).waitFor();
      expect(page.url()).to.match(/#\/studies\/[0-9]+$/);
      await page.getByText('LIVE-1').waitFor();
      await page.goBack();
      await page.getByRole('heading', { name: 'Worklist' }).waitFor();

      // Nothing of the session or the patients in browser storage.
      const stored = await browserStorage(page, context);
      expect(stored).to.equal('{"local":{},"session":{},"cookie":""}[]');

      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByRole('heading', { name: 'Sign in to RadiantAI' }).waitFor();
      expect(await page.getByRole('status').textContent()).to.equal('You signed out.');
      await page.screenshot({ path: path.join(artifacts, 'web-ui-signed-out.png') });
    } finally {
      await context.close();
    }
  });

  it('an admin sees Administration in the navigation; a viewer does not, and is refused there', async () => {
    const admin = await newPage();
    try {
      await signIn(admin.page, node, 'admin.ui');
      const link = admin.page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Administration' });
      await link.click();
      await admin.page.getByRole('heading', { name: 'Administration' }).waitFor();
      expect(admin.page.url()).to.match(/#\/admin$/);
      await admin.page.getByRole('link', { name: 'Users and roles' }).click();
      await admin.page.getByRole('heading', { name: 'Users and roles' }).waitFor();
      expect(await axeViolations(admin.page)).to.deep.equal([]);
      await admin.page.screenshot({ path: path.join(artifacts, 'web-ui-admin.png') });
    } finally {
      await admin.context.close();
    }
    const viewer = await newPage();
    try {
      await signIn(viewer.page, node, 'viewer.ui');
      await viewer.page.getByRole('heading', { name: 'Worklist' }).waitFor();
      expect(await viewer.page.getByRole('link', { name: 'Administration' }).count()).to.equal(0);
      await viewer.page.evaluate(() => ((globalThis as any).location.hash = '#/admin/users'));
      await viewer.page.getByText('Your role may not administer this node.').waitFor();
    } finally {
      await viewer.context.close();
    }
  });

  it('when the token expires the UI returns to sign-in and says so', async () => {
    const { context, page } = await newPage();
    try {
      await page.clock.install();
      await signIn(page, node, 'rad.ui');
      await page.getByRole('heading', { name: 'Worklist' }).waitFor();
      // The node's default TOKEN_EXPIRY_SECONDS (8 h), and a second more.
      await page.clock.fastForward(8 * 3600 * 1000 + 1000);
      await page.getByText('Your session expired. Please sign in again.').waitFor();
      expect(await page.getByLabel('Username').isVisible()).to.equal(true);
      await page.screenshot({ path: path.join(artifacts, 'web-ui-expired.png') });
    } finally {
      await context.close();
    }
  });

  it('no URL visited held a patient name or ID', () => {
    expect(visited.length).to.be.greaterThan(5);
    for (const url of visited) expect(url, url).to.not.match(/lovelace|ada-1|lara|live-1|paging|pg-\d/i);
  });
});

describe('web UI in Chromium with AUTH_DISABLED (a lab bench)', function () {
  this.timeout(120_000);
  let node: TestNode;
  let browser: Browser;

  before(async () => {
    ensureWebUiBuilt();
    node = await startTestNode({ AUTH_DISABLED: 'true' });
    await ingestFiles(node, makeCrImage({ size: 16, patient: { id: 'BENCH-1', name: 'Bench^Betty' } }));
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await node?.cleanup();
  });

  it('opens on the worklist without sign-in and says sign-in is off', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`${baseUrl(node)}/`);
    await page.getByRole('heading', { name: 'Worklist' }).waitFor();
    await page.getByText('Bench, Betty').waitFor();
    expect(await page.getByText('Sign-in disabled (lab bench)').isVisible()).to.equal(true);
    expect(await page.getByRole('button', { name: 'Sign out' }).count()).to.equal(0);
    expect(await page.getByRole('link', { name: 'Administration' }).count()).to.equal(1);
    await page.screenshot({ path: path.join(artifacts, 'web-ui-auth-disabled.png') });
  });
});
