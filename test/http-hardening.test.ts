import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import { resolveSecretKey } from '../src/auth/secret.js';
import { issueToken } from '../src/auth/tokens.js';
import { baseUrl, bearer, tokenFor } from './helpers/http.js';
import { startTestNode, type TestNode } from './helpers/node.js';
import { freshPostgresUrl, onBothDatabases, startPostgres, type TestPostgres } from './helpers/postgres.js';
import { FirstAdminBootstrap } from '../src/auth/bootstrap.js';
import { createUser } from '../src/auth/users.js';
import { createLogger } from '../src/logger.js';
import { Writable } from 'node:stream';
import http from 'node:http';
import net from 'node:net';
import { FailureLimiter } from '../src/auth/rate-limit.js';
import { makeCtSeries } from '../fixtures/generate.js';
import { ingestFiles } from './helpers/api.js';
import { BOUNDARY, closing, stowContentType } from './helpers/stow.js';

/**
 * What one hostile or broken peer can do to the HTTP face (issue 13): forged long-lived tokens,
 * a database outage read as "unauthenticated", a raced first-admin bootstrap.
 */

interface AuditRowDb {
  actor: string | null;
  action: string;
  outcome: string;
  status: number | null;
  details: string | null;
  patient_id: string | null;
  study_instance_uid: string | null;
}

async function auditRows(node: TestNode, action: string): Promise<AuditRowDb[]> {
  await node.audit.flush();
  return (await node.db('audit_logs').where({ action }).orderBy('id')) as AuditRowDb[];
}

