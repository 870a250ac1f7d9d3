#!/usr/bin/env node
// The dependency rules of `npm run lint` (.dependency-cruiser.cjs), in three steps:
//  1. tools/lint/deps-source.mjs compiles the runtime code, type-only imports kept, into .cache/deps/js;
//  2. dependency-cruiser with --ignore-known: fails on any violation not in the baseline
//     (.dependency-cruiser-known-violations.json) and prints how many known ones remain;
//  3. the baseline may only shrink: an entry that no longer occurs fails here, with the command
//     that rewrites the file (`npm run lint:deps-baseline`).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const BASELINE = '.dependency-cruiser-known-violations.json';
const depcruise = path.join(root, 'node_modules/.bin/depcruise');
const args = ['-c', '.dependency-cruiser.cjs', '.cache/deps/js'];

function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
  if (r.error) throw r.error;
  return r;
}

/** One key per violation: rule, ends, and (for circles) the path round the circle. */
export function violationKey(v) {
  return [v.rule.name, v.type, v.from, v.to, ...(v.cycle ?? []).map((c) => c.name)].join(' | ');
}

/** Baseline entries that no longer occur among the current violations. */
export function staleEntries(baseline, current) {
  const now = new Set(current.map(violationKey));
  return baseline.filter((v) => !now.has(violationKey(v)));
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  if (run(process.execPath, ['tools/lint/deps-source.mjs'], { stdio: 'inherit' }).status !== 0) process.exit(1);

  const all = run(depcruise, [...args, '--no-ignore-known', '-T', 'json']);
  const current = JSON.parse(all.stdout).summary.violations;
  const baseline = JSON.parse(fs.readFileSync(path.join(root, BASELINE), 'utf8'));

  if (process.argv.includes('--write-baseline')) {
    // Drops what was fixed, never adds: a new violation stays an error until it is fixed.
    const known = new Set(baseline.map(violationKey));
    const kept = current.filter((v) => known.has(violationKey(v)));
    fs.writeFileSync(path.join(root, BASELINE), `${JSON.stringify(kept, null, 2)}\n`);
    console.log(`dependency rules: baseline rewritten, ${baseline.length} -> ${kept.length} known violations`);
    process.exit(0);
  }

  const check = run(depcruise, [...args, '--ignore-known', BASELINE, '-T', 'err'], { stdio: 'inherit' });
  const stale = staleEntries(baseline, current);
  const byRule = {};
  for (const v of baseline) byRule[v.rule.name] = (byRule[v.rule.name] ?? 0) + 1;
  console.log(
    `dependency rules: ${baseline.length} known violations left in ${BASELINE} (${Object.entries(byRule)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')})`,
  );
  if (stale.length > 0) {
    console.error(`dependency rules: ${stale.length} baseline entries no longer occur; the baseline only shrinks:`);
    for (const v of stale) console.error(`  ${violationKey(v)}`);
    console.error('  rewrite it with `npm run lint:deps-baseline` (and commit the smaller file)');
  }
  process.exit(check.status !== 0 || stale.length > 0 ? 1 : 0);
}
