import { expect } from 'chai';
import sharp from 'sharp';
import { makeCtSeries } from '../fixtures/generate.js';
import { listInstances } from '../src/catalog/catalog.js';
import { apiClient, auditRows, ingestFiles, type ApiClient } from './helpers/api.js';
import { answeringEndpoint, noduleAndAtelectasisAnswer } from './helpers/ai-results.js';
import { loginFor, tokenFor } from './helpers/http.js';
import { startTestNode, type TestNode } from './helpers/node.js';
import { until } from './helpers/until.js';

/**
 * The study-review screen's API (issue 18, item 3), on a real node with a stand-in model endpoint
 * (two findings, one with a box): a study's reports (GET /api/reports), versions with content and
 * the diff between two, a finding's key image (PNG, greyscale with the box drawn) and its OHIF
 * coordinates, signing confirmed by the signer's password, and the decisions export (JSON, CSV).
 */

const ANSWER = noduleAndAtelectasisAnswer();

interface Summary {
  id: number;
  status: string;
  version: number;
  analysis_id: number;
  author: { username: string; display_name: string } | null;
  signer: { username: string; display_name: string; signed_at: string } | null;
  safety_flags: Array<{ rule: string; blocking: boolean }>;
  blocking: boolean;
}

interface VersionView {
  version: number;
  status: string;
  action: string;
  changed_by: string;
  content: {
    impression: string;
    findings: Array<{
      number: number;
      tracking_uid: string;
      description: string;
      confidence: number | null;
      anatomical_location: string | null;
      region: { image_index: number; box: number[] } | null;
      decision: string | null;
      decision_reason: string | null;
      flags: unknown[];
    }>;
  };
}

interface Decision {
  study_instance_uid: string;
  analysis_id: number;
  model_name: string | null;
  finding_index: number | null;
  model_text: string | null;
  report_text: string;
  confidence: number | null;
  decision: string;
  reason: string | null;
  decided_by: string | null;
  decided_at: string;
}