function register(node: TestNode, body: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${baseUrl(node)}/api/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

interface LoginAnswer {
  status: number;
  retryAfter?: string;
}

/** POST a login form from a chosen loopback address (127.0.0.2, …): a second client machine. */
function loginFrom(node: TestNode, localAddress: string, username: string, password: string): Promise<LoginAnswer> {
  const body = new URLSearchParams({ username, password }).toString();
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: node.httpPort,
        localAddress,
        method: 'POST',
        path: '/api/auth/token',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, retryAfter: res.headers['retry-after'] as string | undefined }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('HTTP hardening: login lockout', function () {
  this.timeout(60_000);
  let node: TestNode;
  before(async () => {
    node = await startTestNode({ LOGIN_MAX_ATTEMPTS: '3' });
    await createUser(node.db, { username: 'alice', password: 'alice-password-1', role: 'radiologist' });
    await createUser(node.db, { username: 'bob', password: 'bob-password-123', role: 'viewer' });
  });
  after(async () => {
    await node?.cleanup();
  });

  it('locks (user, address) out, not the user: the owner still logs in from another address; lockouts are audited', async () => {
    for (let i = 0; i < 3; i++) expect((await loginFrom(node, '127.0.0.2', 'alice', 'wrong-password')).status).to.equal(401);
    const locked = await loginFrom(node, '127.0.0.2', 'alice', 'alice-password-1');
    expect(locked.status).to.equal(429);
    expect(Number(locked.retryAfter)).to.be.greaterThan(0);
    expect((await loginFrom(node, '127.0.0.3', 'alice', 'alice-password-1')).status).to.equal(200);
    const lockouts = await auditRows(node, 'auth.lockout');
    expect(lockouts).to.have.length(1);
    expect(lockouts[0]).to.include({ actor: 'alice', outcome: 'failure' });
    expect((lockouts[0] as unknown as { peer: string }).peer).to.match(/127\.0\.0\.2$/);
    expect(JSON.parse(lockouts[0]!.details!)).to.deep.include({ scope: 'user+address' });
  });

  it('locks out one address spraying many usernames (4x the per-user allowance)', async () => {
    for (let i = 0; i < 12; i++) expect((await loginFrom(node, '127.0.0.4', `user${i}`, 'guess-password')).status).to.equal(401);
    expect((await loginFrom(node, '127.0.0.4', 'bob', 'bob-password-123')).status).to.equal(429);
    expect((await loginFrom(node, '127.0.0.5', 'bob', 'bob-password-123')).status).to.equal(200);
    const scopes = (await auditRows(node, 'auth.lockout')).map((r) => (JSON.parse(r.details!) as { scope: string }).scope);
    expect(scopes).to.include('address');
  });

  it('backs off: each lockout of a key lasts twice as long as the one before, until a success', () => {
    const limiter = new FailureLimiter(2, 1000);
    let t = 0;
    const lockFor = () => {
      limiter.fail('k', 1, t);
      return limiter.fail('k', 1, t);
    };
    expect(lockFor()).to.equal(1);
    expect(limiter.retryAfter('k', t)).to.equal(1);
    t += 1000;
    expect(limiter.retryAfter('k', t)).to.equal(0);
    expect(lockFor()).to.equal(2);
    t += 2000;
    expect(lockFor()).to.equal(4);
    limiter.reset('k');
    t += 4000;
    expect(lockFor()).to.equal(1);
  });
});

onBothDatabases((name, envFactory) => {
  describe(`HTTP hardening: first-admin bootstrap race (${name})`, function () {
    this.timeout(60_000);
    let node: TestNode;
    before(async () => {
      node = await startTestNode(await envFactory());
    });
    after(async () => {
      await node?.cleanup();
    });

    it('20 concurrent registrations on an empty node make exactly one admin; the others are refused and audited', async () => {
      const n = 20;
      const answers = await Promise.all(
        Array.from({ length: n }, (_, i) => register(node, { username: `boot${i}`, password: 'bootstrap-password-1', role: 'admin' })),
      );
      const statuses = answers.map((r) => r.status);
      expect(
        statuses.filter((s) => s === 201),
        JSON.stringify(statuses),
      ).to.have.length(1);
      expect(statuses.filter((s) => s === 409 || s === 403)).to.have.length(n - 1);
      const admins = (await node.db('users').where({ role: 'admin' })) as Array<{ username: string }>;
      expect(admins).to.have.length(1);
      expect((await auditRows(node, 'user.bootstrap')).length).to.equal(1);
      const refused = await auditRows(node, 'user.register');
      expect(refused).to.have.length(n - 1);
      expect(refused.every((r) => r.outcome === 'failure' && (r.status === 409 || r.status === 403))).to.equal(true);
      // After the bootstrap an anonymous registration is 401, and audited too.
      expect((await register(node, { username: 'late', password: 'bootstrap-password-1', role: 'admin' })).status).to.equal(401);
      const last = (await auditRows(node, 'user.register')).at(-1)!;
      expect(last).to.include({ actor: 'late', status: 401, outcome: 'failure' });
    });
  });
}, 'radiant_boot');

describe('HTTP hardening: first-admin bootstrap in online mode', function () {
  this.timeout(60_000);
  const token = 'bootstrap-token-for-the-online-test';
  let node: TestNode;
  before(async () => {
    node = await startTestNode({
      MODE: 'online',
      DATABASE_URL: await freshPostgresUrl('radiant_online'),
      STORAGE_TYPE: 'local',
      SECRET_KEY: 's'.repeat(40),
      AUTH_BOOTSTRAP_TOKEN: token,
    });
  });
  after(async () => {
    await node?.cleanup();
  });

  it('refuses network bootstrap without the bootstrap token, and takes it with the token', async () => {
    const body = { username: 'first', password: 'bootstrap-password-1', role: 'admin' };
    expect((await register(node, body)).status).to.equal(403);
    expect((await register(node, body, { 'x-bootstrap-token': 'wrong-token-wrong-token-wrong' })).status).to.equal(403);
    expect((await node.db('users').count({ n: '*' }))[0]).to.satisfy((r: { n: string | number }) => Number(r.n) === 0);
    const refused = await auditRows(node, 'user.register');
    expect(refused.map((r) => r.status)).to.deep.equal([403, 403]);
    expect((await register(node, body, { 'x-bootstrap-token': token })).status).to.equal(201);
    // The token is one-time: the bootstrap is done.
    expect((await register(node, { ...body, username: 'second' }, { 'x-bootstrap-token': token })).status).to.equal(401);
  });

  it('logs a generated token once, only while the node has no users', async () => {
    const lines: string[] = [];
    const log = createLogger('info', { destination: new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }) });
    const empty = await startTestNode({ AUTH_BOOTSTRAP: 'token' });
    try {
      const b = new FirstAdminBootstrap('token');
      await b.announce(empty.db, log);
      expect(lines).to.have.length(1);
      const logged = (JSON.parse(lines[0]!) as { bootstrapToken: string }).bootstrapToken;
      expect(logged).to.have.length.greaterThan(20);
      expect(b.refusal(logged)).to.equal(undefined);
      expect(b.refusal(undefined)).to.be.a('string');
      expect(b.refusal(`${logged}x`)).to.be.a('string');
      // The node's own generated token is not ours: registration without it is refused.
      expect((await register(empty, { username: 'first', password: 'bootstrap-password-1', role: 'admin' })).status).to.equal(403);
      await createUser(empty.db, { username: 'cli-admin', password: 'bootstrap-password-1', role: 'admin' });
      await b.announce(empty.db, log);
      expect(lines).to.have.length(1);
    } finally {
      await empty.cleanup();
    }
  });
});

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

