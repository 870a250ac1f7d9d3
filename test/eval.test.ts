import { expect } from 'chai';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tinyEngineEnv, writeTinyModels } from '../fixtures/tiny-model.js';
import { makeCrImage, makeCtSeries, writeSeries } from '../fixtures/generate.js';
import { ensureLlamaServer } from '../src/medgemma/build/build-llama.js';
import type { EvalResult } from '../src/analysis/eval/eval-result.js';
import { runTool, type ToolResult } from './helpers/dcmtk.js';
import { tempDir } from './helpers/node.js';

/**
 * `radiant eval` as a user runs it: the real CLI as a child process, studies imported through the
 * ingest path, analysed by the real llama-server with the tiny random-weight Gemma 3, the JSON
 * result checked for its structure and counts (the figures of a random model mean nothing).
 */

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli.js');
const show = (r: ToolResult): string => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

describe('radiant eval (child process)', function () {
  this.timeout(900_000);
  let dir: string;
  let env: Record<string, string>;
  const radiant = (args: string[], extra: Record<string, string> = {}, timeoutMs = 600_000) =>
    runTool(process.execPath, [CLI, ...args], timeoutMs, { ...env, ...extra });

  before(async function () {
    await ensureLlamaServer({ cuda: false });
    dir = await tempDir('eval');
    writeTinyModels(path.join(dir, 'model'), { seed: 5 });
    env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? dir,
      ...(process.env.LLAMA_CACHE_DIR ? { LLAMA_CACHE_DIR: process.env.LLAMA_CACHE_DIR } : {}),
      ...(process.env.XDG_CACHE_HOME ? { XDG_CACHE_HOME: process.env.XDG_CACHE_HOME } : {}),
      DATA_DIR: path.join(dir, 'data'),
      ...tinyEngineEnv(path.join(dir, 'model')),
      JOB_POLL_MS: '200',
      JOB_HEARTBEAT_MS: '500',
    };
  });
  after(async () => dir && (await fsp.rm(dir, { recursive: true, force: true })));

  it('a bad manifest stops with exit 2 and names the line and the field; no engine is started', async function () {
    const manifest = path.join(dir, 'bad.jsonl');
    await fsp.writeFile(manifest, '{"study": "a", "labels": {"x": true}}\n{"study": "a", "labels": {"x": "yes"}}\n');
    const r = await radiant(['eval', manifest, '--out', path.join(dir, 'bad.json')], {}, 60_000);
    expect(r.code, show(r)).to.equal(2);
    expect(r.stderr).to.include(`radiant eval: ${manifest}:2: labels.x: each label is true (present) or false (absent)`);
    expect(fs.existsSync(path.join(dir, 'bad.json'))).to.equal(false);
  });

  it('with no engine, no study can be analysed: exit 1 with the reason', async function () {
    const manifest = path.join(dir, 'off.jsonl');
    await fsp.writeFile(manifest, '{"studyInstanceUid": "1.2.3", "labels": {"x": true}}\n');
    const r = await radiant(['eval', manifest, '--out', path.join(dir, 'off.json')], { MEDGEMMA_BACKEND: 'off' }, 60_000);
    expect(r.code, show(r)).to.equal(1);
    expect(r.stderr).to.match(/radiant eval: MedGemma engine is off; no study analysed/);
  });

  it('imports, analyses and scores a small labelled set; the JSON result holds the counts', async function () {
    const ct = makeCtSeries({ seed: 'eval-ct', patient: { id: 'EVAL-1' }, slices: 6, size: 32 });
    const cr = makeCrImage({ seed: 'eval-cr', patient: { id: 'EVAL-2' }, size: 32 });
    const known = makeCtSeries({ seed: 'eval-known', patient: { id: 'EVAL-3' }, slices: 4, size: 32 });
    await writeSeries(path.join(dir, 'set', 'ct'), ct);
    await writeSeries(path.join(dir, 'set', 'cr'), cr);
    await writeSeries(path.join(dir, 'known'), known);
    // A study already in the node, named by its UID in the manifest.
    const imp = await radiant(['import', path.join(dir, 'known')], {}, 120_000);
    expect(imp.code, show(imp)).to.equal(0);

    const manifest = path.join(dir, 'set', 'manifest.jsonl');
    const lines = [
      { id: 'ct', study: 'ct', labels: { pneumothorax: true, nodule: false }, findings: ['pneumothorax'] },
      { id: 'cr', study: 'cr', labels: { pneumothorax: false, fracture: true } },
      { id: 'known', studyInstanceUid: known[0]!.studyInstanceUid, labels: { pneumothorax: true } },
      { id: 'missing', studyInstanceUid: '1.2.826.0.1.999.1', labels: { pneumothorax: true } },
      { id: 'junk', study: 'junk.txt', labels: { fracture: false } },
    ];
    await fsp.writeFile(path.join(dir, 'set', 'junk.txt'), 'not DICOM');
    await fsp.writeFile(manifest, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
    const out = path.join(dir, 'result.json');
    const r = await radiant(['eval', manifest, '--out', out, '--timeout', '300']);
    expect(r.code, show(r)).to.equal(0);
    expect(r.stdout).to.match(/^label +n +TP +FP +TN +FN +sens +spec +PPV +NPV +acc +kappa$/m);
    expect(r.stdout).to.include(`result: ${out}`);

    const res = JSON.parse(await fsp.readFile(out, 'utf8')) as EvalResult;
    expect(res.studies.total).to.equal(5);
    expect(res.perStudy.map((s) => s.id)).to.deep.equal(['ct', 'cr', 'known', 'missing', 'junk']);
    expect(res.perStudy[0]!.studyInstanceUid).to.equal(ct[0]!.studyInstanceUid);
    expect(res.perStudy[1]!.studyInstanceUid).to.equal(cr[0]!.studyInstanceUid);
    const missing = res.perStudy[3]!;
    expect(missing).to.include({ status: 'failed', analysisId: null, reason: 'study N is not in the node' });
    expect(res.failures.byReason['study N is not in the node']).to.equal(1);
    expect(res.perStudy[4]).to.include({ status: 'failed', reason: 'no instance stored by the import' });
    expect(res.perStudy[4]!.error).to.include('junk.txt');
    expect(res.failures.total).to.equal(res.studies.failed);

    // The tiny model may fail a study (an empty answer is a failure): the counts follow what ran.
    const analysed = res.perStudy.filter((s) => s.status === 'succeeded');
    expect(analysed.length, JSON.stringify(res.perStudy, null, 1)).to.be.at.least(2);
    expect(res.studies.analysed).to.equal(analysed.length);
    expect(res.studies.analysed + res.studies.failed).to.equal(5);
    for (const s of res.perStudy.slice(0, 3)) expect(s.analysisId).to.be.a('number');
    expect(Object.keys(res.labels)).to.deep.equal(['fracture', 'nodule', 'pneumothorax']);
    for (const [label, f] of Object.entries(res.labels)) {
      const withLabel = analysed.filter((s) => label in s.expected);
      expect(f.n, label).to.equal(withLabel.length);
      expect(f.tp + f.fn, label).to.equal(withLabel.filter((s) => s.expected[label]).length);
      expect(f.tn + f.fp, label).to.equal(withLabel.filter((s) => !s.expected[label]).length);
      expect(f.tp + f.fp, label).to.equal(withLabel.filter((s) => s.predicted![label]).length);
    }
    const sumN = Object.values(res.labels).reduce((n, f) => n + f.n, 0);
    expect(res.overall.n).to.equal(sumN);

    // Latency of every analysed study, model time recorded by llama-server's timings.
    expect(res.latency.totalMs!.n).to.equal(analysed.length);
    expect(res.latency.totalMs!.p50).to.be.greaterThan(0);
    expect(res.latency.totalMs!.max).to.be.at.least(res.latency.totalMs!.p95);
    expect(res.latency.modelMs!.p50).to.be.greaterThan(0);
    expect(res.latency.modelMs!.max).to.be.at.most(res.latency.totalMs!.max);

    // The model's identity: the tiny GGUF, not a known MedGemma release, so not validated.
    const sha = createHash('sha256')
      .update(await fsp.readFile(path.join(dir, 'model', 'tiny-gemma3.gguf')))
      .digest('hex');
    expect(res.model).to.include({ name: 'tiny-gemma3.gguf', sha256: sha, backend: 'llama-server', validated: false });
    expect(res.answeredBy).to.deep.equal([`tiny-gemma3.gguf@${sha}`]);
    const flagged = res.perStudy.reduce((n, s) => n + s.safetyFlags.length, 0);
    expect(res.safetyFlags.total).to.equal(flagged);
    expect(Object.values(res.safetyFlags.byRule).reduce((a, b) => a + b, 0)).to.equal(flagged);
  });
});
