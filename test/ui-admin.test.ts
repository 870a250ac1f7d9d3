import { expect } from 'chai';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { makeCrImage } from '../fixtures/generate.js';
import { createUser } from '../src/auth/users.js';
import { ingestFiles } from './helpers/api.js';
import { launchChromium } from './helpers/browser.js';
import { startStorescp, type ReferenceScp } from './helpers/dcmtk.js';
import { fakeEndpoint, okReply } from './helpers/fake-openai.js';
import { startRisPeer, type RisPeer } from './helpers/hl7.js';
import { freePort, startTestNode, tempDir, type TestNode } from './helpers/node.js';
import { baseUrl } from './helpers/http.js';
import { axeViolations, ensureWebUiBuilt, signInAs } from './helpers/web-ui.js';

/**
 * The administration screens in Chromium against a real node (issue 18 item 4, issue 19 item 4):
 * an admin creates a user who then signs in, adds a DCMTK storescp as a remote node and C-ECHOes
 * it, creates a forwarding rule, retries a failed job from the queue, sees the AI engine (a
 * stand-in OpenAI-compatible endpoint) and runs its test call, reads the auto-analysis settings,
 * searches the audit trail and downloads it as CSV, sees the storage figures, creates an HL7
 * integration and tests it against an MLLP peer. axe-core on every screen; destructive actions
 * ask first; a radiologist sees no Administration. Screenshots go to test-artifacts/ui-admin-*.png.
 */

const artifacts = path.resolve('test-artifacts');
const PASSWORD = 'admin ui password 1';
const NEW_PASSWORD = 'newbie password 22';

