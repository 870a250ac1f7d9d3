import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { webUiDir } from '../../src/http/routes/web-ui.js';

/**
 * The web UI's build for tests that load it: `npm test` builds it first (npm run build:ui);
 * a test file run on its own builds it here when ui/dist is missing or older than ui/.
 */
const ROOT = path.resolve(webUiDir(), '..', '..');

function newestUnder(dir: string): number {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'dist' || e.name === 'node_modules') continue;
    const p = path.join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestUnder(p) : fs.statSync(p).mtimeMs);
  }
  return newest;
}

export function ensureWebUiBuilt(): void {
  const index = path.join(webUiDir(), 'index.html');
  if (fs.existsSync(index) && fs.statSync(index).mtimeMs >= newestUnder(path.join(ROOT, 'ui'))) return;
  const vite = path.join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
  const r = spawnSync(process.execPath, [vite, 'build', '--config', 'ui/vite.config.mjs'], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`vite build failed: ${r.stderr || r.stdout}`);
}

const axeSource = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

/** Signs in through the web UI's form at `base` (the node's URL). */
export async function signInAs(page: Page, base: string, username: string, password: string): Promise<void> {
  await page.goto(`${base}/`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** axe-core in the page: serious and critical violations, by rule id and the elements hit. */
export async function axeViolations(page: Page): Promise<string[]> {
  // Evaluated through the DevTools protocol: the page's CSP (no inline scripts) rightly refuses a script tag.
  await page.evaluate(await fsp.readFile(axeSource, 'utf8'));
  const result = (await page.evaluate(() => {
    const g = globalThis as any;
    return g.axe.run(g.document, { resultTypes: ['violations'] });
  })) as {
    violations: Array<{ id: string; impact: string; nodes: Array<{ target: string[] }> }>;
  };
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

/** What the page keeps: web storage and cookies, as one string to search. */
export async function browserStorage(page: Page, context: BrowserContext): Promise<string> {
  const inPage = await page.evaluate(() => {
    const g = globalThis as any;
    const dump = (s: any) => Object.fromEntries(Array.from({ length: s.length }, (_, i) => [s.key(i), s.getItem(s.key(i))]));
    return JSON.stringify({ local: dump(g.localStorage), session: dump(g.sessionStorage), cookie: g.document.cookie });
  });
  return inPage + JSON.stringify(await context.cookies());
}
