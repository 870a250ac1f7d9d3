/**
 * Issue 15 end to end on a stand-in OpenAI-compatible endpoint (the remote backend, whose model is
 * never validated) answering chosen words: the verbatim answer (raw_answer, also of a failed
 * analysis), safety flags on the finding they concern, the study's own patient identifier
 * redacted from what is published, full provenance in the API and the audit trail; the report's
 * SR (dciodvfy) and PDF (pdftotext) carry the flag and the "unvalidated model" label, and a
 * forwarding rule for AI results does not send them.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { createRemoteNode } from '../src/catalog/remote-nodes.js';
import { canonicalJson } from '../src/medgemma/request-provenance.js';
import { apiClient, auditRows, type ApiClient } from './helpers/api.js';
import { corpusDir } from './helpers/corpus.js';
import { runTool, startStorescp } from './helpers/dcmtk.js';
import { fakeEndpoint } from './helpers/fake-openai.js';
import { baseUrl, bearer, tokenFor } from './helpers/http.js';
import { freePort, listFiles, startTestNode, tempDir, type TestNode } from './helpers/node.js';

type Schema = {
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  enum?: unknown[];
  anyOf?: Schema[];
  minimum?: number;
  items?: Schema;
};

/**
 * An answer that fits the schema the request carries (whatever the recipe's field names): the
 * chosen words in the finding's description and the impression, the least of everything else.
 */
function answerFor(schema: Schema, words: { finding: string; impression: string }): unknown {
  const fill = (s: Schema, key: string, inFinding: boolean): unknown => {
    if (s.anyOf) return s.anyOf.some((x) => x.type === 'null') ? null : fill(s.anyOf[0]!, key, inFinding);
    if (s.enum) return s.enum.includes('right') ? 'right' : s.enum.includes('abnormal') ? 'abnormal' : s.enum[0];
    const type = Array.isArray(s.type) ? s.type.find((t) => t !== 'null') : s.type;
    if (type === 'string') return inFinding && key === 'description' ? words.finding : key === 'impression' ? words.impression : 'n/a';
    if (type === 'integer') return s.minimum ?? 0;
    if (type === 'number') return Math.max(s.minimum ?? 0, 0.5) > 1 ? (s.minimum ?? 0) : 0.5;
    if (type === 'boolean') return false;
    if (type === 'array') return key === 'findings' && s.items ? [fill(s.items, '', true)] : [];
    if (type === 'object' || s.properties)
      return Object.fromEntries(Object.entries(s.properties ?? {}).map(([k, v]) => [k, fill(v, k, inFinding)]));
    return null;
  };
  return fill(schema, '', false);
}

const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');

interface AnalysisView {
  id: number;
  status: string;
  error: string | null;
  raw_answer: string | null;
  safety_flags: Array<{ target: number | string; phrase: string; rule: string }>;
  findings: Array<{ index: number; description: string }>;
  impression: string | null;
  images: Array<{ index: number; sop_instance_uid: string; frame_number: number }>;
  model: { name: string; validated: boolean; validation: { basis: string; reason: string }; sha256: string | null; backend: string };
  provenance: Record<string, unknown> & { image_sha256: string[]; sampling: Record<string, unknown> };
}

