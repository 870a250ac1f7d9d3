#!/usr/bin/env node
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Fetches the prebuilt OHIF viewer (npm package @ohif/app, its dist/) into .cache/ohif/<version>.
 * `npm install @ohif/app` cannot be used: every published version pins sibling @ohif/* versions
 * the registry does not serve, so the install fails. `npm pack` fetches the package tarball alone.
 * Idempotent; without --strict a failure (an offline site) only warns and the node runs without
 * /viewer.
 */

export const OHIF_VERSION = '3.13.2';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export function fetchedOhifDist(root = projectRoot): string {
  return path.join(root, '.cache', 'ohif', OHIF_VERSION, 'package', 'dist');
}

function main(): number {
  const strict = process.argv.includes('--strict');
  const dist = fetchedOhifDist();
  if (fs.existsSync(path.join(dist, 'index.html'))) return 0;
  const target = path.dirname(path.dirname(dist));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'radiant-ohif-'));
  try {
    const out = execFileSync('npm', ['pack', `@ohif/app@${OHIF_VERSION}`, '--pack-destination', tmp, '--silent'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const tgz = path.join(tmp, out.trim().split('\n').pop()!.trim());
    fs.mkdirSync(target, { recursive: true });
    execFileSync('tar', ['-xzf', tgz, '-C', target]);
    if (!fs.existsSync(path.join(dist, 'index.html'))) throw new Error('the package has no dist/index.html');
    console.log(`OHIF viewer ${OHIF_VERSION} fetched into ${path.relative(process.cwd(), dist)}`);
    return 0;
  } catch (err) {
    const msg = err instanceof Error ? err.message.split('\n')[0] : String(err);
    console.error(`${strict ? 'error' : 'warning'}: could not fetch the OHIF viewer (${msg}); /viewer will answer 503`);
    return strict ? 1 : 0;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) process.exitCode = main();
