/**
 * The AI latency bench's model: fixtures/medgemma-shapes.ts written once into
 * models/medgemma-4b-shapes/ (git-ignored) — the text model quantized to Q4_K_M by llama.cpp's
 * own llama-quantize (built from the source node-llama-cpp ships, build-llama.ts), the
 * projector in F16. The ~7.8 GB F16 intermediate lives beside the folder only while quantizing.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { writeMedgemma4bMmprojF16, writeMedgemma4bTextF16 } from '../fixtures/medgemma-shapes.js';
import { ensureLlamaTool, type LlamaBuildOptions } from '../src/medgemma/build/build-llama.js';

export interface ShapesModel {
  dir: string;
  model: string;
  mmproj: string;
  /** True when this call generated the files (how long it took is in generateSeconds). */
  generated: boolean;
  generateSeconds: number;
}

function quantize(tool: string, from: string, to: string, log: (s: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(tool, [from, to, 'Q4_K_M'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const keep = (d: Buffer) => (tail = (tail + d.toString()).slice(-4000));
    c.stdout.on('data', keep);
    c.stderr.on('data', keep);
    c.on('error', reject);
    c.on('close', (code) => {
      if (code === 0) return resolve();
      log(tail);
      reject(new Error(`llama-quantize exited ${code}`));
    });
  });
}

/** The cached Q4_K_M model + F16 projector, generated on first use. */
export async function ensureShapesModel(
  modelsDir: string,
  opts: { log?: (s: string) => void; build?: LlamaBuildOptions } = {},
): Promise<ShapesModel> {
  const log = opts.log ?? ((s: string) => process.stderr.write(`[bench:ai] ${s}\n`));
  const dir = path.join(modelsDir, 'medgemma-4b-shapes');
  const model = path.join(dir, 'medgemma-4b-shapes-Q4_K_M.gguf');
  const mmproj = path.join(dir, 'mmproj-medgemma-4b-shapes-F16.gguf');
  if (fs.existsSync(model) && fs.existsSync(mmproj)) return { dir, model, mmproj, generated: false, generateSeconds: 0 };
  const t0 = performance.now();
  fs.mkdirSync(dir, { recursive: true });
  // Partial files never carry a final name, so an interrupted run starts again instead of reusing them.
  if (!fs.existsSync(mmproj)) {
    log('writing the SigLIP-400M projector (F16, ~0.85 GB)');
    writeMedgemma4bMmprojF16(`${mmproj}.partial`);
    fs.renameSync(`${mmproj}.partial`, mmproj);
  }
  if (!fs.existsSync(model)) {
    const tool = await ensureLlamaTool('llama-quantize', { log, ...opts.build });
    const f16 = path.join(modelsDir, '.medgemma-4b-shapes-F16.gguf.partial');
    try {
      log('writing the Gemma 3 4B text model in F16 (~7.8 GB, streamed)');
      writeMedgemma4bTextF16(f16);
      log('quantizing to Q4_K_M with llama-quantize (minutes on 2 cores)');
      await quantize(tool, f16, `${model}.partial`, log);
      fs.renameSync(`${model}.partial`, model);
    } finally {
      fs.rmSync(f16, { force: true });
      fs.rmSync(`${model}.partial`, { force: true });
    }
  }
  return { dir, model, mmproj, generated: true, generateSeconds: (performance.now() - t0) / 1000 };
}
