/**
 * The MedGemma engine against real llama.cpp with the tiny random-weight Gemma 3 models:
 * llama-server backend (two PNGs, findings schema), remote backend over HTTP against that same
 * server and against local fake endpoints (auth, kill, timeout, malformed, 429 retry),
 * node-llama-cpp in process (text + JSON-schema grammar), cancellation, the safety layer, and
 * `radiant model info` / `model pull` through the CLI.
 */
import { spawnSync, execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import pino from 'pino';
import sharp from 'sharp';
import { writeTinyModels, type TinyModelPaths } from '../fixtures/tiny-model.js';
import { ensureLlamaServer, hasNvcc } from '../src/medgemma/build/build-llama.js';
import { LlamaServerEngine } from '../src/medgemma/backends/llama-server.js';
import { NodeLlamaCppEngine } from '../src/medgemma/backends/node-llama-cpp.js';
import { imageDataUrls } from '../src/medgemma/image-budget.js';
import { chatCompletionsUrl, RemoteEngine } from '../src/medgemma/backends/remote.js';
import { EngineError, type AnalyzeRequest, type JsonSchema } from '../src/medgemma/engine.js';
import { fileSha256, modelIdentity } from '../src/medgemma/model-identity.js';
import { LlamaServer } from '../src/medgemma/llama-server.js';
import { parseModelJson } from '../src/medgemma/output.js';
import { stripThinking } from '../src/medgemma/answer-text.js';
import { SYSTEM_PROMPT } from '../src/medgemma/safety.js';
import { safetyGate } from '../src/medgemma/safety-gate.js';
import { scanPhrasing } from '../src/medgemma/safety-lexicon.js';
import { loadConfig } from '../src/config.js';
import { fakeEndpoint, okReply } from './helpers/fake-openai.js';

const execFileP = promisify(execFile);
const CLI = path.resolve('dist/src/cli.js');

function wantCuda(): boolean {
  const env = (process.env.LLAMA_CUDA ?? '').toLowerCase();
  if (env === 'on') return true;
  if (env === 'off') return false;
  return hasNvcc() && spawnSync('nvidia-smi', ['-L'], { encoding: 'utf8' }).status === 0;
}

const findingsSchema: JsonSchema = {
  type: 'object',
  properties: {
    findings: {
      type: 'array',
      maxItems: 2,
      items: {
        type: 'object',
        properties: {
          description: { type: 'string', maxLength: 40 },
          confidence: { type: 'string', enum: ['low', 'moderate', 'high'] },
        },
        required: ['description', 'confidence'],
        additionalProperties: false,
      },
    },
    image_quality_limited: { type: 'boolean' },
  },
  required: ['findings', 'image_quality_limited'],
  additionalProperties: false,
};

async function png(width: number, height: number, seed: number): Promise<Buffer> {
  const px = Buffer.alloc(width * height * 3);
  let s = seed;
  for (let i = 0; i < px.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    px[i] = (s >>> 24) & 0xff;
  }
  return sharp(px, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

async function rejects(p: Promise<unknown>): Promise<EngineError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected a rejection').to.be.instanceOf(EngineError);
  return err as EngineError;
}

const validContent = JSON.stringify({ findings: [{ description: 'opacity', confidence: 'low' }], image_quality_limited: false });

describe('MedGemma safety layer (pure functions)', function () {
  // Issue 15: the gate flags definitive phrasing and never rewrites it (it used to hedge the text).
  const definitiveCases: Array<[string, string, string]> = [
    ['The diagnosis is pneumonia.', 'The diagnosis is', 'definitive_diagnosis'],
    ['Final diagnosis is fracture', 'Final diagnosis is', 'definitive_diagnosis'],
    ['This confirms a pleural effusion', 'confirms', 'definitive_diagnosis'],
    ['Pneumothorax confirmed', 'confirmed', 'definitive_diagnosis'],
    ['It is definitely a mass', 'is definitely a', 'definitive_diagnosis'],
    ['The pattern is diagnostic of sarcoidosis', 'diagnostic of', 'definitive_diagnosis'],
    ['Sign pathognomonic for X', 'pathognomonic for', 'definitive_diagnosis'],
    ['This rules out fracture', 'rules out', 'certainty'],
  ];
  for (const [input, phrase, rule] of definitiveCases) {
    it(`flags "${input}" and keeps it verbatim`, function () {
      const r = safetyGate({ rawText: JSON.stringify({ impression: input }) });
      expect(r.verdict).to.deep.equal({ status: 'ok' });
      expect(r.answer).to.deep.equal({ impression: input });
      expect(r.flags).to.deep.include({ target: 'impression', phrase, rule });
    });
  }
  it('leaves hedged text alone', function () {
    const t = 'Opacity in the right lower lobe, suggestive of consolidation; cannot exclude effusion.';
    expect(scanPhrasing(t)).to.deep.equal([]);
  });

  const thinkingCases: Array<[string, string, string[]]> = [
    ['<unused94>thought\nstuff<unused95>{"a":1}', '{"a":1}', ['thinking_stripped']],
    ['{"a":1}', '{"a":1}', []],
    ['<unused94>never closed {"a":1}', '{"a":1}', ['thinking_unterminated']],
    ['<unused94>x<unused95> <unused94>y<unused95>{"b":2}', '{"b":2}', ['thinking_stripped']],
  ];
  for (const [input, output, notes] of thinkingCases) {
    it(`strips thinking: ${JSON.stringify(input).slice(0, 40)}`, function () {
      expect(stripThinking(input)).to.deep.equal({ text: output, notes });
    });
  }

  // A loop is a unit repeated 8+ times over 48+ characters (a 16-digit number no longer counts).
  const degenerate: Array<[string, string | null]> = [
    ['', 'empty answer'],
    ['   \n ', 'empty answer'],
    ['{}', 'empty answer'],
    ['the the the the the the the', 'repetition loop'],
    ['{"a":"' + 'ab'.repeat(30) + '"}', 'repetition loop'],
    ['{"n":' + '1'.repeat(60) + '}', 'repetition loop'],
    ['{"findings":[{"description":"opacity","confidence":"low"}]}', null],
  ];
  for (const [input, reason] of degenerate) {
    it(`degenerate check: ${JSON.stringify(input).slice(0, 40)}`, function () {
      const v = safetyGate({ rawText: input }).verdict;
      if (reason === null) expect(v).to.deep.equal({ status: 'ok' });
      else expect(v.status === 'failed' && v.reason).to.include(reason);
    });
  }

  it('the gate combines thinking, parsing and flags, the answer unchanged', function () {
    const r = safetyGate({ rawText: '<unused94>hmm<unused95>{"impression":"The diagnosis is definitely pneumonia"}' });
    expect(r.answer).to.deep.equal({ impression: 'The diagnosis is definitely pneumonia' });
    expect(r.flags).to.deep.equal([
      { target: 'answer', phrase: '<unused94>', rule: 'thinking_stripped' },
      { target: 'impression', phrase: 'The diagnosis is', rule: 'definitive_diagnosis' },
      { target: 'impression', phrase: 'definitely', rule: 'certainty' },
    ]);
  });

  it('the system prompt asks for description, hedging, confidence, quality and review', function () {
    for (const w of [
      'do not state a diagnosis',
      'suggestive of',
      'consistent with',
      'cannot exclude',
      'confidence',
      'image quality',
      'radiologist will review',
    ]) {
      expect(SYSTEM_PROMPT).to.include(w);
    }
  });

  it('validates output against the schema shape', function () {
    expect(parseModelJson(validContent, findingsSchema)).to.deep.equal(JSON.parse(validContent));
    const cases = [
      'not json',
      '{"findings":[]}',
      '{"findings":[{"description":"x","confidence":"sure"}],"image_quality_limited":false}',
      '{"findings":"x","image_quality_limited":true}',
    ];
    for (const c of cases) {
      let err: unknown;
      try {
        parseModelJson(c, findingsSchema);
      } catch (e) {
        err = e;
      }
      expect(err, c).to.be.instanceOf(EngineError);
      expect((err as EngineError).kind).to.equal('bad_output');
    }
  });

  it('resolves MEDGEMMA_BACKEND=auto', function () {
    const base = { DATA_DIR: '/tmp/x' };
    expect(loadConfig(base).medgemma.backend).to.equal('off');
    expect(loadConfig({ ...base, MEDGEMMA_MODEL_PATH: '/m.gguf' }).medgemma.backend).to.equal('llama-server');
    expect(loadConfig({ ...base, MEDGEMMA_API_ENDPOINT: 'https://x.example/v1' }).medgemma.backend).to.equal('off');
    const online = {
      MODE: 'online',
      DATABASE_URL: 'postgres://x/y',
      SECRET_KEY: 'k'.repeat(40),
      S3_BUCKET: 'bucket',
      MEDGEMMA_API_ENDPOINT: 'https://x.example/v1',
      MEDGEMMA_MODEL_PATH: '/m.gguf',
    };
    expect(loadConfig(online).medgemma.backend).to.equal('remote');
    expect(loadConfig(base).medgemma.contextSize).to.equal(32768);
    expect(loadConfig(base).medgemma.maxConcurrency).to.equal(1);
    expect(() => loadConfig({ ...base, MEDGEMMA_BACKEND: 'remote' })).to.throw(/MEDGEMMA_API_ENDPOINT/);
    expect(chatCompletionsUrl('http://h:1/v1')).to.equal('http://h:1/v1/chat/completions');
    expect(chatCompletionsUrl('http://h:1')).to.equal('http://h:1/v1/chat/completions');
  });
});

describe('MedGemma engine (real llama.cpp, tiny Gemma 3 models)', function () {
  let dir: string;
  let tiny: TinyModelPaths;
  let serverPath: string;
  let engine: LlamaServerEngine;
  let images: Buffer[];

  const request = (over: Partial<AnalyzeRequest> = {}): AnalyzeRequest => ({
    images,
    prompt: 'Describe the findings in these two images.',
    schema: findingsSchema,
    maxTokens: 400,
    seed: 1,
    ...over,
  });

  before(async function () {
    this.timeout(3 * 3600_000);
    serverPath = (await ensureLlamaServer({ cuda: wantCuda() })).serverPath;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'radiant-engine-'));
    tiny = writeTinyModels(dir, { seed: 7 });
    images = [await png(40, 32, 1), await png(24, 24, 2)];
    engine = await new LlamaServerEngine({
      model: tiny.model,
      mmproj: tiny.mmproj,
      serverPath,
      threads: 1,
      ctxSize: 2048,
      gpuLayers: wantCuda() ? 'all' : 0,
      timeoutMs: 60_000,
    }).start();
  });

  after(async () => {
    await engine?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  describe('llama-server backend', function () {
    it('answers two PNGs with schema-valid JSON, timings and model identity', async function () {
      const r = await engine.analyze<{ findings: unknown[]; image_quality_limited: boolean }>(request());
      expect(r.backend).to.equal('llama-server');
      expect(r.json.findings).to.be.an('array');
      expect(r.json.image_quality_limited).to.be.a('boolean');
      expect(r.timings.tokens).to.be.greaterThan(0);
      expect(r.timings.predictedMs).to.be.greaterThan(0);
      expect(r.timings.tokensPerSecond).to.be.greaterThan(0);
      expect(r.model.name).to.equal('tiny-gemma3.gguf');
      expect(r.model.sha256)
        .to.equal(await fileSha256(tiny.model))
        .and.match(/^[0-9a-f]{64}$/);
      expect(r.model.quantization).to.equal('MOSTLY_F16');
      expect(r.model.mmproj?.name).to.equal('tiny-gemma3-mmproj.gguf');
      // identity: what the GGUF says, the pairing, and why random weights are not validated
      expect(r.model.architecture).to.equal('gemma3');
      expect(r.model.ggufName).to.equal('radiant-tiny-gemma3 (random weights, test only)');
      expect(r.model.bytes).to.equal(tiny.modelBytes);
      expect(r.model.parameters).to.equal(97_728);
      expect(r.model.mmproj).to.deep.include({ sha256: await fileSha256(tiny.mmproj), projectionDim: 64, matchesModel: true });
      expect(r.model.validated).to.equal(false);
      expect(r.model.validation.basis).to.equal('none');
      expect(r.model.validation.reason).to.match(/matches no known MedGemma release.*unverified/);
    });

    it('validates the same files once the admin lists their SHA-256 (MEDGEMMA_TRUSTED_SHA256)', async function () {
      const both = [await fileSha256(tiny.model), await fileSha256(tiny.mmproj)];
      const ok = await modelIdentity(tiny.model, tiny.mmproj, both);
      expect(ok.validated).to.equal(true);
      expect(ok.validation.basis).to.equal('sha256-allowlist');
      const modelOnly = await modelIdentity(tiny.model, tiny.mmproj, both.slice(0, 1));
      expect(modelOnly.validated).to.equal(false);
      expect(modelOnly.validation.reason).to.match(/mmproj/);
    });

    it('cancels: an aborted signal gives a cancelled error, the next call works', async function () {
      const ac = new AbortController();
      ac.abort();
      expect((await rejects(engine.analyze(request({ signal: ac.signal })))).kind).to.equal('cancelled');
      const ac2 = new AbortController();
      const p = engine.analyze(request({ signal: ac2.signal, images: [], maxTokens: 2000 }));
      setImmediate(() => ac2.abort());
      expect((await rejects(p)).kind).to.equal('cancelled');
      const r = await engine.analyze(request());
      expect(r.json).to.have.property('findings');
    });
  });

  describe('remote backend', function () {
    it('works over HTTP against llama-server with the right key', async function () {
      const remote = new RemoteEngine({ endpoint: engine.server.baseUrl, apiKey: engine.server.apiKey, timeoutMs: 60_000 });
      const r = await remote.analyze(request());
      expect(r.backend).to.equal('remote');
      expect(r.json).to.have.property('findings');
      expect(r.timings.tokens).to.be.greaterThan(0);
      expect(r.model.name).to.be.a('string').and.not.equal('');
    });

    it('keeps a request under its size budget: PNG when it fits, JPEG when not, a clear error when neither', async function () {
      // A smooth image with low noise, like a CT slice: PNG keeps the noise, JPEG mostly does not.
      const px = Buffer.alloc(256 * 256 * 3);
      let seed = 9;
      for (let i = 0; i < px.length; i++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        px[i] = ((((i / 3) | 0) % 256) >> 1) + ((seed >>> 24) & 7);
      }
      const noisy = await sharp(px, { raw: { width: 256, height: 256, channels: 3 } })
        .png()
        .toBuffer();
      const pngs = [noisy, noisy, noisy, noisy];
      const pngB64 = pngs.reduce((a, p) => a + Math.ceil(p.length / 3) * 4, 0);
      expect((await imageDataUrls(pngs, pngB64)).format).to.equal('png');
      const small = await imageDataUrls(pngs, pngB64 - 1);
      expect(small.format).to.equal('jpeg');
      expect(small.bytes).to.be.lessThan(pngB64);
      const first = Buffer.from(small.urls[0]!.split(',')[1]!, 'base64');
      expect((await sharp(first).metadata()).format).to.equal('jpeg');
      const tooSmall = await imageDataUrls(pngs, 1000).then(
        () => undefined,
        (e: unknown) => e as EngineError,
      );
      expect(tooSmall?.kind).to.equal('too_large');
      expect(tooSmall?.retryable).to.equal(false);
      expect(tooSmall?.message).to.match(/MEDGEMMA_MAX_SLICES/);
      // Through the real remote path: llama-server reads the JPEGs.
      const remote = new RemoteEngine({
        endpoint: engine.server.baseUrl,
        apiKey: engine.server.apiKey,
        timeoutMs: 60_000,
        maxRequestBytes: 1e6 + pngB64 - 1,
      });
      const r = await remote.analyze(request({ images: pngs }));
      expect(r.json).to.have.property('findings');
    });

    it('a wrong key is an auth error, not retried', async function () {
      let retries = 0;
      const remote = new RemoteEngine({ endpoint: `${engine.server.baseUrl}/v1`, apiKey: 'wrong', onRetry: () => retries++ });
      const err = await rejects(remote.analyze(request()));
      expect(err.kind).to.equal('auth');
      expect(err.details.status).to.equal(401);
      expect(err.message).to.match(/MEDGEMMA_API_KEY/);
      expect(retries).to.equal(0);
    });

    it('a server killed mid-request gives a clear error', async function () {
      // kill llama-server once its log shows it has taken the request
      let onTask: (() => void) | undefined;
      const logger = pino(
        { level: 'debug' },
        { write: (line: string) => void (/launch_slot|processing task|new prompt/i.test(line) && onTask?.()) },
      );
      const s = new LlamaServer({
        model: tiny.model,
        mmproj: tiny.mmproj,
        serverPath,
        threads: 1,
        ctxSize: 4096,
        gpuLayers: 0,
        maxRestarts: 0,
        logger,
      });
      await s.start();
      try {
        const remote = new RemoteEngine({ endpoint: s.baseUrl, apiKey: s.apiKey, retries: 1, baseDelayMs: 20, timeoutMs: 30_000 });
        const long = Array.from({ length: 250 }, (_, i) => `w${i % 50}`).join(' ');
        onTask = () => {
          onTask = undefined;
          try {
            process.kill(s.pid!, 'SIGKILL');
          } catch {
            /* already gone */
          }
        };
        const err = await rejects(remote.analyze(request({ prompt: long, images: [...images, ...images], maxTokens: 1000 })));
        expect(err.kind, err.message).to.equal('upstream');
        expect(err.message, err.message).to.match(/unreachable or connection lost/);
        expect(err.message).to.include(s.baseUrl);
        expect(err.details.attempts).to.equal(2);
      } finally {
        await s.stop();
      }
    });

    it('times out', async function () {
      const fake = await fakeEndpoint(() => {
        /* never answers */
      });
      try {
        const remote = new RemoteEngine({ endpoint: fake.url, timeoutMs: 300 });
        const t0 = Date.now();
        const err = await rejects(remote.analyze(request()));
        expect(err.kind).to.equal('timeout');
        expect(Date.now() - t0).to.be.below(3000);
      } finally {
        await fake.close();
      }
    });

    it('malformed JSON is bad_output (body and content)', async function () {
      let n = 0;
      const fake = await fakeEndpoint((_req, res) => {
        res.setHeader('content-type', 'application/json');
        res.end(n++ === 0 ? '{"choices": [' : okReply('{"findings": [ oops'));
      });
      try {
        const remote = new RemoteEngine({ endpoint: fake.url });
        expect((await rejects(remote.analyze(request()))).kind).to.equal('bad_output');
        const err = await rejects(remote.analyze(request()));
        expect(err.kind).to.equal('bad_output');
        expect(err.details.rawText).to.include('oops');
      } finally {
        await fake.close();
      }
    });

    it('429 then 200 is retried with back-off; 5xx exhausts retries; 400 is not retried', async function () {
      const seen: string[] = [];
      let mode = '429';
      let n = 0;
      const fake = await fakeEndpoint((req, res) => {
        let body = '';
        req.on('data', (c) => (body += c));
        req.on('end', () => {
          seen.push(req.headers.authorization ?? '');
          n++;
          if (mode === '429' && n === 1) return res.writeHead(429, { 'retry-after': '0' }).end('slow down');
          if (mode === '503') return res.writeHead(503).end('busy');
          if (mode === '400') return res.writeHead(400).end('bad request');
          expect(JSON.parse(body).messages[0].content).to.equal(SYSTEM_PROMPT);
          res.setHeader('content-type', 'application/json');
          res.end(
            okReply(
              '<unused94>thinking<unused95>' +
                JSON.stringify({ findings: [{ description: 'this confirms an opacity', confidence: 'low' }], image_quality_limited: true }),
            ),
          );
        });
      });
      try {
        const retries: number[] = [];
        const remote = new RemoteEngine({
          endpoint: fake.url,
          apiKey: 'k1',
          baseDelayMs: 10,
          retries: 2,
          onRetry: (i) => retries.push(i.attempt),
        });
        const r = await remote.analyze<{ findings: Array<{ description: string }> }>(request());
        expect(n).to.equal(2);
        expect(retries).to.deep.equal([1]);
        expect(seen[0]).to.equal('Bearer k1');
        expect(r.model.name).to.equal('fake-medgemma');
        // Issue 15: kept verbatim and flagged on its finding (it used to be rewritten).
        expect(r.json.findings[0]!.description).to.equal('this confirms an opacity');
        expect(r.rawText).to.match(/^<unused94>thinking<unused95>/);
        expect(r.finishReason).to.equal('stop');
        expect(r.safetyFlags).to.deep.include.members([
          { target: 'answer', phrase: '<unused94>', rule: 'thinking_stripped' },
          { target: 0, phrase: 'confirms', rule: 'definitive_diagnosis' },
        ]);

        mode = '503';
        n = 0;
        let err = await rejects(remote.analyze(request()));
        expect(err.kind).to.equal('upstream');
        expect(err.details.attempts).to.equal(3);
        expect(n).to.equal(3);

        mode = '400';
        n = 0;
        err = await rejects(remote.analyze(request()));
        expect(err.kind).to.equal('upstream');
        expect(err.details.status).to.equal(400);
        expect(n).to.equal(1);
      } finally {
        await fake.close();
      }
    });

    it('limits concurrency and cancels a queued call', async function () {
      let inFlight = 0;
      let maxInFlight = 0;
      const fake = await fakeEndpoint((_req, res) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        setTimeout(() => {
          inFlight--;
          res.setHeader('content-type', 'application/json');
          res.end(okReply(validContent));
        }, 50);
      });
      try {
        const remote = new RemoteEngine({ endpoint: fake.url, maxConcurrency: 2 });
        const ac = new AbortController();
        const calls = [0, 1, 2, 3].map(() => remote.analyze(request()));
        const queued = rejects(remote.analyze(request({ signal: ac.signal })));
        ac.abort();
        await Promise.all(calls);
        expect(maxInFlight).to.equal(2);
        expect((await queued).kind).to.equal('cancelled');
      } finally {
        await fake.close();
      }
    });
  });

  describe('node-llama-cpp backend (text only)', function () {
    let nlc: NodeLlamaCppEngine;
    before(async function () {
      nlc = await new NodeLlamaCppEngine({ model: tiny.model, device: 'cpu', contextSize: 2048, threads: 1 }).start();
    });
    after(async () => nlc?.close());

    it('answers text with a JSON-schema grammar', async function () {
      const schema: JsonSchema = {
        type: 'object',
        properties: {
          impression: { type: 'string', maxLength: 30 },
          confidence: { enum: ['low', 'moderate', 'high'] },
          limited: { type: 'boolean' },
        },
        required: ['impression', 'confidence', 'limited'],
      };
      const r = await nlc.analyze<{ confidence: string }>({
        images: [],
        prompt: 'Summarise: small left effusion.',
        schema,
        maxTokens: 200,
        seed: 1,
      });
      expect(['low', 'moderate', 'high']).to.include(r.json.confidence);
      expect(r.backend).to.equal('node-llama-cpp');
      expect(r.timings.tokens).to.be.greaterThan(0);
      expect(r.model.sha256).to.match(/^[0-9a-f]{64}$/);
      expect(r.model.quantization).to.equal('MOSTLY_F16');
    });

    it('refuses images and honours cancellation', async function () {
      expect((await rejects(nlc.analyze(request()))).kind).to.equal('unavailable');
      const ac = new AbortController();
      ac.abort();
      expect((await rejects(nlc.analyze({ images: [], prompt: 'x', schema: { type: 'object' }, signal: ac.signal }))).kind).to.equal(
        'cancelled',
      );
    });
  });

  describe('radiant model info / pull (CLI)', function () {
    const env = () => ({ ...process.env, DATA_DIR: dir, MEDGEMMA_MODEL_PATH: '', MEDGEMMA_MMPROJ_PATH: '' });
    const run = async (args: string[]) => {
      try {
        const r = await execFileP(process.execPath, [CLI, ...args], { env: env(), timeout: 60_000 });
        return { code: 0, stdout: r.stdout, stderr: r.stderr };
      } catch (e) {
        const x = e as { code: number; stdout: string; stderr: string };
        return { code: x.code, stdout: x.stdout, stderr: x.stderr };
      }
    };

    it('describes the tiny model and projector and checks the pair', async function () {
      const r = await run(['model', 'info', dir]);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.match(/architecture:\s+gemma3/);
      expect(r.stdout).to.match(/parameters:\s+97\.7 K/);
      expect(r.stdout).to.match(/quantization:\s+MOSTLY_F16/);
      expect(r.stdout).to.match(/context length:\s+4096/);
      expect(r.stdout).to.match(/projector type:\s+gemma3/);
      expect(r.stdout).to.match(/image size:\s+32 px/);
      expect(r.stdout).to.include(await fileSha256(tiny.model));
      expect(r.stdout).to.match(/pair: ok/);
    });

    it('the generator writes a projector with MedGemma geometry (896 px, 14 px patches) on request', async function () {
      const big = path.join(dir, 'geometry-896');
      const gen = await execFileP(
        process.execPath,
        [path.join(path.dirname(CLI), '..', 'fixtures', 'tiny-model.js'), big, '--image-size', '896', '--patch-size', '14'],
        { timeout: 60_000 },
      );
      expect(gen.stdout).to.include('tiny-gemma3-mmproj.gguf');
      const r = await run(['model', 'info', big]);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.match(/image size:\s+896 px/);
      expect(r.stdout).to.match(/pair: ok/);
      expect(() => writeTinyModels(path.join(dir, 'bad-geometry'), { vision: { imageSize: 100, patchSize: 14 } })).to.throw(
        /multiple of patch size/,
      );
    });

    it('refuses a non-GGUF file, a text model as mmproj, and a projector of the wrong size', async function () {
      const junk = path.join(dir, 'notes.txt');
      fs.writeFileSync(junk, 'not a model at all, just text');
      let r = await run(['model', 'info', junk]);
      expect(r.code).to.equal(1);
      expect(r.stderr).to.match(/not a usable GGUF file/);

      r = await run(['model', 'info', tiny.model, '--mmproj', tiny.model]);
      expect(r.code).to.equal(1);
      expect(r.stderr).to.match(/is a text model \(gemma3\), not an mmproj/);

      // a projector whose projection_dim (64) does not match: patch the model's embedding length
      const other = path.join(dir, 'other');
      fs.mkdirSync(other);
      const buf = fs.readFileSync(tiny.model);
      const key = Buffer.from('gemma3.embedding_length');
      const at = buf.indexOf(key) + key.length + 4; // key, then the u32 type tag, then the value
      buf.writeUInt32LE(128, at);
      fs.writeFileSync(path.join(other, 'wide.gguf'), buf);
      fs.copyFileSync(tiny.mmproj, path.join(other, 'mmproj-tiny.gguf'));
      r = await run(['model', 'info', other]);
      expect(r.code).to.equal(1);
      expect(r.stderr).to.match(/projects to 64 dimensions but wide\.gguf has an embedding size of 128/);
    });

    it('model pull validates its argument and fails clearly without network', async function () {
      let r = await run(['model', 'pull']);
      expect(r.code).to.equal(2);
      r = await run(['model', 'pull', 'https://example.com/x.gguf']);
      expect(r.code).to.equal(2);
      expect(r.stderr).to.match(/not of the form hf:<user>\/<repo>\/<file>\.gguf/);
      r = await run([
        'model',
        'pull',
        'hf:unsloth/medgemma-4b-it-GGUF/medgemma-4b-it-Q4_K_M.gguf',
        '--dir',
        path.join(dir, 'pulled'),
        '--timeout',
        '3',
      ]);
      expect(r.code).to.equal(1);
      expect(r.stderr).to.match(/radiant model pull: cannot download hf:unsloth/);
    });
  });
});

describe('createEngine (configuration -> started engine)', function () {
  it('starts the llama-server backend from MEDGEMMA_* variables and the off backend is undefined', async function () {
    this.timeout(600_000);
    const { createEngine } = await import('../src/medgemma/create-engine.js');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'radiant-create-engine-'));
    try {
      writeTinyModels(dir, { seed: 3 });
      expect(await createEngine(loadConfig({ DATA_DIR: dir }).medgemma)).to.equal(undefined);
      const cfg = loadConfig({
        DATA_DIR: dir,
        MEDGEMMA_MODEL_PATH: dir,
        MEDGEMMA_DEVICE: 'cpu',
        MEDGEMMA_THREADS: '1',
        MEDGEMMA_CONTEXT: '2048',
      }).medgemma;
      expect(cfg.backend).to.equal('llama-server');
      const engine = (await createEngine(cfg))!;
      try {
        expect(engine.backend).to.equal('llama-server');
        expect(engine.multimodal).to.equal(true);
        const r = await engine.analyze({ images: [await png(32, 32, 5)], prompt: 'Describe.', schema: findingsSchema, maxTokens: 400 });
        expect(r.model.mmproj?.name).to.equal('tiny-gemma3-mmproj.gguf');
      } finally {
        await engine.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
