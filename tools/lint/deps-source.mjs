#!/usr/bin/env node
// Compiles the runtime code (src, dimse, dicomweb, storage, migrations) into .cache/deps/ with
// every import kept, type-only ones included, so dependency-cruiser sees the whole import graph.
// Why not dependency-cruiser's own TypeScript support: it needs the TypeScript compiler's JS API,
// which TypeScript 7 (a native binary) no longer ships; and plain `tsc` output erases type-only
// imports (`import type { Core } from '../app.js'`), which are exactly the upward ties we check.
// So: copy the sources, turn `import type` / `{ type X }` into value imports, and emit with
// `verbatimModuleSyntax` (imports are emitted as written). The copy is never run, only read; the
// type errors that rewrite causes are expected and ignored.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const out = path.join(root, '.cache/deps');
export const RUNTIME_DIRS = ['src', 'dimse', 'dicomweb', 'storage', 'migrations'];

/** Import/export-from statements (possibly spanning lines) with their `type` modifiers dropped. */
export function keepTypeImports(source) {
  return source.replace(/^(import|export)\b[^;]*?\bfrom\s*['"][^'"]+['"]/gms, (stmt) =>
    stmt.replace(/^(import|export)\s+type\s+/, '$1 ').replace(/([{,]\s*)type\s+(?=[\w$]+\s*(?:as\s+[\w$]+\s*)?[,}])/g, '$1'),
  );
}

function copyTree(from, to) {
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const src = path.join(from, entry.name);
    const dst = path.join(to, entry.name);
    if (entry.isDirectory()) copyTree(src, dst);
    else if (entry.name.endsWith('.ts')) {
      fs.mkdirSync(to, { recursive: true });
      fs.writeFileSync(dst, entry.name.endsWith('.d.ts') ? fs.readFileSync(src) : keepTypeImports(fs.readFileSync(src, 'utf8')));
    }
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  fs.rmSync(out, { recursive: true, force: true });
  for (const dir of RUNTIME_DIRS) copyTree(path.join(root, dir), path.join(out, 'ts', dir));
  fs.copyFileSync(path.join(root, 'package.json'), path.join(out, 'ts/package.json'));
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(out, 'ts/node_modules'));
  const tsconfig = JSON.parse(fs.readFileSync(path.join(root, 'tsconfig.json'), 'utf8'));
  tsconfig.compilerOptions = {
    ...tsconfig.compilerOptions,
    outDir: '../js',
    verbatimModuleSyntax: true,
    noEmitOnError: false,
    sourceMap: false,
  };
  tsconfig.include = RUNTIME_DIRS;
  fs.writeFileSync(path.join(out, 'ts/tsconfig.json'), JSON.stringify(tsconfig, null, 2));
  const tsc = spawnSync(path.join(root, 'node_modules/.bin/tsc'), ['-p', path.join(out, 'ts')], { encoding: 'utf8' });
  if (!fs.existsSync(path.join(out, 'js/src/app.js'))) {
    process.stderr.write(`${tsc.stdout}${tsc.stderr}\ndeps-source: tsc emitted nothing into ${out}/js\n`);
    process.exit(1);
  }
}
