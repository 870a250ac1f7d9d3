/**
 * `npm run bench:ai` (`node dist/bench/bench.js ai`): AI latency with a random-weight model of
 * MedGemma 4B's real shapes (bench/ai-model.ts: Gemma 3 4B at Q4_K_M + SigLIP-400M mmproj in F16,
 * generated once into models/), so llama.cpp does the work the real model does. Prints:
 *
 *   1. llama-server alone: prefill tok/s (a text prompt, cache off), decode tok/s (ignore_eos),
 *      and one 896² image: encode ms (mtmd's "image slice encoded in" line) and the prefill of
 *      its 256 tokens ("image decoded (batch …) in").
 *   2. the real pipeline: storescu pushes the CT to a node with AUTO_ANALYZE=all and the
 *      llama-server backend; from the last instance acknowledged to the draft SR + PDF stored
 *      (and at a DCMTK storescp), with the image encode times the node's llama-server logged.
 *      The MedGemma 1.5 recipe sends 85 slices (MEDGEMMA_MAX_SLICES); on a CPU that is hours,
 *      so BENCH_AI_SLICES bounds the slices sent (default 2 on CPU, 85 on CUDA) and the
 *      85-slice figure is printed as an extrapolation, labelled so.
 *
 * Env: BENCH_AI_DEVICE cpu|cuda (default cpu; cuda = every layer and the projector on the GPU),
 * BENCH_AI_THREADS (default: all cores), BENCH_AI_SLICES, BENCH_AI_CT_SLICES (0 = the corpus
 * 99-slice CT, default; N = a generated N-slice CT, for the 300-slice GPU goal),
 * BENCH_AI_DECODE_TOKENS (default 32), BENCH_AI_PROMPT_WORDS (300), BENCH_AI_SKIP_PIPELINE=1, BENCH_AI_MODELS_DIR (default models/).
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { makeCtSeries } from '../fixtures/generate.js';
import { MEDGEMMA_4B_IMAGE_TOKENS } from '../fixtures/medgemma-shapes.js';
import { startNode } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { ensureLlamaServer } from '../src/medgemma/build/build-llama.js';
import { postChatCompletion } from '../src/medgemma/http-chat.js';
import { LlamaServer } from '../src/medgemma/llama-server.js';
import { hostCpu, noRepackWanted } from '../src/medgemma/no-repack.js';
import { startStorescp } from '../test/helpers/dcmtk.js';
import { forwardAiResultsTo } from '../test/helpers/ai-results.js';
import { freePort } from '../test/helpers/node.js';
import { ensureShapesModel, type ShapesModel } from './ai-model.js';
import { loopRun } from './loop-bench.js';

const DEVICE = process.env.BENCH_AI_DEVICE === 'cuda' ? 'cuda' : 'cpu';
const THREADS = Number(process.env.BENCH_AI_THREADS ?? os.availableParallelism());
const RECIPE_SLICES = 85;
const SLICES = Number(process.env.BENCH_AI_SLICES ?? (DEVICE === 'cuda' ? RECIPE_SLICES : 2));
const CT_SLICES = Number(process.env.BENCH_AI_CT_SLICES ?? 0);
const DECODE_TOKENS = Number(process.env.BENCH_AI_DECODE_TOKENS ?? 32);
const PROMPT_WORDS = Number(process.env.BENCH_AI_PROMPT_WORDS ?? 300);

const median = (xs: number[]) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]! : Number.NaN);

/** What mtmd logs per image: the vision encoder's time and the LLM prefill of its tokens. */
export interface ImageLogTimes {
  encodeMs: number[];
  /** Per image: the sum of its "decoded (batch i/n)" lines. */
  prefillMs: number[];
}

/** Reads mtmd's per-image lines ("image slice encoded in N ms", "image decoded (batch i/n) in N ms"). */
export function imageLogTimes(lines: readonly string[]): ImageLogTimes {
  const out: ImageLogTimes = { encodeMs: [], prefillMs: [] };
  let pending = 0;
  for (const line of lines) {
    const enc = /slice encoded in (\d+) ms/.exec(line);
    if (enc) out.encodeMs.push(Number(enc[1]));
    const dec = /image decoded \(batch (\d+)\/(\d+)\) in (\d+) ms/.exec(line);
    if (dec) {
      pending += Number(dec[3]);
      if (dec[1] === dec[2]) {
        out.prefillMs.push(pending);
        pending = 0;
      }
    }
  }
  return out;
}