/** A raw TCP connection to the node's HTTP port, recording what comes back and when it closes. */
interface RawSocket {
  socket: net.Socket;
  received: () => string;
  closed: Promise<number>;
}

function rawConnect(node: TestNode): Promise<RawSocket> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let data = '';
    const socket = net.connect({ host: '127.0.0.1', port: node.httpPort });
    socket.on('data', (d: Buffer) => (data += d.toString('latin1')));
    const closed = new Promise<number>((r) => socket.once('close', () => r(Date.now() - started)));
    socket.once('error', () => undefined);
    socket.once('connect', () => resolve({ socket, received: () => data, closed }));
    socket.once('error', reject);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('HTTP hardening: slow and numerous connections', function () {
  this.timeout(60_000);
  let node: TestNode;
  before(async () => {
    node = await startTestNode({ HTTP_HEADERS_TIMEOUT_MS: '1000', HTTP_MAX_CONNECTIONS: '1100' });
  });
  after(async () => {
    await node?.cleanup();
  });

  it('cuts off a client sending its headers byte by byte after HTTP_HEADERS_TIMEOUT_MS', async () => {
    const slow = await rawConnect(node);
    const request = 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: ' + 'a'.repeat(200);
    let i = 0;
    const timer = setInterval(() => {
      if (!slow.socket.destroyed && i < request.length) slow.socket.write(request[i++]!);
    }, 50);
    try {
      const after = await Promise.race([slow.closed, sleep(8000).then(() => -1)]);
      expect(after, 'still open after 8 s').to.be.greaterThan(0);
      expect(after).to.be.lessThan(5000);
      expect(slow.received()).to.match(/^HTTP\/1\.1 408|^$/);
    } finally {
      clearInterval(timer);
      slow.socket.destroy();
    }
    // Everyone else was served meanwhile and still is.
    expect((await fetch(`${baseUrl(node)}/healthz`)).status).to.equal(200);
  });

  it('answers /healthz with 1,000 idle sockets open', async () => {
    const idle = await Promise.all(Array.from({ length: 1000 }, () => rawConnect(node)));
    try {
      const t0 = Date.now();
      const res = await fetch(`${baseUrl(node)}/healthz`);
      expect(res.status).to.equal(200);
      expect(Date.now() - t0).to.be.lessThan(2000);
      // Idle sockets that never send a request are closed by the headers timeout too.
      const closed = await Promise.race([Promise.all(idle.map((s) => s.closed)), sleep(10_000).then(() => undefined)]);
      expect(closed, 'idle sockets still open after 10 s').to.be.an('array');
    } finally {
      idle.forEach((s) => s.socket.destroy());
    }
  });
});

