import { expect } from 'chai';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { Readable } from 'node:stream';
import { makeCrImage, makeCtSeries, makeMrSeries, type GeneratedFile } from '../fixtures/generate.js';
import { parseRetentionRules, type RetentionRule } from '../src/config.js';
import { previewRetention, RETENTION_JOB, runRetention } from '../src/retention/retention.js';
import { apiClient, auditRows } from './helpers/api.js';
import { draftReportOf, noduleEndpoint, standInEngineEnv } from './helpers/draft-report.js';
import { tokenFor } from './helpers/http.js';
import { startTestNode, type TestNode } from './helpers/node.js';
import { until } from './helpers/until.js';

/**
 * Retention (issue 21, item 4): RETENTION_RULES select studies by age (Study Date or last
 * arrival), modality and source; the dry run (API and CLI) lists and deletes nothing; a run
 * deletes exactly the selected studies through the one delete path (instances, blobs, index rows,
 * analyses and reports), audited per study; unsigned AI drafts keep their study unless the rule
 * says deleteUnsignedDrafts; the retention.run job runs on the job runner.
 */

const OLD_CT: RetentionRule = parseRetentionRules(
  JSON.stringify([{ name: 'old-ct', olderThanDays: 365, ageFrom: 'study_date', modalities: ['CT'] }]),
)[0]!;

async function store(node: TestNode, files: GeneratedFile[], source: 'dimse' | 'stow', callingAeTitle?: string): Promise<string> {
  for (const f of files) await node.ingestor.ingestStream(Readable.from([f.bytes]), { source, callingAeTitle });
  return files[0]!.studyInstanceUid;
}

async function instancesOf(node: TestNode, study: string): Promise<Array<{ storage_key: string }>> {
  return node
    .db('instances as i')
    .join('series as se', 'se.id', 'i.series_pk')
    .join('studies as st', 'st.id', 'se.study_pk')
    .where('st.study_instance_uid', study)
    .select('i.storage_key');
}

async function studyExists(node: TestNode, study: string): Promise<boolean> {
  return (await node.db('studies').where('study_instance_uid', study).first()) !== undefined;
}

