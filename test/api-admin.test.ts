import { expect } from 'chai';
import { makeCtSeries } from '../fixtures/generate.js';
import { apiClient, auditRows, ingestFiles, type ApiClient } from './helpers/api.js';
import { fakeEndpoint, okReply } from './helpers/fake-openai.js';
import { baseUrl, loginFor, tokenFor } from './helpers/http.js';
import { startTestNode, type TestNode } from './helpers/node.js';
import { onBothDatabases } from './helpers/postgres.js';

/**
 * The administrator's API (issue 18, item 4) on a real node: users and roles (the last admin
 * stays), the job queue with its dead letters and retry, the AI engine's status and a test call
 * (a stand-in OpenAI-compatible endpoint), the auto-analysis settings, storage and database
 * figures, and the audit search with its outcome filter and CSV export.
 */

const login = (node: TestNode, username: string, password: string) =>
  fetch(`${baseUrl(node)}/api/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username, password }),
  });

interface UserView {
  id: number;
  username: string;
  role: string;
  display_name: string;
  active: boolean;
}

interface JobView {
  id: number;
  kind: string;
  status: string;
  attempts: number;
  error: string | null;
  dead_letter: boolean;
}

const RULES = [{ modalities: ['CT'], bodyParts: ['CHEST'] }];

onBothDatabases((db, dbEnv) =>
  describe(`Admin API (${db}): users, jobs, engine, auto-analysis settings, storage figures, audit search and CSV`, function () {
    this.timeout(300_000);
    let fake: Awaited<ReturnType<typeof fakeEndpoint>>;
    let prompts: string[] = [];
    let node: TestNode;
    let admin: ApiClient;
    let adminName = '';

    before(async () => {
      fake = await fakeEndpoint((req, res) => {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          prompts.push(body);
          res.setHeader('content-type', 'application/json');
          res.end(okReply(JSON.stringify({ answer: 'a bright disc' })));
        });
      });
      node = await startTestNode({
        ...(await dbEnv()),
        MEDGEMMA_BACKEND: 'remote',
        MEDGEMMA_API_ENDPOINT: fake.url,
        AUTO_ANALYZE: 'rules',
        AUTO_ANALYZE_RULES: JSON.stringify(RULES),
        AUTO_PUBLISH: 'false',
      });
      const a = await loginFor(node, 'admin');
      admin = apiClient(node, a.token);
      adminName = a.username;
    });

    after(async () => {
      await node?.cleanup();
      await fake?.close();
    });

    it('users: create, list, change role and credentials, disable (no login), reset the password', async () => {
      const made = await admin.post<UserView>('/api/users', {
        username: 'dr.weiss',
        password: 'first password 1',
        role: 'technician',
        full_name: 'Anna Weiss',
      });
      expect(made.status, JSON.stringify(made.body)).to.equal(201);
      expect(made.body).to.include({ username: 'dr.weiss', role: 'technician', active: true, display_name: 'Anna Weiss' });
      expect((await admin.post('/api/users', { username: 'dr.weiss', password: 'another one 123', role: 'viewer' })).status).to.equal(409);
      expect((await admin.post('/api/users', { username: 'x', password: 'short', role: 'boss' })).status).to.equal(400);

      const changed = await admin.patch<UserView>(`/api/users/${made.body.id}`, { role: 'radiologist', credentials: 'MD' });
      expect(changed.status, JSON.stringify(changed.body)).to.equal(200);
      expect(changed.body).to.include({ role: 'radiologist', display_name: 'Anna Weiss, MD' });
      const list = await admin.get<{ items: Array<UserView & { password_hash?: string }> }>('/api/users');
      const listed = list.body.items.find((u) => u.username === 'dr.weiss')!;
      expect(listed).to.include({ role: 'radiologist', active: true });
      expect(listed).to.not.have.property('password_hash');
      expect((await login(node, 'dr.weiss', 'first password 1')).status).to.equal(200);

      expect((await admin.patch(`/api/users/${made.body.id}`, { active: false })).status).to.equal(200);
      expect((await login(node, 'dr.weiss', 'first password 1')).status).to.equal(401);
      await admin.patch(`/api/users/${made.body.id}`, { active: true });
      expect((await admin.post(`/api/users/${made.body.id}/password`, { password: 'second password 2' })).status).to.equal(200);
      expect((await login(node, 'dr.weiss', 'first password 1')).status).to.equal(401);
      expect((await login(node, 'dr.weiss', 'second password 2')).status).to.equal(200);
      expect((await admin.patch('/api/users/99999', { role: 'viewer' })).status).to.equal(404);

      const audited = await auditRows(node, 'user.password_reset');
      expect(audited.at(-1)).to.include({ actor: adminName, resource_id: String(made.body.id), outcome: 'success' });
      expect(audited.at(-1)!.details).to.not.include('second password');
      // Only users:manage.
      const rad = apiClient(node, await tokenFor(node, 'radiologist'));
      expect((await rad.get('/api/users')).status).to.equal(403);
      expect((await rad.post('/api/users', { username: 'sneaky', password: 'sneaky password', role: 'admin' })).status).to.equal(403);
    });

    it('the last active admin can be neither demoted nor disabled (409 last_admin); another admin makes it possible', async () => {
      const users = (await admin.get<{ items: UserView[] }>('/api/users')).body.items;
      const me = users.find((u) => u.username === adminName)!;
      for (const u of users) if (u.role === 'admin' && u.id !== me.id) await admin.patch(`/api/users/${u.id}`, { active: false });
      const demote = await admin.patch<{ error: { code: string } }>(`/api/users/${me.id}`, { role: 'viewer' });
      expect(demote.status).to.equal(409);
      expect(demote.body.error.code).to.equal('last_admin');
      expect((await admin.patch(`/api/users/${me.id}`, { active: false })).status).to.equal(409);
      expect((await admin.get<{ items: UserView[] }>('/api/users')).body.items.find((u) => u.id === me.id)).to.include({
        role: 'admin',
        active: true,
      });
      const second = await admin.post<UserView>('/api/users', { username: 'second.admin', password: 'admin password 2', role: 'admin' });
      expect((await admin.patch(`/api/users/${second.body.id}`, { role: 'viewer' })).status).to.equal(200);
      await admin.patch(`/api/users/${second.body.id}`, { role: 'admin' });
      expect((await admin.patch(`/api/users/${second.body.id}`, { active: false })).status).to.equal(200);
    });

    it('jobs: depth by kind and status, failed jobs with their last error, retry of a dead letter, paging', async () => {
      const kind = 'test.dead-letter';
      const job = await node.queue.enqueue({ kind, payload: { n: 1 }, maxAttempts: 1 });
      const claimed = await node.queue.claim('test-worker', [kind]);
      expect(claimed?.id).to.equal(job.id);
      expect(await node.queue.fail(job.id, 'test-worker', 'peer refused: connection reset', { retryable: true })).to.equal('failed');
      await node.queue.enqueue({ kind, payload: { n: 2 }, maxAttempts: 1 });

      const res = await admin.get<{ depth: Array<{ kind: string; status: string; count: number }>; items: JobView[] }>(
        `/api/jobs?kind=${kind}&status=failed`,
      );
      expect(res.status).to.equal(200);
      expect(res.body.depth).to.deep.include({ kind, status: 'failed', count: 1 });
      expect(res.body.depth).to.deep.include({ kind, status: 'pending', count: 1 });
      expect(res.body.items).to.have.length(1);
      expect(res.body.items[0]).to.include({ id: job.id, status: 'failed', dead_letter: true, error: 'peer refused: connection reset' });
      expect(res.body.items[0]).to.not.have.property('payload');

      const page1 = await admin.get<{ items: JobView[]; next_cursor: number | null }>(`/api/jobs?kind=${kind}&limit=1`);
      expect(page1.body.items).to.have.length(1);
      const page2 = await admin.get<{ items: JobView[]; next_cursor: number | null }>(
        `/api/jobs?kind=${kind}&limit=1&cursor=${page1.body.next_cursor}`,
      );
      expect(page2.body.items[0]!.id).to.be.lessThan(page1.body.items[0]!.id);

      const retried = await admin.post<JobView>(`/api/jobs/${job.id}/retry`, {});
      expect(retried.status, JSON.stringify(retried.body)).to.equal(200);
      expect(retried.body).to.include({ status: 'pending', attempts: 0 });
      expect((await node.queue.get(job.id))?.status).to.equal('pending');
      expect((await admin.post(`/api/jobs/${job.id}/retry`, {})).status).to.equal(409);
      expect((await admin.post('/api/jobs/999999/retry', {})).status).to.equal(404);
      expect((await auditRows(node, 'job.retry')).at(0)).to.include({ resource_id: String(job.id), outcome: 'success' });
      expect((await apiClient(node, await tokenFor(node, 'radiologist')).get('/api/jobs')).status).to.equal(403);
    });

    it('engine: status with device, queue and last errors; a test call sends a synthetic image and answers its latency', async () => {
      const st = await admin.get<{ state: string; device: string; queue: { pending: number }; last_errors: unknown[] }>('/api/engine');
      expect(st.status).to.equal(200);
      expect(st.body).to.include({ state: 'ready', device: 'auto' });
      expect(st.body.queue).to.have.property('pending');
      expect(st.body.last_errors).to.be.an('array');
      prompts = [];
      const t = await admin.post<{ ok: boolean; latency_ms: number; answer: unknown; images_sent: number }>('/api/engine/test', {});
      expect(t.status, JSON.stringify(t.body)).to.equal(200);
      expect(t.body.ok).to.equal(true);
      expect(t.body.answer).to.deep.equal({ answer: 'a bright disc' });
      expect(t.body.latency_ms).to.be.a('number').and.at.least(0);
      expect(prompts).to.have.length(1);
      expect(prompts[0]).to.include('synthetic test image');
      expect(prompts[0]).to.include('data:image/png;base64,');
      expect((await apiClient(node, await tokenFor(node, 'radiologist')).post('/api/engine/test', {})).status).to.equal(403);
    });

    it('auto-analysis settings: the effective AUTO_ANALYZE, rules and AUTO_PUBLISH, read-only', async () => {
      const s = await admin.get<{ auto_analyze: string; rules: unknown; auto_publish: boolean; editable: boolean }>(
        '/api/settings/auto-analysis',
      );
      expect(s.status).to.equal(200);
      expect(s.body).to.include({ auto_analyze: 'rules', auto_publish: false, editable: false });
      expect(s.body.rules).to.deep.equal([{ ...RULES[0], analysisType: 'primary' }]);
    });

    it('storage figures: counts and bytes of the index, local backend with free disk, the database and its size', async () => {
      const files = makeCtSeries({ seed: 'api-admin', slices: 3, size: 64 });
      await ingestFiles(node, files);
      const s = await admin.get<{
        index: { studies: number; series: number; instances: number; bytes: number };
        storage: { backend: string; disk: { free_bytes: number; total_bytes: number } | null };
        database: { dialect: string; bytes: number | null };
      }>('/api/system/storage');
      expect(s.status).to.equal(200);
      expect(s.body.index).to.include({ studies: 1, series: 1, instances: 3 });
      const stored = (await node.db('instances').select('size_bytes')) as Array<{ size_bytes: number }>;
      expect(s.body.index.bytes).to.equal(stored.reduce((n, r) => n + Number(r.size_bytes), 0));
      expect(s.body.storage.backend).to.equal('local');
      expect(s.body.storage.disk!.free_bytes).to.be.greaterThan(0);
      expect(s.body.storage.disk!.total_bytes).to.be.at.least(s.body.storage.disk!.free_bytes);
      expect(s.body.database.dialect).to.equal(db === 'SQLite' ? 'sqlite' : 'postgresql');
      expect(s.body.database.bytes).to.be.greaterThan(0);
    });

    it('audit: filtered by outcome and user, paged, and exported as CSV (formula cells defused)', async () => {
      await login(node, '=HYPERLINK("x")', 'wrong password');
      const failures = await admin.get<{ total: number; items: Array<{ outcome: string; action: string }> }>(
        '/api/audit?outcome=failure&limit=5',
      );
      expect(failures.status).to.equal(200);
      expect(failures.body.total).to.be.greaterThan(0);
      expect(failures.body.items.every((r) => r.outcome === 'failure')).to.equal(true);
      const mine = await admin.get<{ items: Array<{ actor: string }> }>(`/api/audit?user=${adminName}&action=user.create`);
      expect(mine.body.items.length).to.be.at.least(2);
      expect(mine.body.items.every((r) => r.actor === adminName)).to.equal(true);

      const csv = await admin.raw('/api/audit?format=csv&action=auth.login&outcome=failure');
      expect(csv.status).to.equal(200);
      expect(csv.headers.get('content-type')).to.match(/^text\/csv/);
      const lines = (await csv.text()).trim().split('\r\n');
      expect(lines[0]).to.equal(
        'id,at,actorType,actor,peer,action,resourceType,resourceId,patientId,studyInstanceUid,outcome,status,details,model,promptHash',
      );
      expect(Number(csv.headers.get('x-total-count'))).to.equal(lines.length - 1);
      const row = lines.find((l) => l.includes('HYPERLINK'))!;
      expect(row).to.include(`"'=HYPERLINK(""x"")"`);
      expect((await admin.get('/api/audit?format=json&limit=5000')).status).to.equal(400);
      expect((await admin.get('/api/audit?outcome=maybe')).status).to.equal(400);
    });
  }),
);