interface ChatTimings {
  prompt_n: number;
  prompt_ms: number;
  predicted_n: number;
  predicted_ms: number;
}

/** One chat call, through the node's own client (llama-server answers only when it is done). */
async function chat(server: LlamaServer, content: unknown, maxTokens: number): Promise<ChatTimings> {
  const reply = await postChatCompletion({
    url: `${server.baseUrl}/v1/chat/completions`,
    apiKey: server.apiKey,
    body: { messages: [{ role: 'user', content }], max_tokens: maxTokens, temperature: 0, cache_prompt: false, ignore_eos: true },
    signal: new AbortController().signal,
    retries: 0,
    backend: 'llama-server',
  });
  return reply.timings as ChatTimings;
}

/** A report-like English prompt of about `words` words (tokenises as real text does). */
function textPrompt(words: number): string {
  const base =
    'Axial chest CT without contrast. Evaluate the lungs, pleura, mediastinum, heart and upper abdomen. ' +
    'Describe every nodule with its size in millimetres, location by lobe and segment, and the slice where it is largest. ';
  let s = '';
  while (s.split(' ').length < words) s += base;
  return s;
}

async function ctPng(): Promise<Buffer> {
  // A smooth CT-like 896² RGB image: encoder cost does not depend on content, transport does a little.
  const n = 896;
  const px = Buffer.alloc(n * n * 3);
  for (let y = 0; y < n; y++)
    for (let x = 0; x < n; x++) {
      const r = Math.hypot(x - n / 2, y - n / 2);
      const v = r < 380 ? 90 + ((x * 7 + y * 3) % 40) : 0;
      px.set([v, v >> 1, v >> 2], (y * n + x) * 3);
    }
  return sharp(px, { raw: { width: n, height: n, channels: 3 } })
    .png()
    .toBuffer();
}

interface EngineFigures {
  prefillTokS: number;
  promptTokens: number;
  decodeTokS: number;
  decodeTokens: number;
  imageEncodeMs: number;
  imagePrefillMs: number;
}