describe('web UI administration in Chromium', function () {
  this.timeout(240_000);
  let node: TestNode;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let scp: ReferenceScp;
  let ris: RisPeer;
  let engine: Awaited<ReturnType<typeof fakeEndpoint>>;
  const visited: string[] = [];

  const open = async (section: string, title: string) => {
    await page.getByRole('navigation', { name: 'Administration' }).getByRole('link', { name: title, exact: true }).click();
    await page.getByRole('heading', { level: 2, name: title }).waitFor();
    expect(page.url()).to.match(new RegExp(`#/admin/${section}$`));
  };
  const axeClean = async (name: string) => {
    expect(await axeViolations(page), name).to.deep.equal([]);
    await page.screenshot({ path: path.join(artifacts, `ui-admin-${name}.png`), fullPage: true });
  };

  before(async () => {
    ensureWebUiBuilt();
    await fsp.mkdir(artifacts, { recursive: true });
    engine = await fakeEndpoint((req, res) => {
      req.resume();
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(okReply(JSON.stringify({ answer: 'a bright disc' })));
      });
    });
    node = await startTestNode({
      MEDGEMMA_BACKEND: 'remote',
      MEDGEMMA_API_ENDPOINT: engine.url,
      AUTO_ANALYZE: 'rules',
      AUTO_ANALYZE_RULES: JSON.stringify([{ modalities: ['CT'], bodyParts: ['CHEST'] }]),
    });
    await createUser(node.db, { username: 'admin.console', password: PASSWORD, role: 'admin', fullName: 'Console Admin' });
    await createUser(node.db, { username: 'rad.console', password: PASSWORD, role: 'radiologist' });
    await ingestFiles(node, makeCrImage({ size: 16, patient: { id: 'ADM-PAT-1', name: 'Admin^Patricia' } }));
    scp = await startStorescp(await freePort(), await tempDir('ui-admin-scp'), { aeTitle: 'UISCP' });
    ris = await startRisPeer();
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
    page = await context.newPage();
    page.on('framenavigated', (f) => {
      if (f === page.mainFrame()) visited.push(f.url());
    });
    await signInAs(page, baseUrl(node), 'admin.console', PASSWORD);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Administration' }).click();
    await page.getByRole('heading', { level: 1, name: 'Administration' }).waitFor();
  });
  after(async () => {
    await browser?.close();
    await scp?.stop();
    await ris?.stop();
    await engine?.close();
    await node?.cleanup();
  });

  it('users: a form error names the field; the admin creates a user, who can then sign in; disabling asks first', async () => {
    await open('users', 'Users and roles');
    await page.getByRole('cell', { name: 'admin.console', exact: true }).waitFor();
    await page.getByRole('button', { name: 'New user' }).click();
    const form = page.getByRole('form', { name: 'New user' });
    await form.getByLabel('Username').fill('ui.newbie');
    await form.getByLabel('Password').fill('short');
    await form.getByRole('button', { name: 'Create user' }).click();
    await form.getByRole('alert').getByText('Check the fields marked below.').waitFor();
    expect(await form.getByLabel('Password').getAttribute('aria-invalid')).to.equal('true');
    expect(await form.locator('#u-password-error').textContent()).to.equal('At least 10 characters.');
    await form.getByLabel('Password').fill(NEW_PASSWORD);
    await form.getByLabel('Role').selectOption('technician');
    await form.getByLabel('Full name').fill('Nina Newbie');
    await form.getByRole('button', { name: 'Create user' }).click();
    await page.getByText('User ui.newbie created.').waitFor();
    const row = page.locator('tr[data-user="ui.newbie"]');
    expect(await row.locator('td').nth(2).textContent()).to.equal('technician');
    await axeClean('users');

    // Edit: the role changes.
    await page.getByRole('button', { name: 'Edit ui.newbie' }).click();
    await page.getByRole('form', { name: 'Edit ui.newbie' }).getByLabel('Role').selectOption('radiologist');
    await page.getByRole('form', { name: 'Edit ui.newbie' }).getByRole('button', { name: 'Save' }).click();
    await page.getByText('ui.newbie saved.').waitFor();
    await row.locator('td:nth-child(3)', { hasText: 'radiologist' }).waitFor();

    // The new user signs in (in another browser context) and sees the worklist, no Administration.
    const other = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const p = await other.newPage();
      await signInAs(p, baseUrl(node), 'ui.newbie', NEW_PASSWORD);
      await p.getByRole('heading', { name: 'Worklist' }).waitFor();
      expect(await p.getByText('Nina Newbie').count()).to.equal(1);
      expect(await p.getByRole('link', { name: 'Administration' }).count()).to.equal(0);
    } finally {
      await other.close();
    }

    // Disabling asks first: Cancel keeps the user active, confirming disables.
    await page.getByRole('button', { name: 'Disable ui.newbie' }).click();
    const dialog = page.getByRole('dialog', { name: 'Please confirm' });
    await dialog.waitFor();
    expect(await dialog.getByRole('button', { name: 'Cancel' }).evaluate((b) => b === (globalThis as any).document.activeElement)).to.equal(
      true,
    );
    await axeClean('users-confirm');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    expect(await row.getByText('active').count()).to.equal(1);
    await page.getByRole('button', { name: 'Disable ui.newbie' }).click();
    await dialog.getByRole('button', { name: 'Disable user' }).click();
    await page.getByText('ui.newbie disabled.').waitFor();
    const login = await fetch(`${new URL(page.url()).origin}/api/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: 'ui.newbie', password: NEW_PASSWORD }),
    });
    expect(login.status).to.equal(401);
  });

  it('DICOM nodes: the admin adds a storescp and C-ECHOes it; an unreachable node says why; deleting asks first', async () => {
    await open('nodes', 'DICOM nodes');
    await page.getByText('No remote nodes yet', { exact: false }).waitFor();
    await page.getByRole('button', { name: 'New node' }).click();
    const form = page.getByRole('form', { name: 'New node' });
    await form.getByRole('button', { name: 'Add node' }).click();
    expect(await form.locator('#n-ae-error').textContent()).to.equal('Enter the AE title (up to 16 characters).');
    await form.getByLabel('AE title').fill('UISCP');
    await form.getByLabel('Host', { exact: true }).fill('127.0.0.1');
    await form.getByLabel('Port', { exact: true }).fill(String(scp.port));
    await form.getByLabel('Description').fill('DCMTK storescp');
    await form.getByRole('button', { name: 'Add node' }).click();
    await page.getByText('Node UISCP added.').waitFor();
    await page.getByRole('button', { name: 'C-ECHO UISCP' }).click();
    const ok = page.locator('tr[data-node="UISCP"] .echo');
    await ok.waitFor();
    expect(await ok.textContent()).to.match(/^C-ECHO succeeded in [0-9.]+ ms$/);
    await axeClean('nodes');

    // A node nobody listens on: the C-ECHO fails with the reason.
    const closed = await freePort();
    await page.getByRole('button', { name: 'New node' }).click();
    const form2 = page.getByRole('form', { name: 'New node' });
    await form2.getByLabel('AE title').fill('NOBODY');
    await form2.getByLabel('Host', { exact: true }).fill('127.0.0.1');
    await form2.getByLabel('Port', { exact: true }).fill(String(closed));
    await form2.getByRole('button', { name: 'Add node' }).click();
    await page.getByText('Node NOBODY added.').waitFor();
    await page.getByRole('button', { name: 'C-ECHO NOBODY' }).click();
    const bad = page.locator('tr[data-node="NOBODY"] .echo');
    await bad.waitFor({ timeout: 30_000 });
    expect(await bad.textContent()).to.match(/^C-ECHO failed: /);
    await page.getByRole('button', { name: 'Delete NOBODY' }).click();
    const dialog = page.getByRole('dialog', { name: 'Please confirm' });
    await dialog.getByRole('button', { name: 'Delete node' }).click();
    await page.getByText('Node NOBODY deleted.').waitFor();
    await page.locator('tr[data-node="NOBODY"]').waitFor({ state: 'detached' });
    expect(await page.locator('tr[data-node="UISCP"]').count()).to.equal(1);
  });

  it('forwarding and jobs: the admin creates a rule; a failed job shows its last error and is retried from the queue', async () => {
    const job = await node.queue.enqueue({ kind: 'test.ui-dead-letter', payload: {}, maxAttempts: 1 });
    expect((await node.queue.claim('ui-test', ['test.ui-dead-letter']))?.id).to.equal(job.id);
    expect(await node.queue.fail(job.id, 'ui-test', 'peer refused: connection reset', { retryable: true })).to.equal('failed');

    await open('forwarding', 'Forwarding and jobs');
    await page.getByText('No forwarding rules: nothing is sent on.').waitFor();
    await page.getByRole('button', { name: 'New rule' }).click();
    const form = page.getByRole('form', { name: 'New forwarding rule' });
    await form.getByLabel('Rule name').fill('CT to UISCP');
    await form.getByLabel('Send to').selectOption({ label: `UISCP (127.0.0.1:${scp.port})` });
    await form.getByLabel('Modalities').fill('ct, mr');
    await form.getByLabel('dimse').check();
    await form.getByRole('button', { name: 'Create rule' }).click();
    await page.getByText('Rule "CT to UISCP" created.').waitFor();
    const rule = page.locator('tr[data-rule="CT to UISCP"]');
    expect(await rule.locator('td').nth(1).textContent()).to.equal('UISCP');
    expect(await rule.locator('td').nth(2).textContent()).to.equal('modality CT, MR; source dimse');
    const api = await node.db('forwarding_rules').select('name', 'node_id');
    expect(api.map((r: { name: string }) => r.name)).to.deep.equal(['CT to UISCP']);

    // The job queue: depth by kind and status, the dead letter with its error, retried.
    const depth = page.getByRole('table', { name: 'Queue depth by kind and status' });
    expect(
      await depth
        .getByRole('row', { name: /test\.ui-dead-letter/ })
        .locator('td')
        .nth(2)
        .textContent(),
    ).to.equal('1');
    const jobRow = page.locator(`tr[data-job="${job.id}"]`);
    expect(await jobRow.locator('td').nth(4).textContent()).to.equal('peer refused: connection reset');
    await axeClean('forwarding');
    await page.getByRole('button', { name: `Retry job ${job.id}` }).click();
    await page.getByText(`Job ${job.id} (test.ui-dead-letter) queued again.`).waitFor();
    expect((await node.queue.get(job.id))?.status).to.equal('pending');
    // The failed list no longer holds it.
    await jobRow.waitFor({ state: 'detached' });
  });

  it('AI engine: model, state, device and queue; the test call shows its latency and answer; auto-analysis is read-only', async () => {
    await open('engine', 'AI engine');
    const dl = page.getByRole('definition').first();
    await dl.waitFor();
    expect(await page.locator('dl.summary').textContent()).to.include('remote');
    expect(await page.locator('dl.summary dd').first().textContent()).to.match(/^ready since/);
    await page.getByRole('button', { name: 'Run a test call' }).click();
    const result = page.locator('.test-result');
    await result.waitFor({ timeout: 60_000 });
    expect(await result.locator('p').textContent()).to.match(/^The engine answered in [0-9]+ ms \(remote\)\.$/);
    expect(JSON.parse((await result.locator('pre').textContent()) ?? '')).to.deep.equal({ answer: 'a bright disc' });
    await axeClean('engine');

    await open('auto-analysis', 'Auto-analysis');
    const settings = page.getByRole('definition');
    await settings.first().waitFor();
    expect(await settings.first().textContent()).to.equal('rules');
    expect(await page.getByRole('table', { name: 'Auto-analysis rules' }).textContent()).to.include('modalities: CT; bodyParts: CHEST');
    expect(await page.locator('.admin input, .admin select').count()).to.equal(0);
    await axeClean('auto-analysis');
  });

  it('audit trail: a search by action, pages, and the CSV downloaded through fetch (no token in any URL)', async () => {
    // Enough rows for a second page: the node's own audit writer, as a request would.
    for (let i = 0; i < 60; i++) await node.audit.record({ actorType: 'system', action: 'test.ui-filler', outcome: 'success' });
    await open('audit', 'Audit trail');
    await page.locator('p.count').waitFor();
    await page.getByLabel('Action').fill('user.create');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.locator('p.count', { hasText: 'Rows 1–1 of 1' }).waitFor();
    const row = page.locator('tbody tr[data-audit]');
    expect(await row.locator('td').nth(1).textContent()).to.equal('admin.console');
    expect(await row.locator('td').nth(7).textContent()).to.include('ui.newbie');
    await axeClean('audit');

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export CSV' }).click()]);
    expect(download.url()).to.match(/^blob:/);
    expect(download.suggestedFilename()).to.match(/^audit-.*\.csv$/);
    const csv = await fsp.readFile((await download.path())!, 'utf8');
    const lines = csv.trim().split('\r\n');
    expect(lines[0]).to.equal(
      'id,at,actorType,actor,peer,action,resourceType,resourceId,patientId,studyInstanceUid,outcome,status,details,model,promptHash',
    );
    expect(lines).to.have.length(2);
    expect(lines[1]).to.include(',admin.console,').and.include(',user.create,').and.include('ui.newbie');
    await page.getByText('Exported 1 row.').waitFor();

    // No match: the empty state. Clear: every row again, paged.
    await page.getByLabel('Action').fill('no.such.action');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByText('No audit rows match.').waitFor();
    await page.getByRole('button', { name: 'Clear' }).click();
    await page.locator('p.count', { hasText: /^Rows 1–50 of / }).waitFor();
    await page.getByRole('button', { name: 'Next page' }).click();
    await page.locator('p.count', { hasText: /^Rows 51–/ }).waitFor();
  });

  it('storage and database: the index counts, bytes, free disk and the database size', async () => {
    await open('storage', 'Storage and database');
    const index = page.getByRole('definition');
    await index.first().waitFor();
    const figures = await page.locator('dl[aria-label="Index figures"] dd').allTextContents();
    expect(figures.slice(0, 4)).to.deep.equal(['1', '1', '1', '1']);
    expect(figures[4]).to.match(/^[0-9.]+ (B|KiB|MiB)$/);
    expect(await page.locator('dl[aria-label="Storage figures"]').textContent()).to.match(/local.*of/);
    expect(await page.locator('dl[aria-label="Database figures"]').textContent()).to.match(/^DialectSQLiteSize[0-9.]+ (KiB|MiB)$/);
    await axeClean('storage');
  });

  it('integrations: the admin creates an HL7 integration, tests it against an MLLP peer, and opens its delivery log', async () => {
    await open('integrations', 'Integrations');
    await page.getByText('No integrations', { exact: false }).waitFor();
    await page.getByRole('button', { name: 'New integration' }).click();
    const form = page.getByRole('form', { name: 'New integration' });
    await form.getByLabel('Name', { exact: true }).fill('Main RIS');
    await form.getByLabel('Host', { exact: true }).fill('127.0.0.1');
    await form.getByLabel('Port', { exact: true }).fill(String(ris.port));
    await form.getByLabel('Receiving application (MSH-5)').fill('RIS');
    await form.getByRole('button', { name: 'Create integration' }).click();
    await page.getByText('Integration "Main RIS" created.').waitFor();
    const row = page.locator('tr[data-integration="Main RIS"]');
    expect(await row.locator('td').nth(1).textContent()).to.equal('HL7 v2 (MLLP)');
    expect(await row.locator('td').nth(3).textContent()).to.equal('sign');
    await page.getByRole('button', { name: 'Test Main RIS' }).click();
    const out = row.locator('.echo');
    await out.waitFor({ timeout: 30_000 });
    expect(await out.textContent()).to.match(/^Test succeeded in [0-9]+ ms \(AA\)/);
    expect(ris.received).to.have.length(1);
    await page.getByRole('button', { name: 'Deliveries of Main RIS' }).click();
    await page.getByText('No deliveries yet.').waitFor();
    await axeClean('integrations');

    // Tablet portrait: no page-wide horizontal scroll, still accessible.
    await page.setViewportSize({ width: 820, height: 1180 });
    expect(await page.evaluate(() => (globalThis as any).document.documentElement.scrollWidth)).to.be.at.most(821);
    expect(await axeViolations(page)).to.deep.equal([]);
    await page.screenshot({ path: path.join(artifacts, 'ui-admin-integrations-tablet.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it('keyboard: the sections are reachable by Tab with a visible focus ring', async () => {
    await open('users', 'Users and roles');
    const link = page.getByRole('navigation', { name: 'Administration' }).getByRole('link', { name: 'DICOM nodes' });
    for (let i = 0; i < 30 && !(await link.evaluate((a) => a === (globalThis as any).document.activeElement)); i++)
      await page.keyboard.press('Tab');
    expect(await link.evaluate((a) => a === (globalThis as any).document.activeElement)).to.equal(true);
    expect(await link.evaluate((a) => (globalThis as any).getComputedStyle(a).outlineStyle)).to.not.equal('none');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 2, name: 'DICOM nodes' }).waitFor();
  });

  it('a radiologist sees no Administration and is refused there; nothing of the session or patients in storage or URLs', async () => {
    const other = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const p = await other.newPage();
      await signInAs(p, baseUrl(node), 'rad.console', PASSWORD);
      await p.getByRole('heading', { name: 'Worklist' }).waitFor();
      expect(await p.getByRole('link', { name: 'Administration' }).count()).to.equal(0);
      await p.evaluate(() => ((globalThis as any).location.hash = '#/admin/users'));
      await p.getByText('Your role may not administer this node.').waitFor();
      expect(await p.getByRole('button', { name: 'New user' }).count()).to.equal(0);
    } finally {
      await other.close();
    }
    const stored = await page.evaluate(() => {
      const g = globalThis as any;
      return JSON.stringify([g.localStorage.length, g.sessionStorage.length, g.document.cookie]);
    });
    expect(stored).to.equal('[0,0,""]');
    expect(visited.length).to.be.greaterThan(5);
    for (const url of visited) expect(url, url).to.match(/^http:\/\/[^/]+\/(#\/(admin(\/[a-z-]+)?|worklist)?)?$/);
  });
});