describe('AI a radiologist can trust: raw answer, safety flags, provenance, unvalidated model held back (stand-in endpoint)', function () {
  this.timeout(300_000);
  let node: TestNode;
  let fake: Awaited<ReturnType<typeof fakeEndpoint>>;
  let scp: { port: number; dir: string; stop(): Promise<void> };
  let api: ApiClient;
  let studyUid = '';
  let patientId = '';
  let mode: 'flagged' | 'loop' = 'flagged';
  let lastBody: Record<string, unknown> = {};
  let lastContent = '';
  let analysis: AnalysisView;
  const work: string[] = [];

  before(async () => {
    fake = await fakeEndpoint((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        lastBody = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
        const schema = (lastBody.response_format as { json_schema: { schema: Schema } }).json_schema.schema;
        lastContent =
          mode === 'loop'
            ? `{"findings": [${'"the the the the the the the the", '.repeat(400)}`
            : JSON.stringify(
                answerFor(schema, {
                  finding: `Biopsy confirmed adenocarcinoma of the right upper lobe in patient ${patientId}`,
                  impression: 'Mass in the right upper lobe.',
                }),
              );
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            model: 'stand-in-medgemma',
            choices: [{ finish_reason: 'stop', message: { role: 'assistant', content: lastContent } }],
            usage: { prompt_tokens: 1234, completion_tokens: 56 },
          }),
        );
      });
    });
    node = await startTestNode({
      MEDGEMMA_BACKEND: 'remote',
      MEDGEMMA_API_ENDPOINT: fake.url,
      MEDGEMMA_MAX_SLICES: '6',
      MEDGEMMA_MAX_RETRIES: '0',
      JOB_POLL_MS: '200',
      FORWARD_SETTLE_MS: '100',
    });
    for (const e of corpusDir('ct-series-chest-99')) await node.ingestor.ingestFile(e.absPath, false, { source: 'import' });
    const study = (await node
      .db('studies as s')
      .join('patients as p', 'p.id', 's.patient_pk')
      .first('s.study_instance_uid', 'p.patient_id')) as {
      study_instance_uid: string;
      patient_id: string;
    };
    studyUid = study.study_instance_uid;
    patientId = study.patient_id;
    expect(patientId).to.match(/\w{3,}/);

    const dest = await tempDir('trust-dest');
    work.push(dest);
    const port = await freePort();
    scp = { ...(await startStorescp(port, dest, { aeTitle: 'TRUST_PACS' })), port, dir: dest };
    const pacs = await createRemoteNode(node.db, {
      aeTitle: 'TRUST_PACS',
      host: '127.0.0.1',
      port,
      tls: false,
      description: 'PACS',
      allowQueryRetrieve: false,
      stowUrl: null,
      stowAuthorization: null,
    });
    const admin = apiClient(node, await tokenFor(node, 'admin'));
    expect(
      (await admin.post('/api/forwarding/rules', { name: 'AI results', node_id: pacs.id, match: { aiResults: true } })).status,
    ).to.equal(201);
    api = apiClient(node, await tokenFor(node, 'radiologist'));
  });

  after(async () => {
    await scp?.stop();
    await node?.cleanup();
    await fake?.close();
    for (const d of work) await fsp.rm(d, { recursive: true, force: true });
  });

  const run = async (): Promise<AnalysisView> => {
    const r = await api.post<{ id: number }>('/api/analysis', { study_id: studyUid });
    expect(r.status).to.equal(202);
    const deadline = Date.now() + 120_000;
    for (;;) {
      const a = (await api.get<AnalysisView>(`/api/analysis/${r.body.id}`)).body;
      if (['succeeded', 'failed', 'cancelled'].includes(a.status)) return a;
      if (Date.now() > deadline) throw new Error(`analysis ${r.body.id} still ${a.status}`);
      await new Promise((res) => setTimeout(res, 150));
    }
  };

  it('GET /api/analysis/{id}: raw_answer verbatim, flags on finding 0, the patient ID redacted, the model unvalidated, images in order', async () => {
    mode = 'flagged';
    analysis = await run();
    expect(analysis.status, analysis.error ?? '').to.equal('succeeded');
    expect(analysis.raw_answer).to.equal(lastContent);
    expect(analysis.raw_answer).to.include(patientId);
    const f0 = analysis.safety_flags.filter((f) => f.target === 0);
    expect(
      f0.some((f) => f.rule === 'definitive_diagnosis' && /confirmed/i.test(f.phrase)),
      JSON.stringify(f0),
    ).to.equal(true);
    expect(
      f0.some((f) => f.rule === 'phi_echo' && !f.phrase.includes(patientId)),
      JSON.stringify(f0),
    ).to.equal(true);
    // The model's words kept (never "suggested"), only the identifier redacted.
    expect(analysis.findings[0]!.description).to.include('Biopsy confirmed adenocarcinoma').and.not.include(patientId);
    expect(analysis.model).to.include({ validated: false, backend: 'remote', sha256: null });
    expect(analysis.model.validation.basis).to.equal('none');
    expect(analysis.images.map((i) => i.index)).to.deep.equal([0, 1, 2, 3, 4, 5]);
    for (const im of analysis.images) expect(im.sop_instance_uid).to.match(/^[0-9.]+$/);
  });

  it('provenance: digests of what the endpoint received, token counts, finish_reason; audited without model text or PHI', async () => {
    const p = analysis.provenance;
    const messages = lastBody.messages as Array<{ role: string; content: unknown }>;
    const user = messages.find((m) => m.role === 'user')!.content as Array<{ type: string; image_url?: { url: string } }>;
    const urls = user.filter((x) => x.type === 'image_url').map((x) => x.image_url!.url);
    expect(p.image_sha256).to.deep.equal(urls.map((u) => sha(Buffer.from(u.slice(u.indexOf(',') + 1), 'base64'))));
    expect(p.image_sha256).to.have.length(analysis.images.length);
    const schema = (lastBody.response_format as { json_schema: { schema: unknown } }).json_schema.schema;
    expect(p.schema_sha256).to.equal(sha(canonicalJson(schema)));
    const system = messages.find((m) => m.role === 'system');
    expect(p.system_prompt_sha256).to.equal(system ? sha(String(system.content)) : null);
    expect(p.user_prompt_sha256).to.match(/^[0-9a-f]{64}$/);
    expect(p.sampling).to.include({ temperature: lastBody.temperature, max_tokens: lastBody.max_tokens });
    expect(p).to.include({ model_validated: false, llama_build: null, prompt_tokens: 1234, predicted_tokens: 56, finish_reason: 'stop' });

    const row = (await auditRows(node, 'ai.analysis')).find((r) => r.resource_id === String(analysis.id) && r.outcome === 'success')!;
    const details = JSON.parse(row.details!) as { provenance: Record<string, unknown> };
    expect(details.provenance).to.include({ schemaSha256: p.schema_sha256, userPromptSha256: p.user_prompt_sha256, modelValidated: false });
    expect(row.details).to.not.include(patientId).and.not.include('adenocarcinoma');
  });

  it('a looping answer fails with a reason and keeps the raw text', async () => {
    mode = 'loop';
    const failed = await run();
    mode = 'flagged';
    expect(failed.status).to.equal('failed');
    expect(failed.error).to.match(/loop|unusable/);
    expect(failed.raw_answer).to.equal(lastContent);
  });

  it('the report: SR (dciodvfy clean) with the flag item, the redacted words and "unvalidated model"; PDF with the warning and banner; never forwarded', async () => {
    const r = await api.post<{ id: number; dicom: { sr: { sop_instance_uid: string }; pdf: { sop_instance_uid: string } } }>(
      '/api/reports',
      { study_id: studyUid, analysis_id: analysis.id, include_ai_disclaimer: true },
    );
    expect(r.status, JSON.stringify(r.body)).to.equal(201);
    const dir = await tempDir('trust-report');
    work.push(dir);
    const token = await tokenFor(node, 'viewer');
    const sr = Buffer.from(
      await (await fetch(`${baseUrl(node)}/api/export/report/${r.body.id}/dicom-sr`, { headers: bearer(token) })).arrayBuffer(),
    );
    await fsp.writeFile(path.join(dir, 'sr.dcm'), sr);
    const dump = (await runTool('dsrdump', ['+U8', '+Pc', '+Pl', path.join(dir, 'sr.dcm')])).stdout;
    expect(dump, dump).to.match(/\(SAFETYFLAG,99RADIANT,"AI safety flag"\)="definitive_diagnosis: [^"]*confirmed/i);
    expect(dump).to.match(/\(SAFETYFLAG,99RADIANT,"AI safety flag"\)="phi_echo: \[redacted/);
    expect(dump).to.match(/\(111001,DCM,"Algorithm Name"\)="[^"]*\(unvalidated model\)"/);
    expect(dump).to.match(/\(111003,DCM,"Algorithm Version"\)="[^"]*unvalidated model"/);
    expect(dump).to.match(/\(111002,DCM,"Algorithm Parameters"\)="schema_sha256=[0-9a-f]{64}"/);
    expect(dump).to.include('Biopsy confirmed adenocarcinoma');
    // The raw answer (with the echoed identifier) is never published.
    expect(sr.includes(Buffer.from(`in patient ${patientId}`))).to.equal(false);
    const vfy = await runTool('dciodvfy', [path.join(dir, 'sr.dcm')]);
    expect(vfy.stdout + vfy.stderr, vfy.stdout + vfy.stderr).not.to.match(/^Error/m);

    const pdf = Buffer.from(
      await (await fetch(`${baseUrl(node)}/api/export/report/${r.body.id}/pdf`, { headers: bearer(token) })).arrayBuffer(),
    );
    await fsp.writeFile(path.join(dir, 'r.pdf'), pdf);
    const text = (await runTool('pdftotext', [path.join(dir, 'r.pdf'), '-'])).stdout;
    expect(text).to.include('UNVALIDATED MODEL — output of an unidentified model');
    expect(text).to.match(/Warning — AI safety flag \(definitive diagnosis\)/);
    expect(text).not.to.include(`in patient ${patientId}`);

    // Stored in the study, held from the aiResults rule: nothing queued, nothing received.
    expect(await node.db('instances').where({ sop_instance_uid: r.body.dicom.sr.sop_instance_uid }).first()).to.not.equal(undefined);
    await new Promise((res) => setTimeout(res, 1500));
    expect(await node.db('forward_items').select('id')).to.deep.equal([]);
    expect(listFiles(scp.dir)).to.deep.equal([]);
    const created = (await auditRows(node, 'report.created')).at(-1)!;
    expect(JSON.parse(created.details!))
      .to.have.property('forwardingHeld')
      .that.match(/unvalidated model/);
  });
});