async function engineFigures(m: ShapesModel, serverPath: string): Promise<EngineFigures> {
  const server = new LlamaServer({
    model: m.model,
    mmproj: m.mmproj,
    serverPath,
    threads: THREADS,
    ctxSize: 4096,
    gpuLayers: DEVICE === 'cuda' ? 'all' : 0,
    extraArgs: DEVICE === 'cuda' ? [] : ['--no-mmproj-offload'],
    startupTimeoutMs: 600_000,
  });
  const t0 = performance.now();
  await server.start();
  console.log(`  llama-server loaded the model in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  try {
    await chat(server, 'Hello.', 1); // warm-up: first-touch of the weights
    const text = await chat(server, textPrompt(PROMPT_WORDS), DECODE_TOKENS);
    const png = await ctPng();
    const before = server.recentLog.length;
    await chat(
      server,
      [
        { type: 'text', text: 'SLICE 1' },
        { type: 'image_url', image_url: { url: `data:image/png;base64,${png.toString('base64')}` } },
      ],
      1,
    );
    await new Promise((r) => setTimeout(r, 100)); // the log lines arrive after the reply
    const img = imageLogTimes(server.recentLog.slice(Math.max(0, before - 5)));
    return {
      prefillTokS: (text.prompt_n * 1000) / text.prompt_ms,
      promptTokens: text.prompt_n,
      decodeTokS: (text.predicted_n * 1000) / text.predicted_ms,
      decodeTokens: text.predicted_n,
      imageEncodeMs: median(img.encodeMs),
      imagePrefillMs: median(img.prefillMs),
    };
  } finally {
    await server.stop();
  }
}

/** The CT to push: the corpus chest CT, or a generated one of BENCH_AI_CT_SLICES slices. */
async function studyFiles(corpus: string, work: string): Promise<{ files: string[]; label: string }> {
  if (CT_SLICES > 0) {
    const dir = path.join(work, 'ct');
    await fsp.mkdir(dir);
    const files: string[] = [];
    for (const [i, g] of makeCtSeries({ seed: `bench-ai-${CT_SLICES}`, slices: CT_SLICES, size: 512, noise: 8 }).entries()) {
      const f = path.join(dir, `${String(i).padStart(4, '0')}.dcm`);
      await fsp.writeFile(f, g.bytes);
      files.push(f);
    }
    return { files, label: `generated ${CT_SLICES}-slice CT (512²)` };
  }
  const ctDir = path.join(corpus, 'ct-series-chest-99');
  if (!fs.existsSync(ctDir)) throw new Error(`corpus CT not found at ${ctDir}: set RADIANT_CORPUS`);
  const files = fs
    .readdirSync(ctDir)
    .filter((f) => f.endsWith('.dcm'))
    .sort()
    .map((f) => path.join(ctDir, f));
  return { files, label: `corpus chest CT (${files.length} × 512²)` };
}

async function pipelineFigures(m: ShapesModel, corpus: string, engine: EngineFigures): Promise<void> {
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'radiant-bench-ai-'));
  const lines: string[] = [];
  // The node's llama-server lines arrive at debug level; keep only mtmd's per-image timings.
  const destination = {
    write(chunk: string) {
      for (const l of chunk.split('\n')) if (/encoded in|decoded \(batch/.test(l)) lines.push(l);
    },
  };
  try {
    const { files, label } = await studyFiles(corpus, work);
    const scpDir = path.join(work, 'pacs');
    await fsp.mkdir(scpDir);
    const config = loadConfig(
      {
        DATA_DIR: path.join(work, 'node'),
        DICOM_PORT: String(await freePort()),
        HTTP_PORT: '0',
        MEDGEMMA_BACKEND: 'llama-server',
        MEDGEMMA_MODEL_PATH: m.dir,
        MEDGEMMA_DEVICE: DEVICE,
        MEDGEMMA_GPU_LAYERS: DEVICE === 'cuda' ? 'all' : '0',
        MEDGEMMA_THREADS: String(THREADS),
        MEDGEMMA_CONTEXT: String(Math.ceil(((MEDGEMMA_4B_IMAGE_TOKENS + 16) * SLICES + 8192) / 1024) * 1024),
        MEDGEMMA_RECIPE: 'medgemma-1.5',
        MEDGEMMA_MAX_SLICES: String(SLICES),
        MEDGEMMA_TIMEOUT_MS: String(6 * 3600_000),
        MEDGEMMA_MAX_RETRIES: '0', // one call timed, not a retried one
        MEDGEMMA_ALLOW_UNVALIDATED_MODEL: 'true',
        // A random model fills every string to its limit: keep the answer short and bounded.
        ANALYSIS_MAX_FINDINGS: '2',
        ANALYSIS_MAX_TEXT: '24',
        ANALYSIS_MAX_TOKENS: '3000',
        AUTO_ANALYZE: 'all',
        STUDY_STABLE_SECONDS: '1',
      },
      path.join(work, 'node'),
    );
    const node = await startNode(config, createLogger('debug', { destination }));
    const scp = await startStorescp(await freePort(), scpDir, { aeTitle: 'BENCH_PACS' });
    try {
      for (let k = 0; k < 12_000 && node.engine.status.state === 'starting'; k++) await new Promise((r) => setTimeout(r, 50));
      if (!node.engine.ready) throw new Error(`engine ${node.engine.status.state}: ${node.engine.status.error ?? ''}`);
      await forwardAiResultsTo(node, 'BENCH_PACS', scp.port);
      console.log(
        `  pipeline: ${label} pushed with storescu; MedGemma 1.5 recipe, ${SLICES} of ${RECIPE_SLICES} slices sent (BENCH_AI_SLICES)`,
      );
      const r = await loopRun(node, files, scpDir, 12 * 3600_000);
      const img = imageLogTimes(lines);
      const stored = r.marks.published ?? 0;
      const a = r.analysis;
      console.log(
        `  study received → draft SR + PDF stored  ${(stored / 1000).toFixed(1)} s measured with ${SLICES} slices ` +
          `(at the PACS ${(r.totalMs / 1000).toFixed(1)} s; study-stable wait 1 s included)`,
      );
      console.log(
        `    analysis: queue ${a.queueWaitMs?.toFixed(0)} ms, select ${a.selectMs?.toFixed(0)}, prepare ${a.prepareMs?.toFixed(0)}, ` +
          `inference ${((a.inferenceMs ?? 0) / 1000).toFixed(1)} s; in the node's llama-server: ${img.encodeMs.length} image encodes ` +
          `(median ${median(img.encodeMs).toFixed(0)} ms), image prefill median ${median(img.prefillMs).toFixed(0)} ms per image`,
      );
      const perImageMs =
        (Number.isNaN(median(img.encodeMs)) ? engine.imageEncodeMs : median(img.encodeMs)) +
        (Number.isNaN(median(img.prefillMs)) ? engine.imagePrefillMs : median(img.prefillMs));
      if (SLICES < RECIPE_SLICES) {
        const est = stored + (RECIPE_SLICES - SLICES) * perImageMs;
        console.log(
          `  EXTRAPOLATED, not measured: ${RECIPE_SLICES} slices ≈ ${(est / 1000).toFixed(0)} s ` +
            `(measured + ${RECIPE_SLICES - SLICES} × ${(perImageMs / 1000).toFixed(1)} s per image: encode + prefill of its ${MEDGEMMA_4B_IMAGE_TOKENS} tokens)`,
        );
      }
    } finally {
      await scp.stop();
      await node.stop();
    }
  } finally {
    await fsp.rm(work, { recursive: true, force: true });
  }
}