describe('HTTP hardening: connection cap', function () {
  this.timeout(60_000);
  let node: TestNode;
  before(async () => {
    node = await startTestNode({ HTTP_MAX_CONNECTIONS: '20' });
  });
  after(async () => {
    await node?.cleanup();
  });

  it('closes connections past HTTP_MAX_CONNECTIONS on arrival while the open ones are served', async () => {
    const open = await Promise.all(Array.from({ length: 20 }, () => rawConnect(node)));
    try {
      await sleep(300);
      const extra = await rawConnect(node);
      const closedAfter = await Promise.race([extra.closed, sleep(3000).then(() => -1)]);
      // -1: still open after 3 s (0 is fine: closed at once).
      expect(closedAfter, 'connection past the cap left open').to.be.at.least(0);
      expect(extra.received()).to.equal('');
      // An open connection still gets its answer.
      const served = open[0]!;
      served.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      for (let i = 0; i < 50 && !served.received().includes('"ok"'); i++) await sleep(50);
      expect(served.received()).to.match(/^HTTP\/1\.1 200/);
    } finally {
      open.forEach((s) => s.socket.destroy());
    }
    // Once they are gone, new connections are served again.
    await sleep(200);
    expect((await fetch(`${baseUrl(node)}/healthz`)).status).to.equal(200);
  });
});

