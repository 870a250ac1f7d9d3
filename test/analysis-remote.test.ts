/**
 * The analysis pipeline against a stand-in OpenAI-compatible endpoint (the remote backend): the
 * request as MedGemma 1.5's recipe wants it (one user message: instruction, image + "SLICE n" in
 * order, question; no system message; greedy), no patient identifiers and no StudyDescription in
 * what leaves the node, the clinical indication only when a person typed it, box_2d and the 0–1
 * confidence stored, and the context budget refused before anything is sent.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import type http from 'node:http';
import { makeCtSeries } from '../fixtures/generate.js';
import { SYSTEM_PROMPT } from '../src/medgemma/safety.js';
import { apiClient, ingestCorpusFiles, ingestFiles, type ApiClient } from './helpers/api.js';
import { corpusRoot } from './helpers/corpus.js';
import { fakeEndpoint, okReply } from './helpers/fake-openai.js';
import { tokenFor } from './helpers/http.js';
import { startTestNode, type TestNode } from './helpers/node.js';

interface Part {
  type: string;
  text?: string;
  image_url?: { url: string };
}
interface ChatBody {
  model: string;
  messages: Array<{ role: string; content: string | Part[] }>;
  temperature: number;
  top_k?: number;
  max_tokens: number;
  response_format: { json_schema: { schema: unknown } };
}

interface AnalysisView {
  id: number;
  status: string;
  error: string | null;
  prompt: { template_version: string; hash: string; text: string | null } | null;
  images: Array<{ index: number; sop_instance_uid: string }>;
  findings?: Array<{ confidence: number; image_indices: number[] }>;
}

const answer = {
  findings: [
    {
      description: 'Opacity suggestive of consolidation',
      anatomical_location: 'right lower lobe',
      laterality: 'right',
      category: 'abnormal',
      severity: 'mild',
      confidence: 0.85,
      image_numbers: [2, 3],
      recommendation: '',
      region: { image_number: 3, box_2d: [100, 250, 500, 750] },
    },
  ],
  measurements: [],
  impression: 'Findings may represent consolidation.',
  comparison_with_prior: '',
  technical_limitations: '',
};

async function finished(api: ApiClient, id: number): Promise<AnalysisView> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const r = await api.get<AnalysisView>(`/api/analysis/${id}`);
    if (['succeeded', 'failed', 'cancelled'].includes(r.body.status)) return r.body;
    if (Date.now() > deadline) throw new Error(`analysis ${id} did not finish`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

describe('Analysis pipeline → remote endpoint (stand-in): MedGemma 1.5 recipe, no PHI, context budget', function () {
  this.timeout(180_000);
  let node: TestNode;
  let api: ApiClient;
  let fake: Awaited<ReturnType<typeof fakeEndpoint>>;
  const bodies: string[] = [];
  const patient = { id: 'PHI-ID-4711', name: 'Zyxwert^Quorra', birthDate: '19511223', sex: 'F' as const };
  const files = makeCtSeries({
    seed: 'remote-recipe',
    patient,
    studyDate: '20240301',
    studyDescription: 'CT THORAX Zyxwert private note',
    slices: 6,
    size: 64,
  });

  before(async () => {
    fake = await fakeEndpoint((req: http.IncomingMessage, res: http.ServerResponse) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => {
        bodies.push(body);
        res.setHeader('content-type', 'application/json');
        res.end(okReply(JSON.stringify(answer)));
      });
    });
    node = await startTestNode({
      MEDGEMMA_BACKEND: 'remote',
      MEDGEMMA_API_ENDPOINT: fake.url,
      // The release named by the remote model picks the recipe (MEDGEMMA_RECIPE=auto).
      MEDGEMMA_API_MODEL: 'medgemma-1.5-4b-it',
      MEDGEMMA_CONTEXT: '8192',
      ANALYSIS_IMAGE_SIZE: '128',
      JOB_POLL_MS: '100',
    });
    api = apiClient(node, await tokenFor(node, 'radiologist'));
    await ingestFiles(node, files);
  });
  after(async () => {
    await node?.cleanup();
    await fake?.close();
  });

  it('sends one user message: instruction, each slice then "SLICE n", the question with the schema; greedy; no system message', async () => {
    bodies.length = 0;
    const r = await api.post<AnalysisView>('/api/analysis', { study_id: files[0]!.studyInstanceUid });
    const a = await finished(api, r.body.id);
    expect(a.status, a.error ?? '').to.equal('succeeded');
    expect(bodies).to.have.length(1);
    const body = JSON.parse(bodies[0]!) as ChatBody;
    expect(body.messages.map((m) => m.role)).to.deep.equal(['user']);
    expect(body).to.include({ model: 'medgemma-1.5-4b-it', temperature: 0, top_k: 1, max_tokens: 4096 });
    const parts = body.messages[0]!.content as Part[];
    const shape = parts.map((p) => (p.type === 'image_url' ? 'image' : /^SLICE \d+$/.test(p.text!) ? p.text! : 'text'));
    expect(shape).to.deep.equal(['text', ...[1, 2, 3, 4, 5, 6].flatMap((n) => ['image', `SLICE ${n}`]), 'text']);
    // The safety guidance opens the instruction (the recipe has no system message).
    expect(parts[0]!.text!.startsWith(SYSTEM_PROMPT)).to.equal(true);
    expect(parts[0]!.text).to.include('numbered from 1').and.include('box_2d [y0, x0, y1, x1]').and.include('confidence between 0 and 1');
    const question = parts.at(-1)!.text!;
    expect(question).to.match(/^\n\nBased on the visual evidence in the slices provided above/);
    expect(question).to.include('"confidence": number 0..1').and.include('"box_2d": [integer 0..1000 ×4]');
    expect(JSON.stringify(body.response_format.json_schema.schema)).to.include('"box_2d"').and.not.include('confidence_percent');
    for (const p of parts.filter((x) => x.type === 'image_url')) expect(p.image_url!.url).to.match(/^data:image\/png;base64,/);

    // images[] is the order sent: six slices, InstanceNumber 1..6.
    const numbers = new Map(
      (await node.db('instances').select('sop_instance_uid', 'instance_number')).map(
        (x: { sop_instance_uid: string; instance_number: number }) => [x.sop_instance_uid, x.instance_number],
      ),
    );
    expect(a.images.map((i) => numbers.get(i.sop_instance_uid))).to.deep.equal([1, 2, 3, 4, 5, 6]);
    // The stored prompt is the user text sent (labels included), hashed.
    expect(a.prompt!.text).to.include('SLICE 6').and.include('Based on the visual evidence');
    expect(a.prompt!.template_version).to.equal('2');

    // 0–1 confidence kept; image numbers (from 1) stored as indices; box_2d converted and kept.
    expect(a.findings![0]).to.deep.include({ confidence: 0.85, image_indices: [1, 2] });
    const row = (await node.db('findings').where({ analysis_id: a.id }).first()) as { region: string };
    expect(JSON.parse(row.region)).to.deep.equal({ imageIndex: 2, box: [32, 12.8, 96, 64], box2d: [100, 250, 500, 750] });
  });

  it('carries no patient name, ID, birth date or StudyDescription; the indication only when a person typed it', async () => {
    const text = bodies.join('\n');
    expect(bodies).to.have.length(1);
    for (const phi of ['Zyxwert', 'Quorra', 'PHI-ID-4711', '19511223', '1951-12-23', '23.12.1951', 'CT THORAX', 'private note'])
      expect(text, phi).not.to.include(phi);
    expect(text).not.to.include('Clinical indication');
    expect(text).to.include('72-year-old, female');

    bodies.length = 0;
    const r = await api.post<AnalysisView>('/api/analysis', {
      study_id: files[0]!.studyInstanceUid,
      clinical_indication: 'cough for 3 weeks',
    });
    expect((await finished(api, r.body.id)).status).to.equal('succeeded');
    expect(bodies).to.have.length(1);
    expect(bodies[0]).to.include('Clinical indication: cough for 3 weeks.');
    for (const phi of ['Zyxwert', 'PHI-ID-4711', '19511223', 'CT THORAX']) expect(bodies[0], phi).not.to.include(phi);
  });

  it('a request over the context (85 slices × 260 tokens > 8192) fails before anything is sent, naming MEDGEMMA_MAX_SLICES', async () => {
    bodies.length = 0;
    const dir = 'ct-series-chest-99';
    const names = fs.readdirSync(`${corpusRoot}/${dir}`).filter((f) => f.endsWith('.dcm'));
    const stored = await ingestCorpusFiles(node, Object.fromEntries(names.map((f) => [f, `${dir}/${f}`])));
    const study = Object.values(stored)[0]!.study_instance_uid as string;
    const r = await api.post<AnalysisView>('/api/analysis', { study_id: study });
    const a = await finished(api, r.body.id);
    expect(a.status).to.equal('failed');
    expect(a.error)
      .to.match(/too_large/)
      .and.match(/MEDGEMMA_MAX_SLICES to \d+ or less/)
      .and.match(/MEDGEMMA_CONTEXT/);
    expect(bodies).to.have.length(0);
  });
});