export async function aiBench(corpus: string): Promise<void> {
  const modelsDir = path.resolve(process.env.BENCH_AI_MODELS_DIR ?? 'models');
  const build = await ensureLlamaServer({ cuda: DEVICE === 'cuda' });
  const m = await ensureShapesModel(modelsDir, { build: { cuda: DEVICE === 'cuda' } });
  const size = (f: string) => (fs.statSync(f).size / 1024 ** 3).toFixed(2);
  console.log(
    `AI latency: random weights, MedGemma 4B shapes — Gemma 3 4B Q4_K_M (${size(m.model)} GiB) + SigLIP-400M mmproj F16 ` +
      `(${size(m.mmproj)} GiB)${m.generated ? `, generated in ${m.generateSeconds.toFixed(0)} s` : ', cached'}; ` +
      `llama-server ${build.variant}, ${DEVICE === 'cuda' ? 'all layers + projector on the GPU' : `CPU, ${THREADS} threads`}`,
  );
  if (noRepackWanted('auto', hostCpu()))
    console.log('  AMX CPU: llama-server runs with --no-repack (the node does so; its AMX Q4_K repack segfaults, llama.cpp #20824)');
  const e = await engineFigures(m, build.serverPath);
  console.log(
    `  image encode                 ${e.imageEncodeMs.toFixed(0)} ms per 896² image (mmproj${DEVICE === 'cuda' ? ', GPU' : ' on CPU'})`,
  );
  console.log(
    `  image prefill                ${e.imagePrefillMs.toFixed(0)} ms per image (${MEDGEMMA_4B_IMAGE_TOKENS} tokens, ` +
      `${((MEDGEMMA_4B_IMAGE_TOKENS * 1000) / e.imagePrefillMs).toFixed(1)} tok/s)`,
  );
  console.log(`  prefill                      ${e.prefillTokS.toFixed(1)} tok/s (text prompt of ${e.promptTokens} tokens, cache off)`);
  console.log(`  decode                       ${e.decodeTokS.toFixed(2)} tok/s (${e.decodeTokens} tokens)`);
  console.log(
    `  per image, encode + prefill  ${((e.imageEncodeMs + e.imagePrefillMs) / 1000).toFixed(1)} s → ` +
      `${RECIPE_SLICES} slices ≈ ${((RECIPE_SLICES * (e.imageEncodeMs + e.imagePrefillMs)) / 1000).toFixed(0)} s, ` +
      `300 slices ≈ ${((300 * (e.imageEncodeMs + e.imagePrefillMs)) / 1000).toFixed(0)} s (EXTRAPOLATED from one image)`,
  );
  if (process.env.BENCH_AI_SKIP_PIPELINE === '1') return;
  await pipelineFigures(m, corpus, e);
}
