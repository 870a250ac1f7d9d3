import { expect } from 'chai';
import fsp from 'node:fs/promises';
import WebSocket from 'ws';
import { makeCtSeries, writeSeries } from '../fixtures/generate.js';
import { findInstance } from '../src/catalog/catalog.js';
import { newUid } from '../src/dicom/new-uid.js';
import { apiClient, auditRows } from './helpers/api.js';
import { answeringEndpoint, noduleAnswer, autoAnalysisEnv } from './helpers/ai-results.js';
import { storescu } from './helpers/dcmtk.js';
import { baseUrl, bearer, tokenFor } from './helpers/http.js';
import { startTestNode, tempDir, type TestNode } from './helpers/node.js';
import { until } from './helpers/until.js';

/**
 * UPS-RS (issue 19, item 3): a RIS creates an AI workitem for a study pushed with storescu, over
 * plain HTTP (fetch); the node claims it, runs the analysis (a stand-in OpenAI-compatible
 * endpoint), auto-publishes the draft and completes the workitem with the SR and PDF in the
 * Output Information Sequence; the RIS follows it over the WebSocket event channel
 * (SCHEDULED → IN PROGRESS → COMPLETED). The node's automatic analysis of the same study is a
 * workitem too. Search by state, patient and date; the state machine's refusals answer PS3.18's
 * statuses with their Warning headers.
 */

const SR_CLASS = '1.2.840.10008.5.1.4.1.1.88.34';
const GLOBAL = '1.2.840.10008.5.1.4.34.5';
const NODE_CODE = { value: 'RADIANT-AI', scheme: '99RADIANT' };
const T = {
  state: '00741000',
  tx: '00081195',
  start: '00404005',
  performed: '00741216',
  output: '00404033',
  refSop: '00081199',
  refSopUid: '00081155',
  refSopClass: '00081150',
  eventType: '00001002',
  affected: '00001000',
  label: '00741204',
  progress: '00741002',
  patientId: '00100020',
};

type Ds = Record<string, { vr: string; Value?: any[] }>;

const v = (vr: string, ...values: unknown[]) => ({ vr, Value: values });

function workitem(
  study: string,
  opts: { code?: { value: string; scheme: string }; start?: string; patientId?: string; name?: string } = {},
): Ds {
  const code = opts.code ?? NODE_CODE;
  return {
    '00741000': v('CS', 'SCHEDULED'),
    '00741200': v('CS', 'HIGH'),
    '00741204': v('LO', 'AI chest CT read'),
    '00741202': v('LO', 'RIS AI worklist'),
    '00404005': v('DT', opts.start ?? '20250301101500'),
    '00404041': v('CS', 'READY'),
    '00100020': v('LO', opts.patientId ?? 'UPS-PAT-1'),
    '00100010': v('PN', { Alphabetic: opts.name ?? 'Worklist^Wendy' }),
    '00404018': v('SQ', { '00080100': v('SH', code.value), '00080102': v('SH', code.scheme), '00080104': v('LO', 'AI analysis') }),
    '00404021': v('SQ', { '0040E020': v('CS', 'DICOM'), '0020000D': v('UI', study), '00081199': { vr: 'SQ' } }),
  };
}

function dicomJson(token: string): Record<string, string> {
  return { ...bearer(token), 'content-type': 'application/dicom+json', accept: 'application/dicom+json' };
}

