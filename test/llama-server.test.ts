/**
 * The llama-server supervisor against real llama.cpp: builds (or reuses) llama-server in the
 * suite's before hook, runs it with the tiny random-weight Gemma 3 + projector pair, and checks
 * image input with a JSON-schema response format, restart after a crash and typed model errors.
 * The first run builds llama.cpp (minutes); later runs reuse the cached build.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import pino from 'pino';
import sharp from 'sharp';
import { z } from 'zod';
import { writeTinyModels, type TinyModelPaths } from '../fixtures/tiny-model.js';
import { ensureLlamaServer, hasNvcc, llamaBuildLocation } from '../src/medgemma/build/build-llama.js';
import { LlamaServer, ModelFileError } from '../src/medgemma/llama-server.js';
import { hostCpu, noRepackWanted } from '../src/medgemma/no-repack.js';

/** CUDA only where a GPU is visible (or LLAMA_CUDA says so); nvcc alone is not enough to run it. */
function wantCuda(): boolean {
  const env = (process.env.LLAMA_CUDA ?? '').toLowerCase();
  if (env === 'on') return true;
  if (env === 'off') return false;
  return hasNvcc() && spawnSync('nvidia-smi', ['-L'], { encoding: 'utf8' }).status === 0;
}

const Finding = z
  .object({
    finding: z.enum(['normal', 'abnormal', 'indeterminate']),
    score: z.int().min(0).max(100),
    laterality: z.enum(['left', 'right', 'none']),
  })
  .strict();

