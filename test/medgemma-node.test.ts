import { expect } from 'chai';
import fsp from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { writeTinyModels } from '../fixtures/tiny-model.js';
import { ensureLlamaServer } from '../src/medgemma/build/build-llama.js';
import type { EngineStatus } from '../src/medgemma/engine-host.js';
import { corpusDir } from './helpers/corpus.js';
import { echoscu, storescu } from './helpers/dcmtk.js';
import { bearer, baseUrl, tokenFor } from './helpers/http.js';
import { startTestNode, tempDir, type TestNode } from './helpers/node.js';

/**
 * The engine inside `radiant serve`: started in the background after the listeners, its state
 * at GET /api/engine, a broken model never taking DICOM down, llama-server stopped with the node.
 */
async function engineStatus(node: TestNode, token: string, until: (s: EngineStatus) => boolean, ms = 120_000): Promise<EngineStatus> {
  const deadline = Date.now() + ms;
  for (;;) {
    const res = await fetch(`${baseUrl(node)}/api/engine`, { headers: bearer(token) });
    expect(res.status).to.equal(200);
    const s = (await res.json()) as EngineStatus;
    if (until(s)) return s;
    if (Date.now() > deadline) throw new Error(`engine stayed ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('MedGemma engine in the node (radiant serve)', function () {
  this.timeout(600_000);

  it('is off without a model; a viewer may not see it', async () => {
    const node = await startTestNode();
    try {
      const s = await engineStatus(node, await tokenFor(node, 'radiologist'), () => true);
      expect(s).to.include({ state: 'off', backend: 'off' });
      expect((await fetch(`${baseUrl(node)}/api/engine`, { headers: bearer(await tokenFor(node, 'viewer')) })).status).to.equal(403);
    } finally {
      await node.cleanup();
    }
  });

  it('a missing model file leaves the engine failed, naming the file, and the node serving DICOM', async () => {
    const missing = path.join(await tempDir('nomodel'), 'medgemma-4b-it-Q4_K_M.gguf');
    const node = await startTestNode({ MEDGEMMA_BACKEND: 'llama-server', MEDGEMMA_MODEL_PATH: missing, MEDGEMMA_DEVICE: 'cpu' });
    try {
      const s = await engineStatus(node, await tokenFor(node, 'radiologist'), (x) => x.state !== 'starting');
      expect(s.state).to.equal('failed');
      expect(s.error).to.include(missing);
      expect((await echoscu(node.dicomPort)).code).to.equal(0);
      const files = corpusDir('ct-series-chest-99')
        .slice(0, 3)
        .map((e) => e.absPath);
      expect((await storescu(node.dicomPort, files)).code).to.equal(0);
      expect(Number(((await node.db('instances').count({ n: '*' })) as Array<{ n: number | string }>)[0]!.n)).to.equal(3);
    } finally {
      await node.cleanup();
    }
  });

  it('with the tiny model: ready with its identity, analyses images, and llama-server stops with the node', async () => {
    await ensureLlamaServer({ cuda: false });
    const dir = await tempDir('tinymodel');
    const tiny = writeTinyModels(dir, { seed: 11 });
    const node = await startTestNode({ MEDGEMMA_MODEL_PATH: dir, MEDGEMMA_DEVICE: 'cpu', MEDGEMMA_THREADS: '1', MEDGEMMA_CONTEXT: '4096' });
    let pid: number | undefined;
    try {
      const s = await engineStatus(node, await tokenFor(node, 'service'), (x) => x.state !== 'starting');
      expect(s.state, s.error).to.equal('ready');
      expect(s.backend).to.equal('llama-server');
      expect(s.model).to.include({ name: path.basename(tiny.model) });
      expect(s.model!.sha256).to.match(/^[0-9a-f]{64}$/);
      const engine = node.engine.ready!;
      expect(engine.multimodal).to.equal(true);
      const result = await engine.analyze({
        images: [
          await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 90, g: 90, b: 90 } } })
            .png()
            .toBuffer(),
        ],
        prompt: 'Describe the image.',
        schema: {
          type: 'object',
          properties: { finding: { type: 'string', enum: ['normal', 'abnormal'] } },
          required: ['finding'],
          additionalProperties: false,
        },
        maxTokens: 400,
      });
      expect(['normal', 'abnormal']).to.include((result.json as { finding: string }).finding);
      expect(result.model.sha256).to.equal(s.model!.sha256);
      pid = (engine as unknown as { server: { child?: { pid?: number } } }).server.child?.pid;
    } finally {
      await node.cleanup();
      await fsp.rm(dir, { recursive: true, force: true });
    }
    if (pid) {
      let alive = true;
      try {
        process.kill(pid, 0);
      } catch {
        alive = false;
      }
      expect(alive, `llama-server ${pid} still running`).to.equal(false);
    }
  });
});
