import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
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