async function pngDataUrl(width: number, height: number, seed: number): Promise<string> {
  const px = Buffer.alloc(width * height * 3);
  let s = seed;
  for (let i = 0; i < px.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    px[i] = (s >>> 24) & 0xff;
  }
  const png = await sharp(px, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}

describe('llama-server supervisor (real llama.cpp, tiny Gemma 3 model)', function () {
  let serverPath: string;
  let dir: string;
  let tiny: TinyModelPaths;
  let images: string[];
  let server: LlamaServer | undefined;
  const logLines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void logLines.push(s) });

  before(async function () {
    this.timeout(3 * 3600_000); // a first build compiles llama.cpp
    const build = await ensureLlamaServer({ cuda: wantCuda(), jobs: Number(process.env.LLAMA_BUILD_JOBS) || undefined });
    serverPath = build.serverPath;
    console.log(`    llama-server ${build.variant} ${build.cached ? 'reused' : 'built'} (${build.buildSeconds} s): ${serverPath}`);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'radiant-llama-'));
    tiny = writeTinyModels(dir, { seed: 7 });
    images = [await pngDataUrl(40, 32, 1), await pngDataUrl(24, 24, 2)];
  });

  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  function newServer(extra: Partial<ConstructorParameters<typeof LlamaServer>[0]> = {}): LlamaServer {
    server = new LlamaServer({
      serverPath,
      model: tiny.model,
      mmproj: tiny.mmproj,
      threads: 1,
      ctxSize: 1024,
      gpuLayers: wantCuda() ? 'all' : 0,
      logger,
      startupTimeoutMs: 60_000,
      restartDelayMs: 200,
      ...extra,
    });
    return server;
  }

  function request(maxTokens = 800) {
    return {
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Compare the two images.' },
            { type: 'image_url', image_url: { url: images[0] } },
            { type: 'image_url', image_url: { url: images[1] } },
          ],
        },
      ],
      max_tokens: maxTokens,
      temperature: 0,
      seed: 1,
      response_format: { type: 'json_schema', json_schema: { name: 'finding', strict: true, schema: z.toJSONSchema(Finding) } },
    };
  }

  it('writes the tiny models deterministically', function () {
    const again = writeTinyModels(path.join(dir, 'again'), { seed: 7 });
    expect(fs.readFileSync(again.model).equals(fs.readFileSync(tiny.model))).to.equal(true);
    expect(fs.readFileSync(again.mmproj).equals(fs.readFileSync(tiny.mmproj))).to.equal(true);
    const other = writeTinyModels(path.join(dir, 'other'), { seed: 8 });
    expect(fs.readFileSync(other.model).equals(fs.readFileSync(tiny.model))).to.equal(false);
  });

  it('waits for another process holding the build lock, then reuses its build', async function () {
    const cacheDir = path.join(dir, 'cache');
    const loc = llamaBuildLocation({ cacheDir, cuda: false });
    fs.mkdirSync(cacheDir, { recursive: true });
    fs.writeFileSync(loc.lockPath, `${process.pid}\n`); // "another builder", alive
    const logs: string[] = [];
    const pending = ensureLlamaServer({ cacheDir, cuda: false, log: (l) => logs.push(l) });
    await new Promise((r) => setTimeout(r, 500));
    expect(logs.join('\n')).to.match(/waiting for .*\.lock/);
    fs.mkdirSync(loc.dir, { recursive: true });
    fs.writeFileSync(path.join(loc.dir, 'BUILD.json'), JSON.stringify({ serverPath, buildSeconds: 1, commit: loc.commit, variant: 'cpu' }));
    fs.unlinkSync(loc.lockPath);
    const b = await pending;
    expect(b.cached).to.equal(true);
    expect(b.serverPath).to.equal(serverPath);
    expect(fs.existsSync(loc.lockPath)).to.equal(false);
  });

  it('passes --no-repack as LLAMA_NO_REPACK says (auto: on AMX CPUs, llama.cpp #20824), and this build takes it', async function () {
    this.timeout(120_000);
    const argv = (s: LlamaServer) => fs.readFileSync(`/proc/${s.pid}/cmdline`, 'utf8').split('\0');
    for (const mode of ['on', 'off', 'auto'] as const) {
      const s = newServer({ noRepack: mode });
      await s.start();
      const want = mode === 'auto' ? noRepackWanted('auto', hostCpu()) : mode === 'on';
      expect(s.noRepack, mode).to.equal(want);
      expect(argv(s).includes('--no-repack'), mode).to.equal(want);
      const reply = await s.chatCompletion({ messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2, temperature: 0 });
      expect(reply.choices[0]?.message.content, mode).to.be.a('string');
      await s.stop();
    }
  });

  it('answers a chat completion with two images as schema-valid JSON', async function () {
    const s = newServer();
    await s.start();
    expect(s.port).to.be.greaterThan(0);

    // the API key is enforced
    const anon = await fetch(`${s.baseUrl}/v1/models`);
    expect(anon.status).to.equal(401);

    const reply = await s.chatCompletion(request());
    const content = reply.choices[0]?.message.content ?? '';
    expect(reply.choices[0]?.finish_reason, content).to.equal('stop');
    const parsed = Finding.parse(JSON.parse(content));
    expect(parsed.score).to.be.within(0, 100);
    // the images went through the projector: each 32 px image is 8 x 8 patches, pooled 4 x 4 into
    // 4 embeddings, wrapped in <start_of_image> ... <end_of_image> (spelled out by the tiny vocabulary)
    const textOnly = request(1);
    textOnly.messages[0]!.content = textOnly.messages[0]!.content.slice(0, 1);
    const noImages = await s.chatCompletion(textOnly);
    const imageTokens = (reply.usage?.prompt_tokens ?? 0) - (noImages.usage?.prompt_tokens ?? 0);
    expect(imageTokens).to.be.at.least(2 * 4);
    console.log(`    prompt: ${reply.usage?.prompt_tokens} tokens with the two images, ${noImages.usage?.prompt_tokens} without`);
    expect(logLines.some((l) => l.includes('"level":20'))).to.equal(true, 'server log lines reach the logger at debug');

    // throughput of the tiny model (unconstrained text), for the README
    const t = await s.chatCompletion({
      messages: [{ role: 'user', content: 'Say something.' }],
      max_tokens: 128,
      temperature: 1,
      seed: 3,
      ignore_eos: true,
    } as unknown as object);
    console.log(
      `    tiny model: ${t.timings?.predicted_n} tokens at ${t.timings?.predicted_per_second?.toFixed(0)} tokens/s, ` +
        `prompt ${t.timings?.prompt_n} tokens in ${t.timings?.prompt_ms?.toFixed(1)} ms`,
    );
  });

  it('restarts llama-server when it dies, and the next call succeeds', async function () {
    const s = newServer();
    await s.start();
    const firstPid = s.pid!;
    const restarting = once(s, 'restarting');
    const readyAgain = once(s, 'ready');
    process.kill(firstPid, 'SIGKILL');
    await restarting;
    await readyAgain;
    expect(s.pid).to.be.a('number').and.not.equal(firstPid);
    const reply = await s.chatCompletion(request());
    Finding.parse(JSON.parse(reply.choices[0]?.message.content ?? ''));
  });

  it('a llama-server left behind by a SIGKILLed node is stopped by the next supervisor', async function () {
    const parent = spawn(process.execPath, [path.resolve('dist/test/helpers/llama-parent.js'), tiny.model, serverPath], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    parent.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const deadline = Date.now() + 60_000;
    while (!/PID \d+/.test(out) && Date.now() < deadline && parent.exitCode === null) await new Promise((r) => setTimeout(r, 100));
    const orphan = Number(/PID (\d+)/.exec(out)?.[1]);
    expect(orphan, out).to.be.greaterThan(0);
    parent.kill('SIGKILL');
    await once(parent, 'exit');
    // A killed orphan may stay a zombie until init reaps it: running means alive and not 'Z'.
    const running = (pid: number) => {
      try {
        return !/^\d+ \(.*\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return false;
      }
    };
    expect(running(orphan), 'the orphan outlives its SIGKILLed parent').to.equal(true);
    const s = newServer();
    await s.start();
    await new Promise((r) => setTimeout(r, 200));
    expect(running(orphan), 'the next supervisor stopped it').to.equal(false);
    expect(running(s.pid!)).to.equal(true);
  });

  it('reports a missing model file by name', async function () {
    const missing = path.join(dir, 'no-such-model.gguf');
    const s = newServer({ model: missing });
    const err = await s.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(ModelFileError);
    expect((err as ModelFileError).file).to.equal(missing);
    expect((err as ModelFileError).reason).to.equal('missing');
    expect((err as Error).message).to.include(missing);
  });

  it('reports a corrupt model or projector file by name', async function () {
    const junk = path.join(dir, 'junk.gguf');
    fs.writeFileSync(junk, 'this is not a model, just some bytes');
    let err = await newServer({ model: junk })
      .start()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).to.be.instanceOf(ModelFileError);
    expect((err as ModelFileError).reason).to.equal('not-gguf');
    expect((err as Error).message).to.include(junk);

    // a GGUF header followed by garbage passes the header check: llama-server itself rejects it
    const truncated = path.join(dir, 'truncated.gguf');
    fs.writeFileSync(truncated, fs.readFileSync(tiny.model).subarray(0, 4096));
    err = await newServer({ model: truncated })
      .start()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).to.be.instanceOf(ModelFileError);
    expect((err as ModelFileError).file).to.equal(truncated);
    expect((err as ModelFileError).reason).to.equal('rejected');

    const badProj = path.join(dir, 'truncated-mmproj.gguf');
    fs.writeFileSync(badProj, fs.readFileSync(tiny.mmproj).subarray(0, 2048));
    err = await newServer({ mmproj: badProj })
      .start()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).to.be.instanceOf(ModelFileError);
    expect((err as ModelFileError).file).to.equal(badProj);
  });
});
