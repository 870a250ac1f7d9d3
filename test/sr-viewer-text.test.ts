import { expect } from 'chai';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { makeCtSeries, writeSeries } from '../fixtures/generate.js';
import { apiClient } from './helpers/api.js';
import { isOhifCancelBug, launchChromium } from './helpers/browser.js';
import { storescu } from './helpers/dcmtk.js';
import { fakeEndpoint, okReply } from './helpers/fake-openai.js';
import { baseUrl, tokenFor } from './helpers/http.js';
import { startTestNode, tempDir, type TestNode } from './helpers/node.js';
import { until } from './helpers/until.js';
import { autoAnalysisEnv } from './helpers/ai-results.js';

/**
 * What OHIF 3 (served by the node) shows of a report, checked in Chromium (issue 16, item 4): a
 * report whose findings have no region opens as text, its findings' words and its impression on
 * screen, not as an all-black viewport (nor OHIF's error page). The auto-published draft of a
 * synthetic CT pushed by storescu to a node of its own, so no other test's forwarding counts change.
 * A report WITH a box shows only its boxes in OHIF's TID 1500 view: its impression and its box-less
 * findings are readable from the SR's text rendition, a series of its own ("(text)").
 */

interface Finding {
  description: string;
  anatomical_location: string;
  laterality: string;
  category: string;
  severity: string;
  confidence: number;
  image_numbers: number[];
  recommendation: string;
  region: { image_number: number; box_2d: number[] } | null;
}

const answer = (findings: Finding[], impression: string) =>
  JSON.stringify({ findings, measurements: [], impression, comparison_with_prior: '', technical_limitations: '' });

const TEXT_ONLY = {
  findings: [
    {
      description: 'Mild bronchial wall thickening in both lower lobes.',
      anatomical_location: 'lower lobes',
      laterality: 'bilateral',
      category: 'abnormal',
      severity: 'mild',
      confidence: 0.55,
      image_numbers: [2],
      recommendation: 'Clinical correlation.',
      region: null,
    },
  ],
  impression: 'Bronchial wall thickening, likely inflammatory.',
};

/** One finding with a box on image 3, one without: a report that is a TID 1500 SR. */
const WITH_BOX = {
  findings: [
    {
      description: 'Spiculated nodule in the right upper lobe.',
      anatomical_location: 'right upper lobe',
      laterality: 'right',
      category: 'abnormal',
      severity: 'moderate',
      confidence: 0.7,
      image_numbers: [3],
      recommendation: 'CT follow-up in 3 months.',
      region: { image_number: 3, box_2d: [300, 300, 600, 600] },
    },
    {
      description: 'Small left pleural effusion without a focal region.',
      anatomical_location: 'left pleural space',
      laterality: 'left',
      category: 'abnormal',
      severity: 'mild',
      confidence: 0.5,
      image_numbers: [4],
      recommendation: 'None.',
      region: null,
    },
  ],
  impression: 'Right upper lobe nodule, suspicious; small left effusion.',
};

