import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import { resolveSecretKey } from '../src/auth/secret.js';
import { issueToken } from '../src/auth/tokens.js';
import { baseUrl, bearer, tokenFor } from './helpers/http.js';
import { startTestNode, type TestNode } from './helpers/node.js';
import { startPostgres, type TestPostgres } from './helpers/postgres.js';

/**
 * What one hostile or broken peer can do to the HTTP face (issue 13): forged long-lived tokens,
 * a database outage read as "unauthenticated".
 */

describe('HTTP hardening: tokens', function () {
  this.timeout(60_000);
  let node: TestNode;
  let url: string;

  before(async () => {
    node = await startTestNode({ TOKEN_EXPIRY_SECONDS: '3600' });
    url = baseUrl(node);
  });
  after(async () => {
    await node?.cleanup();
  });

  it('refuses validly signed tokens without exp, without iat, or living longer than TOKEN_EXPIRY_SECONDS', async () => {
    const admin = await tokenFor(node, 'admin');
    const me = (await (await fetch(`${url}/api/auth/me`, { headers: bearer(admin) })).json()) as { id: number; username: string };
    const secret = resolveSecretKey(node.config);
    const sign = (claims: Record<string, unknown>, opts: jwt.SignOptions) =>
      jwt.sign({ username: me.username, role: 'admin', ...claims }, secret, {
        algorithm: 'HS256',
        subject: String(me.id),
        issuer: 'radiant-ai',
        ...opts,
      });
    const now = Math.floor(Date.now() / 1000);
    const cases: Record<string, string> = {
      'no exp': sign({}, {}),
      'no iat': sign({}, { noTimestamp: true, expiresIn: 600 }),
      'far-future exp': sign({}, { expiresIn: 10 * 365 * 24 * 3600 }),
      'lifetime just over the limit': sign({ iat: now - 10 }, { expiresIn: 3600 + 120 }),
      'issued in the future': sign({ iat: now + 3600 }, { expiresIn: 600 }),
    };
    for (const [what, token] of Object.entries(cases)) {
      const res = await fetch(`${url}/api/auth/me`, { headers: bearer(token) });
      expect(res.status, what).to.equal(401);
    }
    // The node's own tokens (TOKEN_EXPIRY_SECONDS) and a shorter one still work.
    expect((await fetch(`${url}/api/auth/me`, { headers: bearer(admin) })).status).to.equal(200);
    const short = issueToken(secret, { userId: me.id, username: me.username, role: 'admin' }, 60);
    expect((await fetch(`${url}/api/auth/me`, { headers: bearer(short) })).status).to.equal(200);
  });
});

describe('HTTP hardening: database outage (PostgreSQL)', function () {
  this.timeout(120_000);
  let pg: TestPostgres;
  let node: TestNode;
  let url: string;

  before(async () => {
    pg = await startPostgres();
    node = await startTestNode({ DATABASE_URL: await pg.createDatabase('radiant_outage') });
    url = baseUrl(node);
  });
  after(async () => {
    await node?.cleanup();
    await pg?.stop();
  });

  it('answers 503 with Retry-After and no database address while PostgreSQL is down, and recovers', async () => {
    const admin = await tokenFor(node, 'admin');
    expect((await fetch(`${url}/api/auth/me`, { headers: bearer(admin) })).status).to.equal(200);
    const dbPort = new URL(pg.url()).port;

    await pg.halt();
    for (const path of ['/api/auth/me', '/api/studies', '/dicom-web/studies', '/api/audit']) {
      const res = await fetch(`${url}${path}`, { headers: bearer(admin) });
      const text = await res.text();
      expect(res.status, `${path}: ${text}`).to.equal(503);
      expect(Number(res.headers.get('retry-after')), path).to.be.greaterThan(0);
      expect(text, path).to.not.match(/ECONNREFUSED|127\.0\.0\.1|connect /);
      expect(text, path).to.not.include(dbPort);
      expect((JSON.parse(text) as { error: { code: string } }).error.code).to.equal('service_unavailable');
    }
    const ready = await fetch(`${url}/readyz`);
    const readyText = await ready.text();
    expect(ready.status).to.equal(503);
    expect(readyText).to.not.match(/ECONNREFUSED|127\.0\.0\.1/);

    await pg.restart();
    let status = 0;
    for (let i = 0; i < 20 && status !== 200; i++) {
      status = (await fetch(`${url}/api/auth/me`, { headers: bearer(admin) })).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 250));
    }
    expect(status).to.equal(200);
    expect((await fetch(`${url}/dicom-web/studies`, { headers: bearer(admin) })).status).to.equal(200);
  });
});
