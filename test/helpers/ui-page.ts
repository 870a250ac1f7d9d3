import fsp from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Page } from 'playwright-core';
import { baseUrl } from './http.js';
import type { TestNode } from './node.js';

/** Driving the web UI in a page: sign-in through the form, axe-core's serious and critical findings. */

const axeSource = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

export async function signInPage(page: Page, node: TestNode, username: string, password: string): Promise<void> {
  await page.goto(`${baseUrl(node)}/`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** axe-core in the page: serious and critical violations, by rule id and the elements hit. */
export async function seriousAxeViolations(page: Page): Promise<string[]> {
  // Evaluated through the DevTools protocol: the page's CSP (no inline scripts) rightly refuses a script tag.
  await page.evaluate(await fsp.readFile(axeSource, 'utf8'));
  const result = (await page.evaluate(() => {
    const g = globalThis as any;
    return g.axe.run(g.document, { resultTypes: ['violations'] });
  })) as { violations: Array<{ id: string; impact: string; nodes: Array<{ target: string[] }> }> };
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}