describe('HTTP hardening: the audit trail names patients, studies and query keys', function () {
  this.timeout(60_000);
  let node: TestNode;
  let url: string;
  let admin: string;
  let reader: string;
  const study = makeCtSeries({ slices: 2, size: 16, seed: 'audit-a', patient: { id: 'PID-AUDIT-1', name: 'Doe^Jane' } });
  const other = makeCtSeries({ slices: 1, size: 16, seed: 'audit-b', patient: { id: 'PID-AUDIT-2', name: 'Roe^Rick' } });
  const studyUid = study[0]!.studyInstanceUid;

  interface AuditItem {
    id: number;
    action: string;
    outcome: string;
    status?: number;
    patientId?: string;
    studyInstanceUid?: string;
    details: Record<string, unknown> | null;
  }
  const auditApi = async (query: string): Promise<AuditItem[]> => {
    const res = await fetch(`${url}/api/audit?${query}`, { headers: bearer(admin) });
    expect(res.status).to.equal(200);
    return ((await res.json()) as { items: AuditItem[] }).items;
  };

  before(async () => {
    node = await startTestNode();
    url = baseUrl(node);
    await ingestFiles(node, [...study, ...other]);
    admin = await tokenFor(node, 'admin');
    reader = await tokenFor(node, 'radiologist');
  });
  after(async () => {
    await node?.cleanup();
  });

  it('QIDO-RS rows hold the query keys (names masked), the studies and the patient IDs returned', async () => {
    const res = await fetch(`${url}/dicom-web/studies?PatientName=Doe*&PatientID=PID-AUDIT-1&limit=5`, { headers: bearer(reader) });
    expect(res.status).to.equal(200);
    expect(await res.json()).to.have.length(1);
    const [row] = await auditApi('action=dicomweb.qido&limit=1');
    expect(row!.patientId).to.equal('PID-AUDIT-1');
    expect(row!.studyInstanceUid).to.equal(studyUid);
    expect(row!.details).to.deep.include({
      query: { PatientName: '(masked)', PatientID: 'PID-AUDIT-1' },
      studies: [studyUid],
      patients: ['PID-AUDIT-1'],
    });
    expect(JSON.stringify(row)).to.not.include('Doe');

    // A series search over both patients lists both (series rows carry no PatientID).
    expect((await fetch(`${url}/dicom-web/series?Modality=CT`, { headers: bearer(reader) })).status).to.equal(200);
    const [series] = await auditApi('action=dicomweb.qido&limit=1');
    expect(series!.details).to.deep.include({ query: { Modality: 'CT' }, studyCount: 2, patientCount: 2 });
    expect((series!.details!.patients as string[]).sort()).to.deep.equal(['PID-AUDIT-1', 'PID-AUDIT-2']);
  });

  it('WADO-RS, metadata and /api/studies rows carry the Patient ID', async () => {
    const wado = await fetch(`${url}/dicom-web/studies/${studyUid}`, { headers: bearer(reader) });
    expect(wado.status).to.equal(200);
    await wado.arrayBuffer();
    const meta = await fetch(`${url}/dicom-web/studies/${studyUid}/metadata`, { headers: bearer(reader) });
    expect(meta.status).to.equal(200);
    await meta.arrayBuffer();
    const list = await fetch(`${url}/api/studies?patient_id=PID-AUDIT-2`, { headers: bearer(reader) });
    expect(list.status).to.equal(200);
    const [retrieve] = await auditApi('action=dicomweb.retrieve&limit=1');
    expect(retrieve).to.include({ patientId: 'PID-AUDIT-1', studyInstanceUid: studyUid, outcome: 'success', status: 200 });
    const [metadata] = await auditApi('action=dicomweb.metadata&limit=1');
    expect(metadata).to.include({ patientId: 'PID-AUDIT-1' });
    const [studies] = await auditApi('action=study.list&limit=1');
    expect(studies).to.include({ patientId: 'PID-AUDIT-2' });
    expect(studies!.details).to.deep.include({ studies: [other[0]!.studyInstanceUid] });
    // The trail can be searched by patient.
    const byPatient = await auditApi('patient_id=PID-AUDIT-1');
    expect(byPatient.map((r) => r.action)).to.include.members(['dicomweb.qido', 'dicomweb.retrieve', 'dicomweb.metadata']);
  });

  it('writes a started row for a STOW-RS request before its body has arrived, completed when it ends', async () => {
    const file = makeCtSeries({ slices: 1, size: 16, seed: 'audit-stow', patient: { id: 'PID-AUDIT-3' } })[0]!;
    const head = Buffer.from(`--${BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n`, 'latin1');
    const req = http.request({
      host: '127.0.0.1',
      port: node.httpPort,
      method: 'POST',
      path: '/dicom-web/studies',
      headers: { ...bearer(reader), 'content-type': stowContentType(), accept: 'application/dicom+json' },
    });
    const answered = new Promise<number>((resolve, reject) => {
      req.on('response', (res) => (res.resume(), res.on('end', () => resolve(res.statusCode!))));
      req.on('error', reject);
    });
    req.write(head);
    req.write(file.bytes.subarray(0, 512));
    // The request hangs here, mid-body: its row must already be there.
    let started: AuditItem | undefined;
    for (let i = 0; i < 50 && !started; i++) {
      started = (await auditApi('action=dicomweb.stow&limit=5')).find((r) => r.outcome === 'started');
      if (!started) await sleep(100);
    }
    expect(started, 'no started row while the STOW-RS body is in flight').to.not.equal(undefined);
    expect(started!.details).to.deep.include({ method: 'POST', route: '/dicom-web/studies' });
    req.write(file.bytes.subarray(512));
    req.end(closing());
    expect(await answered).to.equal(200);
    const rows = await auditApi('action=dicomweb.stow&limit=5');
    const done = rows.find((r) => r.id === started!.id)!;
    expect(done).to.include({ outcome: 'success', status: 200, studyInstanceUid: file.studyInstanceUid, patientId: 'PID-AUDIT-3' });
    expect(rows.filter((r) => r.outcome === 'started')).to.have.length(0);
  });
});