describe('OHIF in Chromium: a report without regions is readable as text', function () {
  this.timeout(300_000);
  let node: TestNode;
  let fake: Awaited<ReturnType<typeof fakeEndpoint>>;
  let reply = '';
  const work: string[] = [];

  /** Pushes a synthetic CT and waits for its auto-published draft; the stand-in answers `content`. */
  async function publishedStudy(seed: string, content: { findings: Finding[]; impression: string }): Promise<string> {
    reply = answer(content.findings, content.impression);
    const files = makeCtSeries({ seed, slices: 5, size: 128 });
    const dir = await tempDir('sr-text-push');
    work.push(dir);
    const sent = await storescu(node.dicomPort, await writeSeries(dir, files));
    expect(sent.code, sent.stderr).to.equal(0);
    const study = files[0]!.studyInstanceUid;
    const api = apiClient(node, await tokenFor(node, 'viewer'));
    let seen = '';
    await until(
      `the auto-published report of ${seed}`,
      async () => {
        const list = await api.get<{ items: Array<{ id: number; trigger: string }> }>(`/api/studies/${study}/analyses`);
        const auto = list.body.items?.find((a) => a.trigger === 'auto');
        if (!auto) return undefined;
        const a = (await api.get<{ status: string; error: string | null; auto_publish: { status: string } }>(`/api/analysis/${auto.id}`))
          .body;
        seen = `${a.status} ${a.error ?? ''} ${JSON.stringify(a.auto_publish)}`;
        return a.auto_publish.status === 'published' || a.status === 'failed' ? true : undefined;
      },
      60_000,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}: ${seen}`);
    });
    expect(seen).to.match(/^succeeded .*"published"/);
    return study;
  }

  /** Opens the study in OHIF, then the SR series (the first, or the one `series` names), and waits for `text` on the page. */
  async function openSr(page: Page, study: string, text: string | RegExp, shot: string, series?: RegExp): Promise<string[]> {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => {
      // OHIF's own bug when a viewport switch cancels image loads in flight, not the node's (helpers/browser.ts).
      if (isOhifCancelBug(m.text())) return;
      if (/Error Boundary|TypeError/.test(m.text())) errors.push(m.text().slice(0, 300));
    });
    await page.addInitScript("localStorage.setItem('shownTours', JSON.stringify(['basicViewerTour']))");
    await page.goto(`${baseUrl(node)}/viewer/viewer?StudyInstanceUIDs=${study}&token=${await tokenFor(node, 'viewer')}`, {
      waitUntil: 'domcontentloaded',
    });
    const sr = series ? page.getByText(series).first() : page.getByText('SR', { exact: true }).first();
    await sr.waitFor({ timeout: 60_000 });
    await page.waitForLoadState('networkidle', { timeout: 30_000 }).catch(() => undefined);
    await sr.dblclick();
    await fsp.mkdir(path.resolve('test-artifacts'), { recursive: true });
    await page
      .getByText(text)
      .first()
      .waitFor({ timeout: 60_000 })
      .catch(async (err: unknown) => {
        await page.screenshot({ path: path.resolve('test-artifacts', `${shot}-failed.png`) });
        throw new Error(`"${text}" not shown: ${String(err)}; ${errors.join('; ')}`);
      });
    await page.waitForLoadState('networkidle', { timeout: 30_000 }).catch(() => undefined);
    await page.screenshot({ path: path.resolve('test-artifacts', `${shot}.png`) });
    return errors;
  }

  before(async () => {
    fake = await fakeEndpoint((req, res) => {
      req.resume();
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(okReply(reply));
      });
    });
    node = await startTestNode({
      ...autoAnalysisEnv(fake.url),
      MEDGEMMA_MAX_SLICES: '5',
    });
  });

  after(async () => {
    await node?.cleanup();
    await fake?.close();
    for (const d of work) await fsp.rm(d, { recursive: true, force: true });
  });

  it('a report with no region opens as text: its finding and impression on screen, not a black viewport', async () => {
    const study = await publishedStudy('sr-text-only', TEXT_ONLY);
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      const errors = await openSr(page, study, TEXT_ONLY.impression, 'viewer-sr-text-only');
      const shown = await page.locator('body').innerText();
      expect(shown).to.include(TEXT_ONLY.findings[0]!.description);
      expect(shown).to.include(TEXT_ONLY.impression);
      expect(errors).to.deep.equal([]);
    } finally {
      await browser.close();
    }
  });

  it('a report with a box: its text rendition shows the impression and the box-less finding', async () => {
    const study = await publishedStudy('sr-text-with-box', WITH_BOX);
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      const errors = await openSr(page, study, WITH_BOX.impression, 'viewer-sr-text-rendition', /\(text\)$/);
      const shown = await page.locator('body').innerText();
      // The series list has the TID 1500 SR and its text rendition, told apart by description.
      expect(shown).to.match(/AI DRAFT - not reviewed - R\d+ v1 \d{4}-\d\d-\d\d\n/);
      expect(shown).to.match(/AI DRAFT - not reviewed - R\d+ v1 \d{4}-\d\d-\d\d \(text\)/);
      expect(shown).to.include(WITH_BOX.impression);
      expect(shown).to.include(WITH_BOX.findings[1]!.description);
      expect(shown).to.include(WITH_BOX.findings[0]!.description);
      expect(errors).to.deep.equal([]);
    } finally {
      await browser.close();
    }
  });
});