describe('Review API: reports of a study, versions and diff, key images, password-confirmed sign, decisions export', function () {
  this.timeout(300_000);
  let fake: Awaited<ReturnType<typeof answeringEndpoint>>;
  let node: TestNode;
  let rad: ApiClient;
  let login: { token: string; username: string; password: string };
  let studyUid = '';
  let studyPk = 0;
  let reportId = 0;
  let analysisId = 0;

  before(async () => {
    fake = await answeringEndpoint(ANSWER);
    node = await startTestNode({
      MEDGEMMA_BACKEND: 'remote',
      MEDGEMMA_API_ENDPOINT: fake.url,
      MEDGEMMA_ALLOW_UNVALIDATED_MODEL: 'true',
      MEDGEMMA_MAX_SLICES: '4',
      ANALYSIS_IMAGE_SIZE: '128',
      JOB_POLL_MS: '100',
    });
    const files = makeCtSeries({ seed: 'api-review', slices: 8, size: 96 });
    const [first] = await ingestFiles(node, files);
    studyUid = first!.studyInstanceUid;
    login = await loginFor(node, 'radiologist');
    rad = apiClient(node, login.token);
    const studies = await rad.get<{ items: Array<{ id: number; study_instance_uid: string }> }>('/api/studies');
    studyPk = studies.body.items.find((s) => s.study_instance_uid === studyUid)!.id;
  });

  after(async () => {
    await node?.cleanup();
    await fake?.close();
  });

  it('a study with no report lists none; the list answers 400 without a study and 404 for an unknown one', async () => {
    const none = await rad.get<{ items: unknown[] }>(`/api/reports?study_uid=${studyUid}`);
    expect(none.status, JSON.stringify(none.body)).to.equal(200);
    expect(none.body.items).to.deep.equal([]);
    expect((await rad.get('/api/reports')).status).to.equal(400);
    expect((await rad.get('/api/reports?study_uid=1.2.3.999')).status).to.equal(404);
  });

  it('the analysis is drafted; GET /api/reports?study_id= lists it with status, version, author, flags, analysis id', async () => {
    const started = await rad.post<{ id: number }>('/api/analysis', { study_id: studyUid });
    expect(started.status, JSON.stringify(started.body)).to.be.oneOf([201, 202]);
    analysisId = started.body.id;
    await until(
      'analysis done',
      async () => {
        const a = await rad.get<{ status: string }>(`/api/analysis/${analysisId}`);
        if (a.body.status === 'failed') throw new Error(JSON.stringify(a.body));
        return a.body.status === 'succeeded';
      },
      120_000,
      200,
    );
    const made = await rad.post<{ id: number }>('/api/reports', { study_id: studyUid, analysis_id: analysisId });
    expect(made.status, JSON.stringify(made.body)).to.be.oneOf([201, 202]);
    reportId = made.body.id;
    for (const q of [`study_id=${studyPk}`, `study_id=${studyUid}`, `study_uid=${studyUid}`]) {
      const list = await rad.get<{ study_instance_uid: string; items: Summary[] }>(`/api/reports?${q}`);
      expect(list.status, q).to.equal(200);
      expect(list.body.study_instance_uid).to.equal(studyUid);
      expect(list.body.items).to.have.length(1);
      const s = list.body.items[0]!;
      expect(s).to.include({ id: reportId, status: 'draft', version: 1, analysis_id: analysisId, signer: null });
      expect(s.author).to.deep.include({ username: login.username });
      expect(s.safety_flags).to.be.an('array');
      expect(s.blocking).to.equal(s.safety_flags.some((f) => f.blocking));
    }
    const audited = await auditRows(node, 'report.list');
    expect(audited.at(-1)).to.include({ study_instance_uid: studyUid, outcome: 'success', actor: login.username });
    // A viewer may read the list; nobody unauthenticated.
    expect((await apiClient(node, await tokenFor(node, 'viewer')).get(`/api/reports?study_uid=${studyUid}`)).status).to.equal(200);
    expect((await apiClient(node).get(`/api/reports?study_uid=${studyUid}`)).status).to.equal(401);
  });

  it('a rejection (with its reason) and an impression edit make version 2; versions and the diff show both', async () => {
    const v1 = await rad.get<VersionView>(`/api/reports/${reportId}/versions/1`);
    expect(v1.status).to.equal(200);
    const [nodule, atelectasis] = v1.body.content.findings;
    expect(nodule).to.deep.include({ anatomical_location: 'right upper lobe', confidence: 0.6, decision: null });
    expect(nodule!.region).to.not.equal(null);
    expect(atelectasis!.description).to.equal(ANSWER.findings[1]!.description);
    const findings = v1.body.content.findings.map((f) => ({ number: f.number, description: f.description }));
    const noReason = await rad.patch(`/api/reports/${reportId}`, {
      findings: [findings[0], { ...findings[1], decision: 'rejected' }],
    });
    expect(noReason.status).to.equal(422);
    const edit = await rad.patch(`/api/reports/${reportId}`, {
      impression: 'Small nodule in the right upper lobe; follow-up CT in 6 months.',
      findings: [findings[0], { ...findings[1], decision: 'rejected', decision_reason: 'motion artefact, not atelectasis' }],
    });
    expect(edit.status, JSON.stringify(edit.body)).to.equal(200);

    const versions = await rad.get<{ current: number; items: VersionView[] }>(`/api/reports/${reportId}/versions`);
    expect(versions.body.current).to.equal(2);
    expect(versions.body.items.map((v) => [v.version, v.action, v.status])).to.deep.equal([
      [1, 'create', 'draft'],
      [2, 'edit', 'draft'],
    ]);
    expect(versions.body.items[1]!.changed_by).to.equal(login.username);
    const rejected = versions.body.items[1]!.content.findings[1]!;
    expect(rejected).to.include({ decision: 'rejected', decision_reason: 'motion artefact, not atelectasis' });

    const diff = await rad.get<{
      from: number;
      to: number;
      added: unknown[];
      removed: unknown[];
      changed: Array<{ tracking_uid: string; fields: Record<string, { from: unknown; to: unknown }> }>;
      impression: { from: string; to: string } | null;
    }>(`/api/reports/${reportId}/diff?from=1&to=2`);
    expect(diff.status).to.equal(200);
    expect(diff.body).to.include({ from: 1, to: 2 });
    expect(diff.body.added).to.deep.equal([]);
    expect(diff.body.removed).to.deep.equal([]);
    expect(diff.body.changed).to.have.length(1);
    expect(diff.body.changed[0]!.tracking_uid).to.equal(atelectasis!.tracking_uid);
    expect(diff.body.changed[0]!.fields.decision).to.deep.equal({ from: null, to: 'rejected' });
    expect(diff.body.impression).to.deep.equal({
      from: ANSWER.impression,
      to: 'Small nodule in the right upper lobe; follow-up CT in 6 months.',
    });
    // The current version by default; a version that does not exist is 404.
    expect((await rad.get(`/api/reports/${reportId}/diff?from=1`)).body.to).to.equal(2);
    expect((await rad.get(`/api/reports/${reportId}/diff?from=1&to=9`)).status).to.equal(404);
    expect((await rad.get(`/api/reports/${reportId}/versions/9`)).status).to.equal(404);
  });

  it("a finding's key image is a greyscale PNG with its box drawn; the viewer link names its slice", async () => {
    const res = await rad.raw(`/api/reports/${reportId}/findings/1/key-image`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.equal('image/png');
    const png = Buffer.from(await res.arrayBuffer());
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    let grey = 0;
    let box = 0;
    for (let i = 0; i < data.length; i += info.channels) {
      const [r, g, b] = [data[i]!, data[i + 1] ?? data[i]!, data[i + 2] ?? data[i]!];
      if (r === g && g === b) grey++;
      else if (r > 200 && g > 170 && b < 80) box++;
    }
    const pixels = data.length / info.channels;
    expect(box, 'box pixels').to.be.greaterThan(20);
    expect(grey + box, 'every pixel grey or box').to.be.greaterThan(pixels * 0.97);

    const link = await rad.get<{
      StudyInstanceUID: string;
      SeriesInstanceUID: string;
      SOPInstanceUID: string;
      frame: number;
      slice_number: number;
      slice_count: number;
      viewer_path: string;
    }>(`/api/reports/${reportId}/findings/1/viewer-link`);
    expect(link.status).to.equal(200);
    // The slice number is the viewer's (OHIF orders an axial stack by Image Position z, highest first), not the
    // InstanceNumber rank: the generated CT is numbered from the feet, so the two never agree here.
    const meta = await rad.get<Array<Record<string, { Value?: unknown[] }>>>(
      `/dicom-web/studies/${studyUid}/series/${link.body.SeriesInstanceUID}/metadata`,
    );
    const uid = (d: Record<string, { Value?: unknown[] }>) => String(d['00080018']!.Value![0]);
    const z = (d: Record<string, { Value?: unknown[] }>) => Number(d['00200032']!.Value![2]);
    const byPosition = [...meta.body].sort((a, b) => z(b) - z(a)).map(uid);
    const byNumber = (await listInstances(node.db, { study: studyUid, series: link.body.SeriesInstanceUID })).map(
      (r) => r.sop_instance_uid,
    );
    expect(link.body).to.include({ StudyInstanceUID: studyUid, frame: 1, slice_count: 8 });
    expect(link.body.slice_number).to.equal(byPosition.indexOf(link.body.SOPInstanceUID) + 1);
    expect(link.body.slice_number).to.not.equal(byNumber.indexOf(link.body.SOPInstanceUID) + 1);
    expect(Number(res.headers.get('x-slice-number'))).to.equal(link.body.slice_number);
    expect(link.body.viewer_path).to.include(`StudyInstanceUIDs=${studyUid}`);
    // The second finding points at its own slice (no box); a finding that does not exist is 404.
    const second = await rad.raw(`/api/reports/${reportId}/findings/2/key-image`);
    expect(second.status, await second.clone().text()).to.equal(200);
    expect((await rad.get(`/api/reports/${reportId}/findings/7/viewer-link`)).status).to.equal(404);
  });

  it("signing needs the signer's password: none or a wrong one is 403 (audited, not signed); the right one signs", async () => {
    const none = await rad.post<{ code: string }>(`/api/reports/${reportId}/sign`, {});
    expect(none.status).to.equal(403);
    expect(JSON.stringify(none.body)).to.include('reauthentication_failed');
    const wrong = await rad.post(`/api/reports/${reportId}/sign`, { password: 'not-my-password' });
    expect(wrong.status).to.equal(403);
    expect((await rad.get<{ state: string }>(`/api/reports/${reportId}`)).body.state).to.equal('preliminary');
    const failures = (await auditRows(node, 'report.sign')).filter((r) => r.outcome === 'failure');
    expect(failures).to.have.length(2);
    expect(failures.map((f) => JSON.parse(f.details!).reason)).to.deep.equal(['password_required', 'wrong_password']);
    expect(
      failures.every((f) => !f.details!.includes('not-my-password')),
      'the password is never audited',
    ).to.equal(true);

    const signed = await rad.post<{ state: string }>(`/api/reports/${reportId}/sign`, { password: login.password });
    expect(signed.status, JSON.stringify(signed.body)).to.be.oneOf([200, 202]);
    expect(signed.body.state).to.equal('final');
    const list = await rad.get<{ items: Summary[] }>(`/api/reports?study_uid=${studyUid}`);
    expect(list.body.items[0]).to.include({ status: 'signed', version: 3 });
    expect(list.body.items[0]!.signer).to.include({ username: login.username });
  });

  it('decisions export as JSON and CSV: the rejection with its reason, the acceptance by signing, who and when', async () => {
    const res = await rad.get<{ items: Decision[] }>('/api/reports/decisions');
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    const mine = res.body.items.filter((d) => d.study_instance_uid === studyUid);
    expect(mine).to.have.length(2);
    const [accepted, rejected] = mine;
    expect(rejected).to.include({
      analysis_id: analysisId,
      finding_index: 1,
      model_text: ANSWER.findings[1]!.description,
      decision: 'rejected',
      reason: 'motion artefact, not atelectasis',
      decided_by: login.username,
      confidence: 0.4,
    });
    expect(accepted).to.include({ decision: 'accepted', decided_by: login.username, model_text: ANSWER.findings[0]!.description });
    expect(accepted!.model_name).to.be.a('string');
    // A window before the decisions holds none of them.
    const before = await rad.get<{ items: Decision[] }>('/api/reports/decisions?to=2000-01-01T00:00:00Z');
    expect(before.body.items).to.deep.equal([]);

    const csv = await rad.raw('/api/reports/decisions?format=csv');
    expect(csv.headers.get('content-type')).to.match(/^text\/csv/);
    const lines = (await csv.text()).trim().split('\r\n');
    expect(lines[0]).to.match(/^study_instance_uid,analysis_id,model_name,model_sha256,/);
    expect(lines.slice(1).filter((l) => l.startsWith(studyUid))).to.have.length(2);
    expect(lines.some((l) => l.includes('motion artefact, not atelectasis') && l.includes(',rejected,'))).to.equal(true);
    // Ground truth is for reviewers: a viewer may not export it.
    expect((await apiClient(node, await tokenFor(node, 'viewer')).get('/api/reports/decisions')).status).to.equal(403);
    expect((await rad.get('/api/reports/decisions?format=xml')).status).to.equal(400);
  });
});