describe('UPS-RS: a RIS workitem for a pushed study, performed by the node and followed over WebSocket', function () {
  this.timeout(300_000);
  let node: TestNode;
  let fake: Awaited<ReturnType<typeof answeringEndpoint>>;
  let ris: string;
  let viewer: string;
  let url: string;
  const work: string[] = [];

  const call = (method: string, path: string, body?: unknown, token = ris) =>
    fetch(`${url}${path}`, { method, headers: dicomJson(token), body: body === undefined ? undefined : JSON.stringify(body) });

  before(async () => {
    fake = await answeringEndpoint(noduleAnswer([80, 80, 180, 180]));
    node = await startTestNode({
      ...autoAnalysisEnv(fake.url),
      AUTO_PUBLISH: 'true',
      FORWARD_POLL_MS: '100',
    });
    url = baseUrl(node);
    ris = await tokenFor(node, 'service');
    viewer = await tokenFor(node, 'viewer');
  });

  after(async () => {
    await node?.cleanup();
    await fake?.close();
    for (const d of work) await fsp.rm(d, { recursive: true, force: true });
  });

  it('creates, claims, analyses, publishes and completes with the SR reference; the events arrive in order', async () => {
    const files = makeCtSeries({ seed: 'ups-rs-main', slices: 8, size: 96, patient: { id: 'UPS-PAT-1', name: 'Worklist^Wendy' } });
    const study = files[0]!.studyInstanceUid;
    const dir = await tempDir('ups-push');
    work.push(dir);
    const sent = await storescu(node.dicomPort, await writeSeries(dir, files));
    expect(sent.code, sent.stderr).to.equal(0);

    // The RIS opens its event channel and subscribes to the worklist before creating the task.
    const events: Ds[] = [];
    const ws = new WebSocket(`ws://127.0.0.1:${node.httpPort}/dicom-web/subscribers/RIS_AE`, { headers: bearer(ris) });
    ws.on('message', (data) => events.push(JSON.parse(String(data)) as Ds));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    try {
      expect((await call('POST', `/dicom-web/workitems/${GLOBAL}/subscribers/RIS_AE`)).status).to.equal(201);

      const uid = newUid();
      const created = await call('POST', `/dicom-web/workitems?${uid}`, workitem(study));
      expect(created.status, await created.text()).to.equal(201);
      expect(created.headers.get('location')).to.equal(`${url}/dicom-web/workitems/${uid}`);

      const states = () =>
        events
          .filter((e) => e[T.affected]?.Value?.[0] === uid && e[T.eventType]?.Value?.[0] === 1)
          .map((e) => e[T.state]!.Value![0] as string);
      await until('COMPLETED state report', async () => (states().includes('COMPLETED') ? true : undefined), 240_000);
      expect(states()).to.deep.equal(['SCHEDULED', 'IN PROGRESS', 'COMPLETED']);
      const progress = events.filter((e) => e[T.affected]?.Value?.[0] === uid && e[T.eventType]?.Value?.[0] === 3);
      expect(progress.length, 'progress reports').to.be.greaterThan(0);
      expect(progress[0]![T.progress]!.Value![0]).to.have.property('00741004');

      // Retrieve: COMPLETED, no Transaction UID, the SR (and PDF) in the Output Information Sequence.
      const got = await call('GET', `/dicom-web/workitems/${uid}`);
      expect(got.status).to.equal(200);
      const ds = ((await got.json()) as Ds[])[0]!;
      expect(ds[T.state]!.Value).to.deep.equal(['COMPLETED']);
      expect(ds).to.not.have.property(T.tx);
      const performed = ds[T.performed]!.Value![0] as Ds;
      const outputs = performed[T.output]!.Value as Ds[];
      const refs = outputs.map((o) => (o[T.refSop]!.Value![0] as Ds)[T.refSopUid]!.Value![0] as string);
      const classes = outputs.map((o) => (o[T.refSop]!.Value![0] as Ds)[T.refSopClass]!.Value![0] as string);
      expect(classes).to.include(SR_CLASS);
      const srUid = refs[classes.indexOf(SR_CLASS)]!;
      const sr = await findInstance(node.db, srUid);
      expect(sr, 'the SR is stored on the node').to.not.equal(undefined);
      expect(sr!.study_instance_uid).to.equal(study);

      // The workitem's analysis is the one whose published report is that SR.
      const api = apiClient(node, viewer);
      const analyses = (await api.get<{ items: Array<{ id: number; trigger: string }> }>(`/api/studies/${study}/analyses`)).body.items;
      const mine = analyses.find((a) => a.trigger === 'workitem');
      expect(mine, 'an analysis with trigger workitem').to.not.equal(undefined);
      const view = (await api.get<{ auto_publish: { report_id: number } }>(`/api/analysis/${mine!.id}`)).body;
      const report = (await api.get<{ dicom: { sr: { sop_instance_uid: string } } }>(`/api/reports/${view.auto_publish.report_id}`)).body;
      expect(report.dicom.sr.sop_instance_uid).to.equal(srUid);

      expect((await auditRows(node, 'ups.create')).some((r) => r.resource_id === uid && r.outcome === 'success')).to.equal(true);
      expect((await auditRows(node, 'ups.complete')).some((r) => r.resource_id === uid)).to.equal(true);
      expect((await auditRows(node, 'ups.channel')).some((r) => r.resource_id === 'RIS_AE')).to.equal(true);

      // The node's own automatic analysis of the study is a workitem too, performed and completed by the node.
      const auto = await until(
        'the automatic analysis as a COMPLETED workitem',
        async () => {
          const res = await call('GET', `/dicom-web/workitems?StudyInstanceUID=${study}&ProcedureStepLabel=Automatic*`);
          const list = (await res.json()) as Ds[];
          return list.length === 1 && list[0]![T.state]!.Value![0] === 'COMPLETED' ? list[0] : undefined;
        },
        240_000,
      );
      const autoOutputs = ((auto[T.performed]!.Value![0] as Ds)[T.output]!.Value ?? []) as Ds[];
      expect(autoOutputs.length).to.be.greaterThan(0);
      expect(auto[T.patientId]!.Value).to.deep.equal(['UPS-PAT-1']);
    } finally {
      ws.close();
    }
  });

  it('searches by state, patient and scheduled date', async () => {
    const a = newUid();
    const b = newUid();
    const other = { value: 'OTHER-TASK', scheme: '99TEST' };
    expect(
      (
        await call(
          'POST',
          `/dicom-web/workitems?${a}`,
          workitem('1.2.3.4.5', { code: other, patientId: 'SRCH-1', name: 'Search^Alice', start: '20240105080000' }),
        )
      ).status,
    ).to.equal(201);
    expect(
      (
        await call(
          'POST',
          `/dicom-web/workitems?${b}`,
          workitem('1.2.3.4.6', { code: other, patientId: 'SRCH-2', name: 'Search^Bob', start: '20240210080000' }),
        )
      ).status,
    ).to.equal(201);
    const uids = async (q: string) => {
      const res = await call('GET', `/dicom-web/workitems?${q}`, undefined, viewer);
      expect(res.status, q).to.equal(200);
      return ((await res.json()) as Ds[]).map((d) => d['00080018']!.Value![0] as string);
    };
    expect(await uids('PatientID=SRCH-1')).to.deep.equal([a]);
    expect(await uids('PatientName=search*&ProcedureStepState=SCHEDULED')).to.have.members([a, b]);
    expect(await uids('ScheduledProcedureStepStartDateTime=20240101-20240131&PatientID=SRCH*')).to.deep.equal([a]);
    expect(await uids('ScheduledProcedureStepStartDateTime=20240210&PatientID=SRCH*')).to.deep.equal([b]);
    expect(await uids('ProcedureStepState=COMPLETED&PatientID=SRCH*')).to.deep.equal([]);
    expect((await call('GET', '/dicom-web/workitems?Modality=CT', undefined, viewer)).status).to.equal(400);
  });

  it('answers invalid state changes and wrong Transaction UIDs with PS3.18 statuses and Warnings', async () => {
    const uid = newUid();
    const other = { value: 'OTHER-TASK', scheme: '99TEST' };
    expect((await call('POST', `/dicom-web/workitems?${uid}`, workitem('1.2.3.4.7', { code: other }))).status).to.equal(201);
    expect((await call('POST', `/dicom-web/workitems?${uid}`, workitem('1.2.3.4.7', { code: other }))).status, 'duplicate').to.equal(409);
    const bad = workitem('1.2.3.4.7');
    delete bad[T.label];
    expect((await call('POST', '/dicom-web/workitems', bad)).status, 'missing label').to.equal(400);
    expect((await call('POST', '/dicom-web/workitems', workitem('1.2.3.4.7'), viewer)).status, 'viewer may not create').to.equal(403);

    const state = (s: string, tx?: string) =>
      call('PUT', `/dicom-web/workitems/${uid}/state`, { [T.state]: v('CS', s), ...(tx ? { [T.tx]: v('UI', tx) } : {}) });
    const expectRefusal = async (res: Response, status: number, warning: string) => {
      expect(res.status).to.equal(status);
      expect(res.headers.get('warning')).to.match(/^299 /).and.include(warning);
    };
    const tx = newUid();
    await expectRefusal(await state('COMPLETED', tx), 409, 'inconsistent with the state');
    await expectRefusal(await state('IN PROGRESS'), 400, 'The Transaction UID is missing.');
    expect((await state('IN PROGRESS', tx)).status, 'claim').to.equal(200);
    await expectRefusal(await state('IN PROGRESS', newUid()), 400, 'The Transaction UID is incorrect.');
    await expectRefusal(await state('IN PROGRESS', tx), 409, 'inconsistent with the state');

    // Update needs the owner's Transaction UID once IN PROGRESS.
    const upd = { '00400400': v('LT', 'priority case') };
    await expectRefusal(await call('POST', `/dicom-web/workitems/${uid}?${newUid()}`, upd), 400, 'did not reference a claimed Workitem');
    expect((await call('POST', `/dicom-web/workitems/${uid}?${tx}`, upd)).status).to.equal(200);
    const retrieved = ((await (await call('GET', `/dicom-web/workitems/${uid}`)).json()) as Ds[])[0]!;
    expect(retrieved['00400400']!.Value).to.deep.equal(['priority case']);
    expect(retrieved, 'the lock is only the owner’s').to.not.have.property(T.tx);

    await expectRefusal(await state('COMPLETED', newUid()), 400, 'The Transaction UID is incorrect.');
    expect((await state('COMPLETED', tx)).status).to.equal(200);
    const again = await state('COMPLETED', tx);
    expect(again.status).to.equal(200);
    expect(again.headers.get('warning')).to.include('already in the requested state of COMPLETED');
    await expectRefusal(await state('CANCELED', tx), 409, 'inconsistent with the state');
    await expectRefusal(await call('POST', `/dicom-web/workitems/${uid}/cancelrequest`, {}), 409, 'The UPS is already COMPLETED.');
    await expectRefusal(await call('POST', `/dicom-web/workitems/${uid}?${tx}`, upd), 409, 'inconsistent with the current state');
    expect((await call('GET', `/dicom-web/workitems/${newUid()}`)).status).to.equal(404);

    // A SCHEDULED workitem asked to cancel is canceled by the node (through IN PROGRESS).
    const sched = newUid();
    expect((await call('POST', `/dicom-web/workitems?${sched}`, workitem('1.2.3.4.8', { code: other }))).status).to.equal(201);
    expect((await call('POST', `/dicom-web/workitems/${sched}/cancelrequest`, { '00741238': v('LT', 'order withdrawn') })).status).to.equal(
      202,
    );
    const canceled = ((await (await call('GET', `/dicom-web/workitems/${sched}`)).json()) as Ds[])[0]!;
    expect(canceled[T.state]!.Value).to.deep.equal(['CANCELED']);
    const again2 = await call('POST', `/dicom-web/workitems/${sched}/cancelrequest`, {});
    expect(again2.status).to.equal(202);
    expect(again2.headers.get('warning')).to.include('already in the requested state of CANCELED');
  });

  it('refuses the event channel without a token', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${node.httpPort}/dicom-web/subscribers/RIS_AE`);
    const status = await new Promise<number>((resolve) => {
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('open', () => resolve(101));
      ws.once('error', () => resolve(-1));
    });
    ws.terminate();
    expect(status).to.equal(401);
  });
});