function cli(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.resolve('dist/src/cli.js'), ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

describe('retention rules', function () {
  this.timeout(300_000);
  let node: TestNode;
  let fake: Awaited<ReturnType<typeof noduleEndpoint>>;
  const uid: Record<string, string> = {};
  let keys: Record<string, string[]> = {};

  before(async function () {
    fake = await noduleEndpoint();
    node = await startTestNode({
      ...standInEngineEnv(fake.url),
      RETENTION_RULES: JSON.stringify([{ name: 'old-ct', olderThanDays: 365, ageFrom: 'study_date', modalities: ['CT'] }]),
      RETENTION_INTERVAL_MINUTES: '0',
    });
    uid.oldCt = await store(node, makeCtSeries({ seed: 'ret-old-ct', slices: 3, size: 64, studyDate: '20100101' }), 'dimse', 'OLDCT');
    uid.oldMr = await store(node, makeMrSeries({ seed: 'ret-old-mr', slices: 2, size: 32, studyDate: '20100101' }), 'dimse', 'OLDCT');
    uid.newCt = await store(
      node,
      makeCtSeries({ seed: 'ret-new-ct', slices: 2, size: 32, studyDate: new Date().toISOString().slice(0, 10).replace(/-/g, '') }),
      'dimse',
      'OLDCT',
    );
    uid.draftCt = await store(node, makeCtSeries({ seed: 'ret-draft-ct', slices: 5, size: 128, studyDate: '20110101' }), 'stow');
    uid.fromX = await store(node, makeCrImage({ seed: 'ret-from-x', size: 32, studyDate: '20240101' }), 'dimse', 'SCANNERX');
    uid.fromY = await store(node, makeCrImage({ seed: 'ret-from-y', size: 32, studyDate: '20240101' }), 'dimse', 'SCANNERY');
    await draftReportOf(node, uid.draftCt);
    keys = {};
    for (const [k, u] of Object.entries(uid)) keys[k] = (await instancesOf(node, u)).map((i) => i.storage_key);
  });

  after(async function () {
    await node?.cleanup();
    await fake?.close();
  });

  it('GET /api/retention/preview lists what the rules select and why, keeps the unsigned draft, deletes nothing', async function () {
    const admin = apiClient(node, await tokenFor(node, 'admin'));
    const before = await node.db('instances').count('* as n').first();
    const res = await admin.get('/api/retention/preview');
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    const byStudy = new Map<string, { action: string; reason: string; rule: string; unsigned_drafts: number }>(
      res.body.items.map((i: { study_instance_uid: string }) => [i.study_instance_uid, i]),
    );
    expect([...byStudy.keys()].sort()).to.deep.equal([uid.oldCt, uid.draftCt].sort());
    expect(byStudy.get(uid.oldCt)).to.include({ action: 'delete', rule: 'old-ct' });
    expect(byStudy.get(uid.oldCt)!.reason).to.match(/study date older than 365 days, modality CT/);
    expect(byStudy.get(uid.draftCt)!.action).to.equal('keep');
    expect(byStudy.get(uid.draftCt)!.unsigned_drafts).to.be.greaterThan(0);
    expect(byStudy.get(uid.draftCt)!.reason).to.match(/unsigned AI draft/);
    expect(res.body.counts).to.deep.equal({ delete: 1, keep: 1 });
    expect(res.body.rules[0]).to.include({ name: 'old-ct', deleteUnsignedDrafts: false });
    // Dry: every row and blob is still there.
    expect(await node.db('instances').count('* as n').first()).to.deep.equal(before);
    for (const k of keys.oldCt!) expect(await node.storage.exists(k)).to.equal(true);
    const audit = await auditRows(node, 'retention.preview');
    expect(audit.at(-1)).to.include({ outcome: 'success', status: 200 });
    // nodes:manage only.
    const viewer = apiClient(node, await tokenFor(node, 'viewer'));
    expect((await viewer.get('/api/retention/preview')).status).to.equal(403);
    expect((await apiClient(node).get('/api/retention/preview')).status).to.equal(401);
  });

  it('`radiant retention --dry-run` prints the same selection and deletes nothing', async function () {
    const out = await cli(['retention', '--dry-run'], {
      DATA_DIR: node.dir,
      RETENTION_RULES: JSON.stringify([{ name: 'old-ct', olderThanDays: 365, ageFrom: 'study_date', modalities: ['CT'] }]),
    });
    expect(out.code, out.out).to.equal(0);
    expect(out.out).to.include(`would delete ${uid.oldCt}`);
    expect(out.out).to.match(new RegExp(`keep +${uid.draftCt.replace(/\./g, '\\.')}`));
    expect(out.out).to.include('dry run: 1 studies would be deleted, 1 kept; nothing was deleted');
    expect(await studyExists(node, uid.oldCt!)).to.equal(true);
    for (const k of keys.oldCt!) expect(await node.storage.exists(k)).to.equal(true);
  });

  it('a run deletes exactly the selected study (rows and blobs) through the delete path, audited', async function () {
    const otherInstances = Number((await node.db('instances').count('* as n').first())!.n) - keys.oldCt!.length;
    const r = await runRetention(node, [OLD_CT], { maxStudies: 100 });
    expect(r.deleted.map((d) => d.study_instance_uid)).to.deep.equal([uid.oldCt]);
    expect(r.failed).to.equal(0);
    expect(await studyExists(node, uid.oldCt!)).to.equal(false);
    expect(await node.db('series').join('studies', 'studies.id', 'series.study_pk').where('study_instance_uid', uid.oldCt)).to.have.length(
      0,
    );
    for (const k of keys.oldCt!) expect(await node.storage.exists(k), k).to.equal(false);
    expect(Number((await node.db('instances').count('* as n').first())!.n)).to.equal(otherInstances);
    for (const k of ['oldMr', 'newCt', 'draftCt', 'fromX', 'fromY']) expect(await studyExists(node, uid[k]!), k).to.equal(true);
    const audit = (await auditRows(node, 'retention.delete')).filter((a) => a.study_instance_uid === uid.oldCt);
    expect(audit).to.have.length(1);
    expect(audit[0]).to.include({ outcome: 'success', actor: 'retention', resource_id: uid.oldCt });
    expect(JSON.parse(audit[0]!.details!)).to.include({ rule: 'old-ct', instances: 3, blobsDeleted: 3, orphanedBlobs: 0 });
    // Nothing left to do for that rule: the draft stays.
    expect((await runRetention(node, [OLD_CT], { maxStudies: 100 })).deleted).to.have.length(0);
    expect(await studyExists(node, uid.draftCt!)).to.equal(true);
  });

  it('deleteUnsignedDrafts: true deletes the study with its analysis, report and AI objects', async function () {
    const reportsBefore = await node.db('reports').where('study_instance_uid', uid.draftCt);
    expect(reportsBefore).to.have.length(1);
    expect(reportsBefore[0].state).to.equal('draft');
    const aiObjects = await node
      .db('instances as i')
      .join('series as se', 'se.id', 'i.series_pk')
      .join('studies as st', 'st.id', 'se.study_pk')
      .where({ 'st.study_instance_uid': uid.draftCt, 'i.source': 'ai' })
      .select('i.storage_key');
    const all = (await instancesOf(node, uid.draftCt!)).map((i) => i.storage_key);
    const rule = { ...OLD_CT, name: 'old-ct-all', deleteUnsignedDrafts: true };
    const preview = await previewRetention(node, [rule], { limit: 100 });
    expect(preview.map((p) => [p.study_instance_uid, p.action])).to.deep.equal([[uid.draftCt, 'delete']]);
    const r = await runRetention(node, [rule], { maxStudies: 100 });
    expect(r.deleted.map((d) => d.study_instance_uid)).to.deep.equal([uid.draftCt]);
    expect(await node.db('reports').where('study_instance_uid', uid.draftCt)).to.have.length(0);
    expect(await node.db('medgemma_analyses').where('study_instance_uid', uid.draftCt)).to.have.length(0);
    for (const k of all) expect(await node.storage.exists(k), k).to.equal(false);
    const audit = (await auditRows(node, 'retention.delete')).find((a) => a.study_instance_uid === uid.draftCt)!;
    const details = JSON.parse(audit.details!);
    expect(details).to.include({ rule: 'old-ct-all', reports: 1, analyses: 1, instances: all.length });
    expect(aiObjects.length, 'the draft was published as AI objects').to.be.greaterThan(0);
  });

  it('a source rule (door + calling AE title, by received date) selects only that source, bounded per run', async function () {
    const [rule] = parseRetentionRules(
      JSON.stringify([{ name: 'scanner-x', olderThanDays: 30, doors: ['dimse'], callingAeTitles: ['SCANNERX'] }]),
    );
    // Received today: not yet 30 days old.
    expect(await previewRetention(node, [rule!], { limit: 100 })).to.have.length(0);
    const later = new Date(Date.now() + 60 * 86_400_000);
    const preview = await previewRetention(node, [rule!], { limit: 100, now: later });
    expect(preview.map((p) => p.study_instance_uid)).to.deep.equal([uid.fromX]);
    expect(preview[0]!.reason).to.match(/received by dimse, from SCANNERX/);
    // Bounded: one rule over both scanners, one study per run.
    const [both] = parseRetentionRules(
      JSON.stringify([{ name: 'scanners', olderThanDays: 30, callingAeTitles: ['SCANNERX', 'SCANNERY'] }]),
    );
    const r1 = await runRetention(node, [both!], { maxStudies: 1, now: later });
    expect(r1.deleted).to.have.length(1);
    expect(r1.truncated).to.equal(true);
    const r2 = await runRetention(node, [both!], { maxStudies: 1, now: later });
    expect(r2.deleted).to.have.length(1);
    expect(new Set([...r1.deleted, ...r2.deleted].map((d) => d.study_instance_uid))).to.deep.equal(new Set([uid.fromX, uid.fromY]));
    // The MR from OLDCT and today's CT were never selected.
    expect(await studyExists(node, uid.oldMr!)).to.equal(true);
    expect(await studyExists(node, uid.newCt!)).to.equal(true);
  });

  it('RETENTION_RULES are checked at start-up', function () {
    expect(() => parseRetentionRules('[{"name":"x","olderThanDays":0}]')).to.throw(/olderThanDays/);
    expect(() => parseRetentionRules('[{"name":"x","olderThanDays":3,"modality":["CT"]}]')).to.throw(/RETENTION_RULES/);
    expect(() => parseRetentionRules('[{"name":"x","olderThanDays":3},{"name":"x","olderThanDays":4}]')).to.throw(/twice/);
    expect(() => parseRetentionRules('nope')).to.throw(/not JSON/);
  });
});

describe('retention as a periodic job on the job runner', function () {
  this.timeout(120_000);
  let node: TestNode;
  after(async function () {
    await node?.cleanup();
  });

  it('retention.run is scheduled at start, deletes when due, and schedules the next run', async function () {
    node = await startTestNode({
      RETENTION_RULES: JSON.stringify([{ name: 'old-ct', olderThanDays: 365, ageFrom: 'study_date', modalities: ['CT'] }]),
      RETENTION_INTERVAL_MINUTES: '60',
      FORWARD_POLL_MS: '100',
    });
    const study = await store(node, makeCtSeries({ seed: 'ret-job', slices: 2, size: 32, studyDate: '20100101' }), 'dimse', 'OLDCT');
    const pending = await node.queue.list({ kind: RETENTION_JOB, status: 'pending' });
    expect(pending).to.have.length(1);
    expect(new Date(pending[0]!.nextRunAt).getTime()).to.be.greaterThan(Date.now() + 50 * 60_000);
    // Due now (as if the hour had passed): the service worker takes it.
    await node.queue.schedule(node.db, { kind: RETENTION_JOB, payload: {}, dedupeKey: RETENTION_JOB, runAt: new Date() }, 'earliest');
    node.events.emit('job-due', { kind: RETENTION_JOB, runAt: new Date() });
    const done = await until('the retention job', async () => {
      const [j] = await node.queue.list({ kind: RETENTION_JOB, status: 'succeeded' });
      return j;
    });
    expect(done.result).to.deep.equal({ deleted: 1, failed: 0, truncated: false });
    expect(await studyExists(node, study)).to.equal(false);
    expect((await auditRows(node, 'retention.delete')).map((a) => a.actor)).to.deep.equal(['retention']);
    const next = await node.queue.list({ kind: RETENTION_JOB, status: 'pending' });
    expect(next).to.have.length(1);
    expect(new Date(next[0]!.nextRunAt).getTime()).to.be.greaterThan(Date.now() + 50 * 60_000);
  });
});
