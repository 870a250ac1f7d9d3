import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import path from 'node:path';
import { loadConfig } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import { resolveSecretKey } from '../src/auth/secret.js';
import { issueToken } from '../src/auth/tokens.js';
import { USER_CACHE_MS } from '../src/auth/users.js';
import { makeCtSeries, writeSeries } from '../fixtures/generate.js';
import { storescu } from './helpers/dcmtk.js';
import { baseUrl, bearer, tokenFor } from './helpers/http.js';
import { startTestNode, type TestNode } from './helpers/node.js';
import { onBothDatabases } from './helpers/postgres.js';

/**
 * The HTTP face's security on a real server: login, tokens, roles, rate limiting, the audit
 * trail, health and metrics; against SQLite and a real PostgreSQL.
 */

interface AuditRowDb {
  actor: string | null;
  actor_type: string;
  action: string;
  outcome: string;
  status: number | null;
  details: string | null;
  study_instance_uid: string | null;
}

async function auditRows(node: TestNode, action: string): Promise<AuditRowDb[]> {
  await node.audit.flush();
  return (await node.db('audit_logs').where({ action }).orderBy('id')) as AuditRowDb[];
}

function describeAuth(name: string, envFactory: () => Promise<Record<string, string>>): void {
  describe(`HTTP security (${name})`, function () {
    this.timeout(60_000);
    let node: TestNode;
    let url: string;

    before(async () => {
      node = await startTestNode({ LOGIN_MAX_ATTEMPTS: '3', CORS_ORIGINS: 'http://viewer.example', ...(await envFactory()) });
      url = baseUrl(node);
    });
    after(async () => {
      await node?.cleanup();
    });

    const post = (p: string, body: Record<string, string>, headers: Record<string, string> = {}) =>
      fetch(`${url}${p}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: new URLSearchParams(body),
      });
    const postJson = (p: string, body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${url}${p}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

    it('serves liveness, readiness and Prometheus metrics without a token', async () => {
      expect((await fetch(`${url}/healthz`)).status).to.equal(200);
      const ready = await fetch(`${url}/readyz`);
      expect(ready.status).to.equal(200);
      expect(await ready.json()).to.deep.include({ status: 'ready' });
      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).to.match(/radiant_http_requests_total\{method="GET",route="\/readyz",status="200"\} 1/);
    });

    it('bootstraps the first admin, then allows registration by admins only', async () => {
      const first = await postJson('/api/auth/register', { username: 'root', password: 'first-admin-password', role: 'admin' });
      expect(first.status).to.equal(201);
      const anonymous = await postJson('/api/auth/register', { username: 'eve', password: 'eve-password-123', role: 'admin' });
      expect(anonymous.status).to.equal(401);
      const viewer = await tokenFor(node, 'viewer');
      const byViewer = await postJson(
        '/api/auth/register',
        { username: 'eve', password: 'eve-password-123', role: 'viewer' },
        bearer(viewer),
      );
      expect(byViewer.status).to.equal(403);
      const login = await post('/api/auth/token', { username: 'root', password: 'first-admin-password' });
      expect(login.status).to.equal(200);
      const tok = (await login.json()) as { access_token: string; token_type: string; expires_in: number };
      expect(tok.token_type).to.equal('bearer');
      expect(tok.expires_in).to.be.greaterThan(0);
      const byAdmin = await postJson(
        '/api/auth/register',
        { username: 'rad1', password: 'radiologist-pass', role: 'radiologist' },
        bearer(tok.access_token),
      );
      expect(byAdmin.status).to.equal(201);
      const dup = await postJson(
        '/api/auth/register',
        { username: 'rad1', password: 'radiologist-pass', role: 'radiologist' },
        bearer(tok.access_token),
      );
      expect(dup.status).to.equal(409);
      const weak = await postJson(
        '/api/auth/register',
        { username: 'rad2', password: 'short', role: 'radiologist' },
        bearer(tok.access_token),
      );
      expect(weak.status).to.equal(400);
      expect(((await weak.json()) as { error: { code: string } }).error.code).to.equal('invalid_request');

      const me = await fetch(`${url}/api/auth/me`, { headers: bearer(tok.access_token) });
      expect(await me.json()).to.deep.include({ username: 'root', role: 'admin' });
      expect((await auditRows(node, 'user.bootstrap')).length).to.equal(1);
      expect((await auditRows(node, 'user.create')).length).to.equal(1);
    });

    it('enforces the role table: admin reads the audit trail, other roles get 403, no token 401', async () => {
      expect((await fetch(`${url}/api/audit`)).status).to.equal(401);
      for (const role of ['radiologist', 'technician', 'viewer', 'service'] as const) {
        const res = await fetch(`${url}/api/audit`, { headers: bearer(await tokenFor(node, role)) });
        expect(res.status, role).to.equal(403);
        expect(((await res.json()) as { error: { code: string } }).error.code).to.equal('forbidden');
      }
      const admin = await tokenFor(node, 'admin');
      const res = await fetch(`${url}/api/audit?action=auth.login&limit=2`, { headers: bearer(admin) });
      expect(res.status).to.equal(200);
      const body = (await res.json()) as { total: number; items: Array<{ action: string }> };
      expect(body.items).to.have.length(2);
      expect(body.total).to.be.greaterThan(2);
      expect(body.items.every((i) => i.action === 'auth.login')).to.equal(true);
      const forbidden = await auditRows(node, 'audit.read');
      expect(forbidden.filter((r) => r.outcome === 'failure' && r.status === 403).length).to.equal(4);
    });

    it('refuses expired, tampered and foreign-key tokens with 401', async () => {
      const secret = resolveSecretKey(node.config);
      const user = (await node.db('users').where({ username: 'root' }).first()) as { id: number };
      const expired = jwt.sign({ username: 'root', role: 'admin' }, secret, {
        algorithm: 'HS256',
        subject: String(user.id),
        issuer: 'radiant-ai',
        expiresIn: -10,
      });
      const r1 = await fetch(`${url}/api/audit`, { headers: bearer(expired) });
      expect(r1.status).to.equal(401);
      expect(((await r1.json()) as { error: { message: string } }).error.message).to.match(/expired/);

      const good = issueToken(secret, { userId: user.id, username: 'root', role: 'admin' }, 600);
      const [h, payload, sig] = good.split('.');
      const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
      const tampered = [h, Buffer.from(JSON.stringify({ ...claims, sub: '999' })).toString('base64url'), sig].join('.');
      expect((await fetch(`${url}/api/audit`, { headers: bearer(tampered) })).status).to.equal(401);

      const foreign = issueToken('another-node-secret-key-0123456789', { userId: user.id, username: 'root', role: 'admin' }, 600);
      expect((await fetch(`${url}/api/audit`, { headers: bearer(foreign) })).status).to.equal(401);
      // alg=none must never be accepted.
      const none = jwt.sign({ username: 'root', role: 'admin', sub: String(user.id), iss: 'radiant-ai' }, '', { algorithm: 'none' });
      expect((await fetch(`${url}/api/audit`, { headers: bearer(none) })).status).to.equal(401);
    });

    it('takes the role from the user record: a demotion or disable through this node holds at once', async () => {
      const token = await tokenFor(node, 'admin');
      const admin = await tokenFor(node, 'admin');
      const me = (await (await fetch(`${url}/api/auth/me`, { headers: bearer(token) })).json()) as { id: number };
      expect((await fetch(`${url}/api/audit`, { headers: bearer(token) })).status).to.equal(200);
      const patch = (body: unknown) =>
        fetch(`${url}/api/users/${me.id}`, {
          method: 'PATCH',
          headers: { ...bearer(admin), 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
      expect((await patch({ role: 'viewer' })).status).to.equal(200);
      expect((await fetch(`${url}/api/audit`, { headers: bearer(token) })).status).to.equal(403);
      expect((await patch({ active: false })).status).to.equal(200);
      expect((await fetch(`${url}/api/audit`, { headers: bearer(token) })).status).to.equal(401);
    });

    it('sees a disable made elsewhere (another node, the database) within USER_CACHE_MS', async () => {
      const token = await tokenFor(node, 'admin');
      const me = (await (await fetch(`${url}/api/auth/me`, { headers: bearer(token) })).json()) as { id: number };
      expect((await fetch(`${url}/api/audit`, { headers: bearer(token) })).status).to.equal(200);
      // The row is cached now; the change bypasses this node.
      const changedAt = Date.now();
      await node.db('users').where({ id: me.id }).update({ active: false });
      let status = 200;
      while (status === 200 && Date.now() - changedAt < USER_CACHE_MS + 5000) {
        status = (await fetch(`${url}/api/audit`, { headers: bearer(token) })).status;
        if (status === 200) await new Promise((r) => setTimeout(r, 100));
      }
      expect(status).to.equal(401);
      // The bound plus one request on a loaded machine.
      expect(Date.now() - changedAt).to.be.at.most(USER_CACHE_MS + 1500);
    });

    it('rate-limits failed logins per user and audits each attempt', async () => {
      // Unknown users fail the same way as wrong passwords (no user enumeration).
      const unknown = await post('/api/auth/token', { username: 'nobody', password: 'whatever-password' });
      expect(unknown.status).to.equal(401);
      expect(((await unknown.json()) as { error: { message: string } }).error.message).to.equal('invalid username or password');
      for (let i = 0; i < 3; i++) {
        expect((await post('/api/auth/token', { username: 'rad1', password: 'wrong-password' })).status).to.equal(401);
      }
      const blocked = await post('/api/auth/token', { username: 'rad1', password: 'radiologist-pass' });
      expect(blocked.status).to.equal(429);
      expect(Number(blocked.headers.get('retry-after'))).to.be.greaterThan(0);
      const failures = (await auditRows(node, 'auth.login')).filter((r) => r.actor === 'rad1' && r.outcome === 'failure');
      expect(failures.map((r) => r.status)).to.deep.equal([401, 401, 401, 429]);
      // Another user from the same address still gets in: the address allowance is larger.
      expect((await post('/api/auth/token', { username: 'root', password: 'first-admin-password' })).status).to.equal(200);
    });

    it('answers CORS preflight for a configured origin only', async () => {
      const ok = await fetch(`${url}/api/auth/me`, {
        method: 'OPTIONS',
        headers: {
          origin: 'http://viewer.example',
          'access-control-request-method': 'GET',
          'access-control-request-headers': 'authorization',
        },
      });
      expect(ok.headers.get('access-control-allow-origin')).to.equal('http://viewer.example');
      const other = await fetch(`${url}/api/auth/me`, {
        method: 'OPTIONS',
        headers: { origin: 'http://evil.example', 'access-control-request-method': 'GET' },
      });
      expect(other.headers.get('access-control-allow-origin')).to.equal(null);
    });

    it('writes one audit row per DICOM association, with counts', async () => {
      const files = await writeSeries(path.join(node.dir, 'assoc'), makeCtSeries({ slices: 4 }));
      const r = await storescu(node.dicomPort, files);
      expect(r.code, r.output).to.equal(0);
      // The row is written when the association closes.
      let rows: AuditRowDb[] = [];
      for (let i = 0; i < 50 && rows.length === 0; i++) {
        rows = (await auditRows(node, 'dimse.association')).filter((row) => row.details?.includes('"stored":4'));
        if (rows.length === 0) await new Promise((res) => setTimeout(res, 100));
      }
      expect(rows).to.have.length(1);
      expect(rows[0]).to.include({ actor_type: 'ae', actor: 'TESTSCU', outcome: 'success' });
      expect(rows[0]!.study_instance_uid).to.match(/^[0-9.]+$/);
    });
  });
}

onBothDatabases(describeAuth, 'radiant_http');

describe('security configuration', function () {
  this.timeout(30_000);

  it('refuses to start online with a missing or short SECRET_KEY', () => {
    const base = { MODE: 'online', DATABASE_URL: 'postgres://x@127.0.0.1/x', S3_BUCKET: 'bucket' };
    expect(() => loadConfig(base)).to.throw(ConfigError, /SECRET_KEY/);
    expect(() => loadConfig({ ...base, SECRET_KEY: 'short' })).to.throw(ConfigError, /SECRET_KEY/);
    expect(loadConfig({ ...base, SECRET_KEY: 'k'.repeat(40) }).auth.secretKey).to.equal('k'.repeat(40));
  });

  it('gives each offline install its own signing key, kept across restarts', async () => {
    const a = await startTestNode();
    const b = await startTestNode();
    try {
      const ka = resolveSecretKey(a.config);
      expect(ka).to.have.length.greaterThan(40);
      expect(resolveSecretKey(a.config)).to.equal(ka);
      expect(resolveSecretKey(b.config)).to.not.equal(ka);
    } finally {
      await a.cleanup();
      await b.cleanup();
    }
  });

  it('AUTH_DISABLED=true lets requests through as admin', async () => {
    const node = await startTestNode({ AUTH_DISABLED: 'true' });
    try {
      const res = await fetch(`${baseUrl(node)}/api/audit`);
      expect(res.status).to.equal(200);
    } finally {
      await node.cleanup();
    }
  });
});
