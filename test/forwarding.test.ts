import { expect } from 'chai';
import { ruleMatches, type RuleMatch } from '../src/forwarding/rules.js';
import { retryDelay } from '../src/catalog/forwarding.js';
import { createRemoteNode } from '../src/catalog/remote-nodes.js';
import type { InstanceRecord } from '../src/catalog/catalog.js';
import { corpusDir } from './helpers/corpus.js';
import { storescu } from './helpers/dcmtk.js';
import { bearer, baseUrl, tokenFor } from './helpers/http.js';
import { startTestNode, type TestNode } from './helpers/node.js';
import { onBothDatabases } from './helpers/postgres.js';
import { loadConfig } from '../src/config.js';
import { createDb, migrationStatus } from '../src/db/connection.js';
import { migrationSource } from '../migrations/index.js';

function rec(over: { modality?: string; ae?: string; sopClass?: string; source?: string }): InstanceRecord {
  return {
    patient: { patientId: 'P', issuerOfPatientId: '' },
    study: { studyInstanceUid: '1.2.3' },
    series: { seriesInstanceUid: '1.2.3.4', modality: over.modality },
    instance: {
      sopInstanceUid: '1.2.3.4.5',
      sopClassUid: over.sopClass ?? '1.2.840.10008.5.1.4.1.1.2',
      source: over.source ?? 'dimse',
      sourceAeTitle: over.ae,
    },
  } as unknown as InstanceRecord;
}

