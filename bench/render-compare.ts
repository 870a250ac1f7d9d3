/**
 * The render pipeline's display decoder against dcmjs-imaging (the display decoder before it):
 * frame 1 of every file in the corpus (RADIANT_CORPUS, default /work/shared/dicom) rendered both
 * ways, unencoded, in this thread. Prints a row for each file that renders on one side only,
 * differs in size, differs by more than 2 grey levels, or is more than 2x slower, then totals.
 *
 *   npx tsc -p . && node dist/bench/render-compare.js [--all]
 */
import fs from 'node:fs';
import path from 'node:path';
import { ImagingSource } from './imaging-source.js';
import { RenderSource } from '../src/dicom/render/render-image.js';
import type { DisplayPixels } from '../src/dicom/render/render-types.js';
import { FrameDecoder } from '../src/dicom/render/frame-decoder.js';

const root = process.env.RADIANT_CORPUS ?? '/work/shared/dicom';
const all = process.argv.includes('--all');
const log = { warn: () => undefined };
const MAX_PIXELS = 2 ** 28;

function files(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : e.name.endsWith('.tsv') ? [] : [path.join(dir, e.name)]));
}

function rgb(p: DisplayPixels): Uint8Array {
  const n = p.width * p.height;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) out[3 * i + c] = p.channels === 1 ? p.data[i]! : p.data[p.channels * i + c]!;
  return out;
}

type Outcome = { ok: true; px: DisplayPixels; ms: number } | { ok: false; error: string; ms: number };

async function run(fn: () => Promise<DisplayPixels>): Promise<Outcome> {
  const t0 = performance.now();
  try {
    const px = await fn();
    return { ok: true, px, ms: performance.now() - t0 };
  } catch (err) {
    return { ok: false, error: (err instanceof Error ? err.message : String(err)).slice(0, 60), ms: performance.now() - t0 };
  }
}

/** Whether the pipeline's own decoder (no fallback) reads frame 1. */
async function ownDecoder(bytes: Buffer): Promise<boolean> {
  try {
    (await FrameDecoder.open(bytes)).decode(0);
    return true;
  } catch {
    return false;
  }
}

const list = files(root).sort();
const ab = (f: string): ArrayBuffer => {
  const b = fs.readFileSync(f);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
};
// Warm both (WebAssembly start-up) on the first file.
await run(async () => (await ImagingSource.open(ab(list[0]!), log, MAX_PIXELS)).pixels(1));
await run(async () => (await RenderSource.open(ab(list[0]!), MAX_PIXELS)).pixels(1));

let oldTotal = 0;
let newTotal = 0;
const counts = { both: 0, neither: 0, onlyOld: 0, onlyNew: 0, sizeDiff: 0, within2: 0, over2: 0, slower2x: 0, fallback: 0 };
console.log(['file', 'old ms', 'new ms', 'old', 'new', 'max diff', '>2 px %', 'own decoder'].join('\t'));
for (const f of list) {
  const name = path.relative(root, f);
  const o = await run(async () => (await ImagingSource.open(ab(f), log, MAX_PIXELS)).pixels(1));
  const n = await run(async () => (await RenderSource.open(ab(f), MAX_PIXELS)).pixels(1));
  oldTotal += o.ms;
  newTotal += n.ms;
  const own = await ownDecoder(fs.readFileSync(f));
  if (n.ok && !own) counts.fallback++;
  let maxDiff = '';
  let over = '';
  let notable = all;
  if (o.ok && n.ok) {
    counts.both++;
    if (o.px.width !== n.px.width || o.px.height !== n.px.height) {
      counts.sizeDiff++;
      maxDiff = `size ${o.px.width}x${o.px.height} vs ${n.px.width}x${n.px.height}`;
      notable = true;
    } else {
      const a = rgb(o.px);
      const b = rgb(n.px);
      let m = 0;
      let k = 0;
      for (let i = 0; i < a.length; i++) {
        const d = Math.abs(a[i]! - b[i]!);
        if (d > m) m = d;
        if (d > 2) k++;
      }
      maxDiff = String(m);
      over = ((100 * k) / a.length).toFixed(2);
      if (m > 2) {
        counts.over2++;
        notable = true;
      } else counts.within2++;
    }
    if (n.ms > 2 * o.ms && n.ms > 20) {
      counts.slower2x++;
      notable = true;
    }
  } else if (o.ok) {
    counts.onlyOld++;
    notable = true;
  } else if (n.ok) {
    counts.onlyNew++;
    notable = true;
  } else counts.neither++;
  if (notable) {
    const st = (x: Outcome) => (x.ok ? 'ok' : x.error);
    console.log([name, o.ms.toFixed(1), n.ms.toFixed(1), st(o), st(n), maxDiff, over, own ? 'yes' : 'fallback'].join('\t'));
  }
}
console.log(`\n${list.length} files, frame 1 of each`);
console.log(`total ms: dcmjs-imaging ${oldTotal.toFixed(0)}, pipeline ${newTotal.toFixed(0)}`);
console.log(JSON.stringify(counts));
