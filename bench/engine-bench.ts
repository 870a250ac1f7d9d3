/**
 * `node dist/bench/bench.js engine`: the MedGemma engine with the tiny random-weight Gemma 3 model
 * on CPU, 1 thread: calls/s and generated tokens/s through each backend (llama-server, remote =
 * the same llama-server over the OpenAI HTTP path, node-llama-cpp in process), and the per-image
 * cost of handing images over (PNG files to the local llama-server, base64 + HTTP to a remote one) and
 * decoding them (a call with 0, 1 and 4 512×512 PNGs; the tiny projector
 * resizes them to 32 px, so this is transport and preprocessing, not vision-encoder time; 1 token
 * generated, so the call is prompt + images only).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { randomBytes } from 'node:crypto';
import { writeTinyModels } from '../fixtures/tiny-model.js';
import { LlamaServerEngine } from '../src/medgemma/backends/llama-server.js';
import { NodeLlamaCppEngine } from '../src/medgemma/backends/node-llama-cpp.js';
import { RemoteEngine } from '../src/medgemma/backends/remote.js';
import { ensureLlamaServer } from '../src/medgemma/build/build-llama.js';
import type { AnalyzeRequest, Engine, JsonSchema } from '../src/medgemma/engine.js';

const CALLS = Number(process.env.BENCH_ENGINE_CALLS ?? 40);

const schema: JsonSchema = {
  type: 'object',
  properties: { impression: { type: 'string', maxLength: 16 }, confidence: { enum: ['low', 'moderate', 'high'] } },
  required: ['impression', 'confidence'],
};

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function noisePng(size: number, seed: number): Promise<Buffer> {
  // 12-bit-like noise with a smooth gradient: compresses about as badly as a CT slice
  const px = randomBytes(size * size);
  for (let i = 0; i < px.length; i++) px[i] = (px[i]! >> 2) + ((i % size) >> 2) + seed;
  return sharp(px, { raw: { width: size, height: size, channels: 1 } })
    .png()
    .toBuffer();
}

async function throughput(label: string, engine: Engine, req: AnalyzeRequest): Promise<void> {
  await engine.analyze(req).catch(() => undefined); // warm-up
  let tokens = 0;
  let predictedMs = 0;
  const t0 = performance.now();
  let bad = 0;
  for (let i = 0; i < CALLS; i++) {
    try {
      const r = await engine.analyze({ ...req, prompt: `${req.prompt} (${i})` });
      tokens += r.timings.tokens;
      predictedMs += r.timings.predictedMs;
    } catch (err) {
      if ((err as { kind?: string }).kind !== 'bad_output') throw err;
      bad++;
    }
  }
  const secs = (performance.now() - t0) / 1000;
  console.log(
    `engine ${label.padEnd(15)} ${(CALLS / secs).toFixed(1).padStart(6)} calls/s, ${(tokens / Math.max(1, CALLS - bad)).toFixed(0)} tokens/call, ` +
      `${((tokens * 1000) / Math.max(predictedMs, 1e-9)).toFixed(0)} tokens/s generation, ${(tokens / secs).toFixed(0)} tokens/s end to end${bad ? ` (${bad} bad_output)` : ''}`,
  );
}

export async function engineBench(): Promise<void> {
  const build = await ensureLlamaServer({ cuda: false, log: () => undefined });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'radiant-bench-engine-'));
  const tiny = writeTinyModels(dir, { seed: 7 });
  const server = await new LlamaServerEngine({
    model: tiny.model,
    mmproj: tiny.mmproj,
    serverPath: build.serverPath,
    threads: 1,
    ctxSize: 4096,
    gpuLayers: 0,
  }).start();
  const remote = new RemoteEngine({ endpoint: server.server.baseUrl, apiKey: server.server.apiKey });
  const inproc = await new NodeLlamaCppEngine({ model: tiny.model, device: 'cpu', contextSize: 4096, threads: 1 }).start();
  try {
    console.log(
      `MedGemma engine bench: tiny Gemma 3 (${tiny.modelBytes} B) + mmproj, CPU, 1 thread, ${CALLS} sequential calls each, JSON-schema output`,
    );
    const req: AnalyzeRequest = { images: [], prompt: 'Summarise: small left pleural effusion.', schema, maxTokens: 200, temperature: 0 };
    await throughput('llama-server', server, req);
    await throughput('remote (HTTP)', remote, req);
    await throughput('node-llama-cpp', inproc, req);

    const img = await noisePng(512, 3);
    // The local backend hands llama-server PNG files (--media-path); remote sends base64 data URLs.
    for (const [how, engine] of [
      ['PNG files, local', server],
      ['base64+HTTP, remote', remote],
    ] as const) {
      const per: Record<number, number> = {};
      for (const n of [0, 1, 4]) {
        const r: AnalyzeRequest = { ...req, images: Array.from({ length: n }, () => img), temperature: 0, maxTokens: 1 };
        const call = () =>
          engine.analyze(r).catch((e: { kind?: string }) => {
            if (e.kind !== 'bad_output') throw e;
          });
        await call();
        const ms: number[] = [];
        for (let i = 0; i < Math.max(10, CALLS / 2); i++) {
          const t = performance.now();
          await call();
          ms.push(performance.now() - t);
        }
        per[n] = median(ms);
      }
      console.log(
        `engine images (512² PNG, ${(img.length / 1024).toFixed(0)} KB, ${how})  0: ${per[0]!.toFixed(1)} ms, 1: ${per[1]!.toFixed(1)} ms, 4: ${per[4]!.toFixed(1)} ms per call ` +
          `→ ${((per[4]! - per[0]!) / 4).toFixed(1)} ms per image`,
      );
    }
  } finally {
    await inproc.close();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