describe('forwarding rules (matching)', () => {
  const cases: Array<[string, RuleMatch, Parameters<typeof rec>[0], boolean]> = [
    ['empty rule matches anything', {}, { modality: 'CT' }, true],
    ['modality, case and padding ignored', { modalities: ['ct '] }, { modality: 'CT' }, true],
    ['other modality', { modalities: ['MR'] }, { modality: 'CT' }, false],
    ['no modality in the instance', { modalities: ['CT'] }, {}, false],
    ['calling AE', { callingAeTitles: ['CT_SCANNER'] }, { ae: 'CT_SCANNER ' }, true],
    ['other calling AE', { callingAeTitles: ['CT_SCANNER'] }, { ae: 'MR1' }, false],
    ['SOP class exact', { sopClassUids: ['1.2.840.10008.5.1.4.1.1.4'] }, { sopClass: '1.2.840.10008.5.1.4.1.1.2' }, false],
    ['all criteria together', { modalities: ['CT'], callingAeTitles: ['A'], sources: ['dimse'] }, { modality: 'CT', ae: 'A' }, true],
    ['source', { sources: ['stow'] }, { source: 'dimse' }, false],
    ['AI results only', { aiResults: true }, { source: 'ai', modality: 'SR' }, true],
    ['AI results only, an image', { aiResults: true }, { source: 'dimse', modality: 'CT' }, false],
    ['never AI results', { aiResults: false }, { source: 'ai' }, false],
  ];
  for (const [name, match, r, want] of cases) it(name, () => expect(ruleMatches(match, rec(r))).to.equal(want));
  it('backs off exponentially up to the cap', () => {
    const p = { maxAttempts: 8, baseDelayMs: 1000, maxDelayMs: 5000 };
    expect([1, 2, 3, 4, 5].map((a) => retryDelay(p, a))).to.deep.equal([1000, 2000, 4000, 5000, 5000]);
  });
});

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function describeForwarding(name: string, env: () => Promise<Record<string, string>>): void {
  describe(`forwarding by rule to a DICOMweb node over STOW-RS (${name})`, function () {
    this.timeout(180_000);
    let source: TestNode;
    let dest: TestNode;
    let admin: string;
    let sourceEnv: Record<string, string> = {};
    const ct = corpusDir('ct-series-chest-99')
      .slice(0, 12)
      .map((e) => e.absPath);
    const mr = corpusDir('mr-series-brain-sag-192')
      .slice(0, 3)
      .map((e) => e.absPath);
    const fast = { FORWARD_SETTLE_MS: '100', FORWARD_POLL_MS: '200', FORWARD_RETRY_BASE_MS: '300', FORWARD_MAX_ATTEMPTS: '3' };

    before(async () => {
      dest = await startTestNode();
      sourceEnv = { ...(await env()), ...fast };
      source = await startTestNode(sourceEnv);
      admin = await tokenFor(source, 'admin');
    });
    after(async () => {
      await source?.cleanup();
      await dest?.cleanup();
    });

    const api = async (path: string, init: RequestInit = {}, token = admin) => {
      const res = await fetch(`${baseUrl(source)}${path}`, {
        ...init,
        headers: {
          ...bearer(token),
          ...(init.body ? { 'content-type': 'application/json' } : {}),
          ...(init.headers as Record<string, string> | undefined),
        },
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    };
    const counts = async () => (await api('/api/forwarding')).body.counts as Record<string, number>;
    const destCount = async () => Number(((await dest.db('instances').count({ n: '*' })) as Array<{ n: number | string }>)[0]!.n);

    it('sends CT instances that match a rule, only those, and shows them as sent', async () => {
      const serviceToken = await tokenFor(dest, 'service');
      const node = await createRemoteNode(source.db, {
        aeTitle: 'DEST_WEB',
        host: '127.0.0.1',
        port: 104,
        tls: false,
        description: 'a second RadiantAI, DICOMweb',
        allowQueryRetrieve: false,
        stowUrl: `${baseUrl(dest)}/dicom-web`,
        stowAuthorization: `Bearer ${serviceToken}`,
      });
      const viewer = await tokenFor(source, 'viewer');
      expect(
        (await api('/api/forwarding/rules', { method: 'POST', body: JSON.stringify({ name: 'x', node_id: node.id }) }, viewer)).status,
      ).to.equal(403);
      expect((await api('/api/forwarding/rules', { method: 'POST', body: JSON.stringify({ name: 'x', node_id: 9999 }) })).status).to.equal(
        422,
      );
      expect(
        (
          await api('/api/forwarding/rules', {
            method: 'POST',
            body: JSON.stringify({ name: 'x', node_id: node.id, match: { modality: 'CT' } }),
          })
        ).status,
      ).to.equal(400);
      const created = await api('/api/forwarding/rules', {
        method: 'POST',
        body: JSON.stringify({ name: 'CT to the web PACS', node_id: node.id, match: { modalities: ['CT'] } }),
      });
      expect(created.status).to.equal(201);
      expect(created.body).to.deep.include({ name: 'CT to the web PACS', enabled: true, node_id: node.id });

      const sent = await storescu(source.dicomPort, [...ct, ...mr], ['-aet', 'CT_SCANNER']);
      expect(sent.code, sent.output).to.equal(0);
      await waitFor('12 sent', async () => (await counts()).sent === ct.length);
      expect(await destCount()).to.equal(ct.length);
      const c = await counts();
      expect(c).to.deep.include({ queued: 0, sending: 0, failed: 0 });
      const list = await api('/api/forwarding?status=sent&limit=5');
      expect(list.body.total).to.equal(ct.length);
      expect(list.body.items[0]).to.include.keys('sop_instance_uid', 'sent_at', 'attempts');
      const audit = await source.db('audit_logs').where({ action: 'forward.send' });
      expect(audit.length).to.be.greaterThan(0);
      expect(JSON.parse(audit[0].details)).to.include({ node: 'DEST_WEB', via: 'stow-rs' });
      // One instance of the study per request part: the destination got them in few requests.
      expect(audit.length).to.be.lessThan(ct.length);
    });

    it('retries with back-off while the destination is down, keeps the reason, fails after the last attempt, and can be retried', async () => {
      const node = await createRemoteNode(source.db, {
        aeTitle: 'NOWHERE',
        host: '127.0.0.1',
        port: 104,
        tls: false,
        description: null,
        allowQueryRetrieve: false,
        stowUrl: 'http://127.0.0.1:9/dicom-web',
        stowAuthorization: null,
      });
      const rule = await api('/api/forwarding/rules', {
        method: 'POST',
        body: JSON.stringify({ name: 'MR nowhere', node_id: node.id, match: { modalities: ['MR'] } }),
      });
      expect(rule.status).to.equal(201);
      const more = corpusDir('mr-series-brain-sag-192')
        .slice(3, 5)
        .map((e) => e.absPath);
      expect((await storescu(source.dicomPort, more)).code).to.equal(0);
      const failed = await waitFor('2 failed', async () => {
        const l = await api(`/api/forwarding?node_id=${node.id}&status=failed`);
        return l.body.total === 2 && l.body.items;
      });
      expect(failed[0].attempts).to.equal(3);
      expect(failed[0].last_error).to.match(/STOW-RS request failed/);
      expect((await api(`/api/forwarding/${failed[0].id}/retry`, { method: 'POST' })).status).to.equal(200);
      expect((await api(`/api/forwarding/${failed[0].id}/retry`, { method: 'POST' })).status).to.equal(409);
      // Pointed at the real destination, the retried one goes through.
      await source
        .db('remote_nodes')
        .where({ id: node.id })
        .update({ stow_url: `${baseUrl(dest)}/dicom-web`, stow_authorization: `Bearer ${await tokenFor(dest, 'service')}` });
      await waitFor('the retried one sent', async () => (await api(`/api/forwarding?node_id=${node.id}&status=sent`)).body.total === 1);
      expect((await api('/api/forwarding/rules')).body.items).to.have.length(2);
      expect((await api(`/api/forwarding/rules/${rule.body.id}`, { method: 'DELETE' })).status).to.equal(204);
    });

    it('keeps queued sends across a restart (queued in the index transaction, sent by the next worker)', async () => {
      const dataDir = source.dir;
      // The same data directory and database as before.
      const envNow = sourceEnv;
      await source.stop();
      const idle = await startTestNode({ ...envNow, DATA_DIR: dataDir, FORWARDING: 'off' });
      const before = await destCount();
      const next = corpusDir('ct-series-chest-99')
        .slice(12, 16)
        .map((e) => e.absPath);
      expect((await storescu(idle.dicomPort, next)).code).to.equal(0);
      expect(
        Number(((await idle.db('forward_items').where({ status: 'queued' }).count({ n: '*' })) as Array<{ n: number | string }>)[0]!.n),
      ).to.equal(next.length);
      await idle.stop();
      source = await startTestNode({ ...envNow, DATA_DIR: dataDir });
      admin = await tokenFor(source, 'admin');
      await waitFor('the queued ones sent after the restart', async () => (await destCount()) === before + next.length);
    });

    it('sends what was queued before forwarding ran on jobs (migration 013_forwarding_as_jobs), after a restart', async () => {
      const dataDir = source.dir;
      await source.stop();
      // The database as the version before: forward_items rows and no forward.send job.
      const db = createDb(loadConfig({ ...sourceEnv, DATA_DIR: dataDir }, dataDir).database);
      let nodeId: number;
      let mrUids: string[];
      try {
        await db.migrate.down({ migrationSource, name: '013_forwarding_as_jobs' });
        expect((await migrationStatus(db)).pending).to.include('013_forwarding_as_jobs');
        expect(await db('jobs').where({ kind: 'forward.send' }).whereIn('status', ['pending', 'running'])).to.have.length(0);
        const node = await createRemoteNode(db, {
          aeTitle: 'DEST_OLD_QUEUE',
          host: '127.0.0.1',
          port: 104,
          tls: false,
          description: null,
          allowQueryRetrieve: false,
          stowUrl: `${baseUrl(dest)}/dicom-web`,
          stowAuthorization: `Bearer ${await tokenFor(dest, 'service')}`,
        });
        nodeId = node.id;
        // The first three MR slices: stored here by the first test, matched by no rule, not at the destination.
        const rows = (await db('instances as i')
          .join('series as se', 'se.id', 'i.series_pk')
          .join('studies as st', 'st.id', 'se.study_pk')
          .where('se.modality', 'MR')
          .orderBy('i.instance_number')
          .limit(3)
          .select('i.sop_instance_uid', 'st.study_instance_uid')) as Array<{ sop_instance_uid: string; study_instance_uid: string }>;
        mrUids = rows.map((r) => r.sop_instance_uid);
        expect(mrUids).to.have.length(3);
        for (const r of rows) {
          expect(await dest.db('instances').where({ sop_instance_uid: r.sop_instance_uid }).first()).to.equal(undefined);
        }
        const now = new Date().toISOString();
        const claimedLongAgo = new Date(Date.now() - 3600_000).toISOString();
        await db('forward_items').insert(
          rows.map((r, i) => ({
            rule_id: null,
            node_id: node.id,
            sop_instance_uid: r.sop_instance_uid,
            study_instance_uid: r.study_instance_uid,
            // The last one was being sent by a process that died: its claim is stale.
            status: i === 2 ? 'sending' : 'queued',
            attempts: 0,
            next_attempt_at: now,
            claimed_by: i === 2 ? 'fwd-dead' : null,
            claimed_at: i === 2 ? claimedLongAgo : null,
            created_at: now,
          })),
        );
      } finally {
        await db.destroy();
      }
      source = await startTestNode({ ...sourceEnv, DATA_DIR: dataDir });
      admin = await tokenFor(source, 'admin');
      expect((await migrationStatus(source.db)).pending).to.deep.equal([]);
      expect(await source.db('jobs').where({ kind: 'forward.send', dedupe_key: `forward:${nodeId}` })).to.have.length.greaterThan(0);
      const sentOfNode = async () => (await api(`/api/forwarding?node_id=${nodeId}&status=sent`)).body.total as number;
      await waitFor('the three queued before the migration sent', async () => (await sentOfNode()) === 3);
      for (const uid of mrUids) expect(await dest.db('instances').where({ sop_instance_uid: uid }).first()).to.not.equal(undefined);
    });
  });
}

onBothDatabases(describeForwarding, 'radiant_forwarding');
