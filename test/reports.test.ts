import { expect } from 'chai';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import dcmjs from 'dcmjs';
import { tinyEngineEnv, writeTinyModels } from '../fixtures/tiny-model.js';
import { ensureLlamaServer } from '../src/medgemma/build/build-llama.js';
import { createRemoteNode } from '../src/catalog/remote-nodes.js';
import { createUser } from '../src/auth/users.js';
import { apiClient, auditRows, type ApiClient } from './helpers/api.js';
import { corpusDir } from './helpers/corpus.js';
import { runTool, startStorescp, storescu } from './helpers/dcmtk.js';
import { baseUrl, bearer, tokenFor } from './helpers/http.js';
import { freePort, listFiles, startTestNode, tempDir, type TestNode } from './helpers/node.js';
import { isOhifCancelBug, launchChromium } from './helpers/browser.js';
import { until as pollUntil } from './helpers/until.js';

/**
 * Publishing AI results, end to end on real parts: the corpus CT by storescu, an analysis by the
 * real llama-server (tiny model), a draft report published as Comprehensive 3D SR + Encapsulated
 * PDF through the node's own ingest path (QIDO-RS, WADO-RS), checked by DCMTK dsrdump, dicom3tools
 * dciodvfy and poppler; a radiologist edits and signs; the verified SR and final PDF replace the
 * draft (which stays, named as predecessor) and are forwarded to a DCMTK storescp.
 */

interface ReportView {
  id: number;
  state: string;
  version: number;
  ai_draft: boolean;
  findings: Array<{ number: number; tracking_uid: string; description: string; author: string; confidence: number | null }>;
  impression: string;
  signed_by: string | null;
  dicom: {
    sr: { sop_instance_uid: string; series_instance_uid: string } | null;
    pdf: { sop_instance_uid: string; series_instance_uid: string } | null;
  };
  versions?: Array<{
    version: number;
    state: string;
    action: string;
    changed_by: string;
    changes: Array<{ field: string }>;
    sr_sop_instance_uid: string | null;
  }>;
}

type Naturalized = Record<string, unknown> & {
  VerificationFlag?: string;
  CompletionFlag?: string;
  StudyInstanceUID?: string;
  SOPClassUID?: string;
  PredecessorDocumentsSequence?: Array<{
    ReferencedSeriesSequence?: Array<{ ReferencedSOPSequence?: Array<{ ReferencedSOPInstanceUID?: string }> }>;
  }>;
  VerifyingObserverSequence?: Array<{ VerifyingObserverName?: unknown }>;
};

function naturalize(bytes: Buffer): Naturalized {
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer;
  const dict = dcmjs.data.DicomMessage.readFile(ab).dict;
  return dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict) as Naturalized;
}

const waitFor = <T>(what: string, probe: () => Promise<T | undefined | false>, ms = 180_000): Promise<T> => pollUntil(what, probe, ms, 150);

describe('Reports: DICOM-SR + Encapsulated PDF, review and sign-off, forwarding, exports', function () {
  this.timeout(900_000);
  let node: TestNode;
  let modelDir: string;
  let scp: { port: number; dir: string; stop(): Promise<void> };
  let radiologist: ApiClient;
  let studyUid = '';
  let analysisId = 0;
  let report: ReportView;
  let draftSr = '';
  let draftPdf = '';
  const work: string[] = [];

  before(async function () {
    await ensureLlamaServer({ cuda: false });
    modelDir = await tempDir('reports-model');
    const tiny = writeTinyModels(modelDir, { seed: 9 });
    // An unvalidated model's results are never forwarded on their own (issue 15): the admin
    // trusts these files by their SHA-256, so the forwarding below is allowed.
    const trusted = [tiny.model, tiny.mmproj].map((f) => createHash('sha256').update(fs.readFileSync(f)).digest('hex'));
    node = await startTestNode({
      ...tinyEngineEnv(modelDir),
      MEDGEMMA_TRUSTED_SHA256: trusted.join(','),
      JOB_POLL_MS: '200',
      FORWARD_SETTLE_MS: '100',
      FORWARD_POLL_MS: '200',
      INSTITUTION_NAME: 'Riverside General Hospital',
    });
    const dest = await tempDir('reports-dest');
    const port = await freePort();
    scp = { ...(await startStorescp(port, dest, { aeTitle: 'REPORT_PACS' })), port, dir: dest };
    // Forward the node's AI results (and only those) to the PACS.
    const pacs = await createRemoteNode(node.db, {
      aeTitle: 'REPORT_PACS',
      host: '127.0.0.1',
      port,
      tls: false,
      description: 'reports PACS',
      allowQueryRetrieve: false,
      stowUrl: null,
      stowAuthorization: null,
    });
    const admin = apiClient(node, await tokenFor(node, 'admin'));
    expect(
      (await admin.post('/api/forwarding/rules', { name: 'AI results to the PACS', node_id: pacs.id, match: { aiResults: true } })).status,
    ).to.equal(201);

    await createUser(node.db, {
      username: 'dr.mueller',
      password: 'correct horse battery',
      role: 'radiologist',
      fullName: 'Müller^Zoë',
      credentials: 'MD',
    });
    const login = await fetch(`${baseUrl(node)}/api/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: 'dr.mueller', password: 'correct horse battery' }),
    });
    expect(login.status).to.equal(200);
    radiologist = apiClient(node, ((await login.json()) as { access_token: string }).access_token);

    const sent = await storescu(
      node.dicomPort,
      corpusDir('ct-series-chest-99').map((e) => e.absPath),
    );
    expect(sent.code, sent.stderr).to.equal(0);
    studyUid = ((await node.db('studies').first('study_instance_uid')) as { study_instance_uid: string }).study_instance_uid;
    await waitFor('engine', async () => node.engine.status.state !== 'starting');
    expect(node.engine.status.state, node.engine.status.error).to.equal('ready');
    const a = await radiologist.post<{ id: number }>('/api/analysis', { study_id: studyUid, clinical_indication: 'cough' });
    expect(a.status).to.equal(202);
    analysisId = a.body.id;
    const done = await waitFor('analysis', async () => {
      const r = await radiologist.get<{ status: string; error: string | null }>(`/api/analysis/${analysisId}`);
      return ['succeeded', 'failed', 'cancelled'].includes(r.body.status) ? r.body : undefined;
    });
    expect(done.status, done.error ?? '').to.equal('succeeded');
  });

  after(async () => {
    await scp?.stop();
    await node?.cleanup();
    for (const d of [modelDir, scp?.dir, ...work]) if (d) await fsp.rm(d, { recursive: true, force: true });
  });

  const retrieve = async (series: string, sop: string): Promise<Buffer> => {
    const res = await fetch(`${baseUrl(node)}/dicom-web/studies/${studyUid}/series/${series}/instances/${sop}`, {
      headers: { ...bearer(await tokenFor(node, 'viewer')), Accept: 'multipart/related; type="application/dicom"' },
    });
    expect(res.status).to.equal(200);
    const body = Buffer.from(await res.arrayBuffer());
    const boundary = /boundary="?([^";]+)"?/.exec(res.headers.get('content-type') ?? '')![1]!;
    const start = body.indexOf('\r\n\r\n') + 4;
    const end = body.indexOf(Buffer.from(`\r\n--${boundary}`), start);
    return body.subarray(start, end);
  };

  const validate = async (bytes: Buffer, name: string): Promise<{ dsrdump: string; dciodvfy: string }> => {
    const dir = await tempDir('reports-check');
    work.push(dir);
    const file = path.join(dir, name);
    await fsp.writeFile(file, bytes);
    const dump = await runTool('dsrdump', [file]);
    const vfy = await runTool('dciodvfy', [file]);
    return { dsrdump: dump.stdout + dump.stderr, dciodvfy: vfy.stdout + vfy.stderr };
  };

  it('a technician cannot create or sign; a radiologist creates the draft: SR + PDF in the study', async function () {
    // The random model's words are meaningless and its boxes random: give the first finding a
    // known box (on the 41st image sent, in its 896² pixels) to check the mapping onto the slice.
    if (!(await node.db('findings').where({ analysis_id: analysisId }).first())) {
      await node.db('findings').insert({
        analysis_id: analysisId,
        idx: 0,
        description: 'Opacity',
        confidence: 0.6,
        image_indices: '[40]',
        laterality: 'right',
        category: 'abnormal',
        severity: 'mild',
      });
    }
    await node
      .db('findings')
      .where({ analysis_id: analysisId, idx: 0 })
      .update({ anatomical_location: 'right lower lobe', region: JSON.stringify({ imageIndex: 40, box: [300, 300, 500, 500] }) });
    // A second model finding, which the radiologist will reject.
    await node.db('findings').where({ analysis_id: analysisId, idx: 1 }).delete();
    await node.db('findings').insert({
      analysis_id: analysisId,
      idx: 1,
      description: 'Spurious rib lesion',
      confidence: 0.3,
      image_indices: '[10]',
      category: 'abnormal',
    });
    const tech = apiClient(node, await tokenFor(node, 'technician'));
    expect((await tech.post('/api/reports', { study_id: studyUid, analysis_id: analysisId })).status).to.equal(403);
    expect((await radiologist.post('/api/reports', { study_id: studyUid, analysis_id: 999999 })).status).to.equal(404);
    const r = await radiologist.post<ReportView>('/api/reports', {
      study_id: studyUid,
      analysis_id: analysisId,
      include_ai_disclaimer: true,
    });
    expect(r.status, JSON.stringify(r.body)).to.equal(201);
    report = r.body;
    expect(report).to.include({ state: 'draft', version: 1, ai_draft: true });
    draftSr = report.dicom.sr!.sop_instance_uid;
    draftPdf = report.dicom.pdf!.sop_instance_uid;

    // QIDO-RS shows the two new series; WADO-RS returns them.
    const series = (await (
      await fetch(`${baseUrl(node)}/dicom-web/studies/${studyUid}/series`, { headers: bearer(await tokenFor(node, 'viewer')) })
    ).json()) as Array<Record<string, { Value?: unknown[] }>>;
    const modalities = series.map((s) => s['00080060']?.Value?.[0]);
    expect(modalities).to.include.members(['CT', 'SR', 'DOC']);
    const sr = await retrieve(report.dicom.sr!.series_instance_uid, draftSr);
    const ds = naturalize(sr);
    expect(ds).to.include({
      SOPClassUID: '1.2.840.10008.5.1.4.1.1.88.34',
      StudyInstanceUID: studyUid,
      VerificationFlag: 'UNVERIFIED',
      CompletionFlag: 'PARTIAL',
    });
    // Issue 16: the draft says so in the series list, per report and version; the algorithm is its observer.
    expect(ds.SeriesDescription).to.match(new RegExp(`^AI DRAFT - not reviewed - R${report.id} v1 \\d{4}-\\d{2}-\\d{2}$`));
    expect(ds.SeriesNumber).to.equal(100_000 + report.id * 100 + 1);
    const checked = await validate(sr, 'draft-sr.dcm');
    expect(checked.dsrdump, checked.dsrdump).to.match(/Imaging Measurement Report/);
    expect(checked.dsrdump).to.match(/Observer Type"\)=\(121007,DCM,"Device"\)/);
    expect(checked.dsrdump).not.to.match(/Observer Type"\)=\(121006,DCM,"Person"\)/);
    // The procedure from the study's modality and body part (CT, CHEST), not a generic code.
    expect(checked.dsrdump).to.match(/Procedure reported"\)=\(24627-2,LN,"CT Chest"\)/);
    // 512² slice shown at 896²: the box's corners × 512/896, on the slice the model saw as image 41.
    expect(checked.dsrdump).to.match(/SCOORD:\(,,"Image Region"\)=\(POLYLINE,171\.39\d*\/171\.39\d*,/);
    const analysis = (await radiologist.get<{ images: Array<{ sop_instance_uid: string }> }>(`/api/analysis/${analysisId}`)).body;
    const withUids = (await runTool('dsrdump', ['+Pu', path.join(work.at(-1)!, 'draft-sr.dcm')])).stdout;
    const lines = withUids.split('\n');
    const at = lines.findIndex((l) => l.includes('SCOORD:'));
    expect(lines[at + 1], withUids)
      .to.include('selected from IMAGE')
      .and.include(analysis.images[40]!.sop_instance_uid);
    expect(checked.dciodvfy, checked.dciodvfy).not.to.match(/^Error/m);

    const pdfObj = await retrieve(report.dicom.pdf!.series_instance_uid, draftPdf);
    expect(naturalize(pdfObj).SOPClassUID).to.equal('1.2.840.10008.5.1.4.1.1.104.1');
    const pdfCheck = await validate(pdfObj, 'draft-pdf.dcm');
    expect(pdfCheck.dciodvfy, pdfCheck.dciodvfy).not.to.match(/^Error/m);
  });

  it('exports: PDF, JSON (documented schema) and the Part 10 SR, with their media types', async function () {
    const token = await tokenFor(node, 'viewer');
    const pdf = await fetch(`${baseUrl(node)}/api/export/report/${report.id}/pdf`, { headers: bearer(token) });
    expect(pdf.status).to.equal(200);
    expect(pdf.headers.get('content-type')).to.equal('application/pdf');
    const pdfBytes = Buffer.from(await pdf.arrayBuffer());
    expect(pdfBytes.subarray(0, 5).toString('latin1')).to.equal('%PDF-');
    const dir = await tempDir('reports-pdf');
    work.push(dir);
    await fsp.writeFile(path.join(dir, 'r.pdf'), pdfBytes);
    expect((await runTool('pdftoppm', ['-png', '-r', '40', path.join(dir, 'r.pdf'), path.join(dir, 'page')])).code).to.equal(0);
    expect(listFiles(dir).filter((f) => f.endsWith('.png')).length).to.be.greaterThan(0);
    const text = (await runTool('pdftotext', [path.join(dir, 'r.pdf'), '-'])).stdout;
    expect(text).to.match(/AI DRAFT/);
    expect(text).to.include(report.impression.trim().slice(0, 10));

    const json = await fetch(`${baseUrl(node)}/api/export/report/${report.id}/json`, { headers: bearer(token) });
    expect(json.status).to.equal(200);
    expect(json.headers.get('content-type')).to.match(/^application\/json/);
    const j = (await json.json()) as {
      schema: string;
      report: ReportView;
      content: { findings: unknown[]; algorithm: { sha256: string } };
    };
    expect(j.schema).to.match(/report\/v1$/);
    expect(j.report.id).to.equal(report.id);
    expect(j.content.findings).to.have.length(report.findings.length);
    expect(j.content.algorithm.sha256).to.match(/^[0-9a-f]{64}$/);

    const sr = await fetch(`${baseUrl(node)}/api/export/report/${report.id}/dicom-sr`, { headers: bearer(token) });
    expect(sr.status).to.equal(200);
    expect(sr.headers.get('content-type')).to.equal('application/dicom');
    const srBytes = Buffer.from(await sr.arrayBuffer());
    expect(srBytes.subarray(128, 132).toString('latin1')).to.equal('DICM');
    expect(naturalize(srBytes).SOPInstanceUID).to.equal(draftSr);
  });

  it('a radiologist edits (preliminary, versioned), an admin cannot sign, the radiologist signs: verified SR, final PDF, draft kept as predecessor', async function () {
    const edit = await radiologist.patch<ReportView>(`/api/reports/${report.id}`, {
      impression: 'Findings suggestive of a small right lower lobe opacity; clinical correlation advised.',
      findings: [
        ...report.findings.map((f) => ({
          number: f.number,
          description: f.number === 1 ? 'Small right lower lobe opacity' : f.description,
          ...(f.description === 'Spurious rib lesion' ? { decision: 'rejected' as const, decision_reason: 'rib artefact' } : {}),
        })),
        { description: 'No pleural effusion', category: 'normal', laterality: 'bilateral' },
        // Issue 16: a radiologist's finding with an image, a region (source pixels) and a confidence.
        {
          description: 'Subsegmental atelectasis',
          anatomical_location: 'left lower lobe',
          image_indices: [40],
          region: { image_index: 40, box: [60, 300, 120, 340] },
          confidence: 0.9,
        },
      ],
    });
    expect(edit.status, JSON.stringify(edit.body)).to.equal(200);
    expect(edit.body).to.include({ state: 'preliminary', version: 2 });
    expect(edit.body.findings.at(-2)).to.include({ description: 'No pleural effusion', author: 'radiologist', confidence: null });
    expect(edit.body.findings.at(-1)).to.include({ author: 'radiologist', confidence: 0.9 });
    expect(edit.body.findings.find((f) => f.description === 'Spurious rib lesion')).to.include({ decision: 'rejected' });
    // A rejection must say why; an image index the analysis does not have is refused.
    const noReason = await radiologist.patch(`/api/reports/${report.id}`, {
      findings: edit.body.findings.map((f) => ({ number: f.number, description: f.description, decision: 'rejected' })),
    });
    expect(noReason.status).to.equal(422);
    const badImage = await radiologist.patch(`/api/reports/${report.id}`, {
      findings: [{ description: 'x', image_indices: [100_000] }],
    });
    expect(badImage.status).to.equal(422);
    if (report.findings.length) {
      expect(edit.body.findings[0]!.tracking_uid).to.equal(report.findings[0]!.tracking_uid);
      expect(edit.body.findings[0]!.author).to.equal('radiologist');
    }
    const admin = apiClient(node, await tokenFor(node, 'admin'));
    expect((await admin.post(`/api/reports/${report.id}/sign`, {})).status).to.equal(403);
    expect((await apiClient(node, await tokenFor(node, 'technician')).post(`/api/reports/${report.id}/sign`, {})).status).to.equal(403);
    expect((await radiologist.post(`/api/reports/${report.id}/sign?version=1`, { password: 'correct horse battery' })).status).to.equal(
      409,
    );

    const signed = await radiologist.post<ReportView>(`/api/reports/${report.id}/sign`, { password: 'correct horse battery' });
    expect(signed.status, JSON.stringify(signed.body)).to.equal(200);
    expect(signed.body).to.include({ state: 'final', version: 3, signed_by: 'dr.mueller', ai_draft: false });
    const finalSr = signed.body.dicom.sr!.sop_instance_uid;
    expect(finalSr).to.not.equal(draftSr);
    const ds = naturalize(await retrieve(signed.body.dicom.sr!.series_instance_uid, finalSr));
    expect(ds).to.include({ VerificationFlag: 'VERIFIED', CompletionFlag: 'COMPLETE' });
    expect(ds.VerifyingObserverSequence).to.have.length(1);
    expect((ds.VerifyingObserverSequence![0] as { VerifyingOrganization?: string }).VerifyingOrganization).to.equal(
      'Riverside General Hospital',
    );
    const preds = (ds.PredecessorDocumentsSequence ?? []).flatMap((s) =>
      (s.ReferencedSeriesSequence ?? []).flatMap((x) => (x.ReferencedSOPSequence ?? []).map((y) => y.ReferencedSOPInstanceUID)),
    );
    expect(preds).to.include(draftSr);
    const checked = await validate(await retrieve(signed.body.dicom.sr!.series_instance_uid, finalSr), 'final-sr.dcm');
    expect(checked.dsrdump).to.match(/VERIFIED/);
    // dcmjs reads text in sequences as Latin-1; DCMTK honours ISO_IR 192.
    expect(checked.dsrdump).to.include('Müller');
    // Issue 16: the radiologist (with credentials) is the document's observer; the rejected finding is gone;
    // the radiologist's own findings do not name the algorithm; the series says signed.
    expect(ds.SeriesDescription).to.match(new RegExp(`^Signed report - R${report.id} v3 `));
    expect(checked.dsrdump).to.match(/Person Observer Name"\)="Müller\^Zoë\^\^\^MD"/);
    expect(checked.dsrdump).not.to.include('Spurious rib lesion');
    expect(checked.dsrdump).to.include('Subsegmental atelectasis');
    const srDump = checked.dsrdump;
    const group = (words: string) => {
      const start = srDump.indexOf(words);
      const before = srDump.lastIndexOf('Measurement Group', start);
      const next = srDump.indexOf('Measurement Group', start);
      return srDump.slice(before, next < 0 ? undefined : next);
    };
    expect(group('Subsegmental atelectasis')).not.to.include('Algorithm Name');
    expect(group('Subsegmental atelectasis')).not.to.include('Device Observer');
    expect(group('Subsegmental atelectasis')).to.match(/SCOORD:\(,,"Image Region"\)=\(POLYLINE,60\/300,/);
    expect(checked.dciodvfy, checked.dciodvfy).not.to.match(/^Error/m);
    // The draft objects are still in the study.
    expect(await node.db('instances').where({ sop_instance_uid: draftSr }).first()).to.not.equal(undefined);
    expect(await node.db('instances').where({ sop_instance_uid: draftPdf }).first()).to.not.equal(undefined);

    const pdf = await fetch(`${baseUrl(node)}/api/export/report/${report.id}/pdf`, { headers: bearer(await tokenFor(node, 'viewer')) });
    const dir = await tempDir('reports-final');
    work.push(dir);
    await fsp.writeFile(path.join(dir, 'f.pdf'), Buffer.from(await pdf.arrayBuffer()));
    const text = (await runTool('pdftotext', [path.join(dir, 'f.pdf'), '-'])).stdout;
    expect(text).to.match(/FINAL/);
    expect(text).to.include('Müller');
    expect(text).not.to.match(/AI DRAFT/);
    expect(text).to.include('No pleural effusion');
    // Issue 16: who signed, with credentials; worded as signed; the rejected finding is not in it.
    expect(text).to.include('Zoë Müller, MD');
    expect(text).not.to.include('must be reviewed');
    expect(text).not.to.include('Spurious rib lesion');
    // Key images captioned with the viewer's 1-based slice number.
    expect(text).to.match(/Finding [\d, ]+· slice \d+ of 99/);

    const full = await radiologist.get<ReportView>(`/api/reports/${report.id}`);
    expect(full.body.versions!.map((v) => `${v.version}:${v.action}:${v.state}`)).to.deep.equal([
      '1:create:draft',
      '2:edit:preliminary',
      '3:sign:final',
    ]);
    expect(full.body.versions![1]!.changed_by).to.equal('dr.mueller');
    expect(full.body.versions![1]!.changes.map((c) => c.field)).to.include('impression');
    for (const action of ['report.created', 'report.edited', 'report.signed'])
      expect(
        (await auditRows(node, action)).filter((r) => r.outcome === 'success'),
        action,
      ).to.have.length(1);
    // The rejection is in the audit, with its reason.
    const signedAudit = (await auditRows(node, 'report.signed'))[0]!;
    expect(JSON.stringify(signedAudit.details)).to.include('Spurious rib lesion').and.include('rib artefact');
    expect((await radiologist.patch(`/api/reports/${report.id}`, { impression: 'x' })).status).to.equal(409);
  });

  it('amend: a signed report is amended with a reason, published again with the final one as predecessor', async function () {
    const before = (await radiologist.get<ReportView>(`/api/reports/${report.id}`)).body;
    expect((await radiologist.post(`/api/reports/${report.id}/amend`, {})).status).to.equal(400);
    const r = await radiologist.post<ReportView>(`/api/reports/${report.id}/amend`, {
      reason: 'Laterality corrected',
      changes: { impression: 'Findings suggestive of a small left lower lobe opacity.' },
    });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    expect(r.body).to.include({ state: 'amended', version: 4 });
    const ds = naturalize(await retrieve(r.body.dicom.sr!.series_instance_uid, r.body.dicom.sr!.sop_instance_uid));
    const preds = (ds.PredecessorDocumentsSequence ?? []).flatMap((s) =>
      (s.ReferencedSeriesSequence ?? []).flatMap((x) => (x.ReferencedSOPSequence ?? []).map((y) => y.ReferencedSOPInstanceUID)),
    );
    expect(preds).to.include(before.dicom.sr!.sop_instance_uid);
    expect(ds.VerificationFlag).to.equal('VERIFIED');
  });

  it('OHIF in Chromium shows the SR (its box on the slice, in the SR viewport) and the PDF', async function () {
    const base = baseUrl(node);
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      // OHIF's first-run tour would cover the page: mark it as seen, as a returning user has.
      await page.addInitScript("localStorage.setItem('shownTours', JSON.stringify(['basicViewerTour']))");
      const responses: Array<{ url: string; status: number; type: string | null }> = [];
      page.on('response', (r) => {
        responses.push({ url: r.url(), status: r.status(), type: r.headers()['content-type'] ?? null });
        if (r.status() >= 400) errors.push(`${r.status()} ${r.url()}`);
      });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      // A request that failed without an HTTP status (reset, empty answer) names itself here; one the
      // viewer cancelled itself (net::ERR_ABORTED) is not the node's failure.
      page.on('requestfailed', (r) => {
        const why = r.failure()?.errorText ?? '?';
        if (r.url().startsWith(base) && !why.includes('ERR_ABORTED')) errors.push(`request failed: ${why} ${r.url()}`);
      });
      // OHIF's error boundary reports through console.debug/error, not as page errors.
      page.on('console', (m) => {
        // OHIF's own bug when a viewport switch cancels loads in flight; the node's failures are caught above by their status.
        if (isOhifCancelBug(m.text())) return;
        if (/error/i.test(m.type()) || /Error Boundary|TypeError/.test(m.text())) errors.push(m.text().slice(0, 500));
      });
      await page.goto(`${base}/viewer/viewer?StudyInstanceUIDs=${studyUid}&token=${await tokenFor(node, 'viewer')}`, {
        waitUntil: 'domcontentloaded',
      });
      // The amended version's TID 1500 SR (issue 16: each version with a box also has a "(text)" SR series).
      const sr = page.getByText(/^Amended report - R\d+ v4 [\d-]+$/).first();
      await sr.waitFor({ timeout: 60_000 });
      // Let the first viewport finish loading its images: switching viewports while they are still
      // in flight cancels them, and OHIF 3.13's cancel path itself throws ("handler is not a
      // function" in imageLoadFailedHandler), which is OHIF's bug, not an answer of the node.
      await page.waitForLoadState('networkidle', { timeout: 30_000 }).catch(() => undefined);
      await sr.dblclick();
      // The SR viewport: the finding's label next to its box on the referenced slice.
      // The Finding Site label by its meaning, not OHIF's bare SNOMED code (issue 16).
      const label = page.getByText(/Finding site: right lower lobe/).first();
      await label.waitFor({ timeout: 60_000 }).catch(async (err: unknown) => {
        await page.screenshot({ path: path.resolve('test-artifacts', 'viewer-sr-failed.png') });
        throw new Error(`the SR viewport showed no finding: ${String(err)}; ${errors.join('; ')}`);
      });
      await fsp.mkdir(path.resolve('test-artifacts'), { recursive: true });
      await page.screenshot({ path: path.resolve('test-artifacts', 'viewer-sr.png') });
      expect(errors).to.deep.equal([]);

      const doc = page.getByText('DOC', { exact: true }).first();
      await doc.dblclick();
      // The viewer fetches the document through the EncapsulatedDocument's BulkDataURI, then shows it from a blob.
      const bulk = await waitFor(
        'the PDF bulk data',
        async () =>
          responses.find((r) => r.status === 200 && r.url.includes(`/dicom-web/studies/${studyUid}/`) && r.url.includes('/bulkdata/')),
        60_000,
      );
      expect(bulk.type).to.match(/application\/pdf|multipart\/related/);
      await waitFor(
        'the PDF shown',
        async () => responses.find((r) => r.status === 200 && r.url.startsWith('blob:') && r.type?.startsWith('application/pdf')),
        60_000,
      );
      await page.waitForSelector('object[type="application/pdf"], embed[type="application/pdf"], iframe', { timeout: 30_000 });
      await page.screenshot({ path: path.resolve('test-artifacts', 'viewer-pdf.png') });
    } finally {
      await browser.close();
    }
  });

  it('forwards the report objects (and nothing else) to the PACS', async function () {
    const objects = await node.db('instances').where({ source: 'ai' }).select('sop_instance_uid');
    // Draft, final, amended: SR + PDF each; issue 16: each version whose SR has a box (final and
    // amended, the radiologist drew one; the draft when the tiny model gave a region) has its text rendition SR too.
    const texts = await node.db('series').where('series_description', 'like', '%(text)').pluck('series_description');
    expect(texts.filter((d: string) => /^(Signed|Amended) report - R\d+ v[34] /.test(d))).to.have.length(2);
    expect(objects.length).to.equal(6 + texts.length);
    await waitFor(
      'forwarded',
      async () => {
        const rows = await node.db('forward_items').where({ status: 'sent' });
        return rows.length === objects.length ? rows : undefined;
      },
      60_000,
    );
    const received = listFiles(scp.dir);
    expect(received.length).to.equal(objects.length);
    const uids = received.map((f) => naturalize(fs.readFileSync(path.join(scp.dir, f))).SOPInstanceUID);
    expect(uids.sort()).to.deep.equal(objects.map((o: { sop_instance_uid: string }) => o.sop_instance_uid).sort());
  });
});
