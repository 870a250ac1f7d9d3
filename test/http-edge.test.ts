import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import fsp from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { createUser } from '../src/auth/users.js';
import { startTestNode, tempDir, type TestNode } from './helpers/node.js';

/**
 * The HTTP edge (issue 21): HTTPS directly with HSTS, request rate limits per user and per address
 * (429 + Retry-After), one body cap on every route (413), slow TLS clients cut off, and the
 * security headers on the API, the UI and the docs (the viewer's are checked in viewer.test.ts).
 */

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** A second client machine: 127.0.0.2, 127.0.0.3, … */
  localAddress?: string;
  ca?: Buffer;
  /** Send the body in chunks with no Content-Length. */
  chunked?: boolean;
}

function request(url: string, opts: RequestOptions = {}): Promise<Answer> {
  const lib = url.startsWith('https:') ? https : http;
  const headers: Record<string, string | number> = { ...opts.headers };
  if (opts.body !== undefined && !opts.chunked) headers['content-length'] = Buffer.byteLength(opts.body);
  return new Promise((resolve, reject) => {
    const req = lib.request(url, { method: opts.method ?? 'GET', headers, localAddress: opts.localAddress, ca: opts.ca }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (opts.body !== undefined && opts.chunked) {
      const buf = Buffer.from(opts.body);
      for (let i = 0; i < buf.length; i += 64 * 1024) req.write(buf.subarray(i, i + 64 * 1024));
      req.end();
    } else req.end(opts.body);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function login(url: string, username: string, password: string, localAddress: string): Promise<string> {
  const res = await request(`${url}/api/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username, password }).toString(),
    localAddress,
  });
  expect(res.status, res.body).to.equal(200);
  return (JSON.parse(res.body) as { access_token: string }).access_token;
}

describe('HTTP edge: HTTPS directly (HTTP_TLS_CERT / HTTP_TLS_KEY)', function () {
  this.timeout(60_000);
  let node: TestNode;
  let certDir: string;
  let ca: Buffer;
  let url: string;

  before(async () => {
    certDir = await tempDir('tls');
    const cert = path.join(certDir, 'cert.pem');
    const key = path.join(certDir, 'key.pem');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert,
    ], { stdio: 'ignore' }); // biome-ignore format: one openssl command line
    ca = await fsp.readFile(cert);
    node = await startTestNode({ HTTP_TLS_CERT: cert, HTTP_TLS_KEY: key, HTTP_HEADERS_TIMEOUT_MS: '1000', AUTH_DISABLED: 'true' });
    url = `https://127.0.0.1:${node.httpPort}`;
  });
  after(async () => {
    await node?.cleanup();
    if (certDir) await fsp.rm(certDir, { recursive: true, force: true });
  });

  it('serves HTTPS with Strict-Transport-Security, writes https:// links, and speaks no plain HTTP', async () => {
    const res = await request(`${url}/healthz`, { ca });
    expect(res.status).to.equal(200);
    expect(res.headers['strict-transport-security']).to.equal('max-age=31536000');
    const cfg = await request(`${url}/viewer/app-config.js`, { ca });
    expect(cfg.body).to.include(`"qidoRoot": "${url}/dicom-web"`);
    const plain = await request(`http://127.0.0.1:${node.httpPort}/healthz`).then(
      (r) => r.status,
      () => 'refused',
    );
    expect(plain).to.not.equal(200);
  });

  it('closes a connection that never starts its TLS handshake, and one sending its headers byte by byte', async () => {
    const started = Date.now();
    const silent = net.connect({ host: '127.0.0.1', port: node.httpPort });
    silent.on('error', () => undefined);
    const silentClosed = new Promise<number>((r) => silent.once('close', () => r(Date.now() - started)));

    const slow = tls.connect({ host: '127.0.0.1', port: node.httpPort, ca, servername: undefined });
    slow.on('error', () => undefined);
    await new Promise<void>((r) => slow.once('secureConnect', () => r()));
    const slowStarted = Date.now();
    const slowClosed = new Promise<number>((r) => slow.once('close', () => r(Date.now() - slowStarted)));
    const text = `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: ${'a'.repeat(200)}`;
    let i = 0;
    const timer = setInterval(() => {
      if (!slow.destroyed && i < text.length) slow.write(text[i++]!);
    }, 50);
    try {
      const [a, b] = await Promise.all([silentClosed, slowClosed].map((p) => Promise.race([p, sleep(10_000).then(() => -1)])));
      expect(a, 'the silent socket is still open after 10 s').to.be.greaterThan(0).and.lessThan(6000);
      expect(b, 'the slow TLS client is still open after 10 s').to.be.greaterThan(0).and.lessThan(6000);
    } finally {
      clearInterval(timer);
      silent.destroy();
      slow.destroy();
    }
    expect((await request(`${url}/healthz`, { ca })).status).to.equal(200);
  });
});

describe('HTTP edge: HSTS behind a TLS-terminating proxy (HTTP_TRUST_PROXY)', function () {
  this.timeout(60_000);
  let trusting: TestNode;
  let direct: TestNode;
  before(async () => {
    trusting = await startTestNode({ HTTP_TRUST_PROXY: 'true' });
    direct = await startTestNode({});
  });
  after(async () => {
    await trusting?.cleanup();
    await direct?.cleanup();
  });

  it('sends HSTS when a trusted proxy says https, never over plain HTTP or on an untrusted header', async () => {
    const at = (n: TestNode) => `http://127.0.0.1:${n.httpPort}/healthz`;
    const viaProxy = await request(at(trusting), { headers: { 'x-forwarded-proto': 'https' } });
    expect(viaProxy.headers['strict-transport-security']).to.equal('max-age=31536000');
    const forwarded = await request(at(trusting), { headers: { forwarded: 'proto=https;host=pacs.example.org' } });
    expect(forwarded.headers['strict-transport-security']).to.equal('max-age=31536000');
    expect((await request(at(trusting))).headers['strict-transport-security']).to.equal(undefined);
    const untrusted = await request(at(direct), { headers: { 'x-forwarded-proto': 'https' } });
    expect(untrusted.headers['strict-transport-security']).to.equal(undefined);
  });
});

describe('HTTP edge: request rate limits (token buckets per address and per user)', function () {
  this.timeout(60_000);
  let node: TestNode;
  let url: string;
  before(async () => {
    node = await startTestNode({ RATE_LIMIT_PER_ADDRESS: '6', RATE_LIMIT_PER_USER: '4', RATE_LIMIT_WINDOW_SECONDS: '60' });
    url = `http://127.0.0.1:${node.httpPort}`;
    await createUser(node.db, { username: 'alice', password: 'alice-password-1', role: 'radiologist' });
    await createUser(node.db, { username: 'bob', password: 'bob-password-123', role: 'radiologist' });
  });
  after(async () => {
    await node?.cleanup();
  });

  it('answers 429 with Retry-After once an address has spent its requests, on the API and DICOMweb; others go on', async () => {
    for (let i = 0; i < 6; i++) {
      const path = i % 2 ? '/api/studies' : '/dicom-web/studies';
      expect((await request(`${url}${path}`, { localAddress: '127.0.0.2' })).status).to.equal(401);
    }
    for (const path of ['/api/studies', '/dicom-web/studies', '/wado?requestType=WADO']) {
      const res = await request(`${url}${path}`, { localAddress: '127.0.0.2' });
      expect(res.status, path).to.equal(429);
      // One request comes back every 60 s / 6 = 10 s.
      expect(Number(res.headers['retry-after'])).to.be.within(1, 10);
      expect(JSON.parse(res.body)).to.have.nested.property('error.code', 'too_many_requests');
    }
    expect((await request(`${url}/healthz`, { localAddress: '127.0.0.2' })).status).to.equal(200);
    expect((await request(`${url}/api/studies`, { localAddress: '127.0.0.3' })).status).to.equal(401);
  });

  it("counts a user's requests from every address; another user is not affected; the 429 is audited", async () => {
    const alice = await login(url, 'alice', 'alice-password-1', '127.0.0.10');
    const bob = await login(url, 'bob', 'bob-password-123', '127.0.0.10');
    const as = (token: string, localAddress: string, p = '/api/studies') =>
      request(`${url}${p}`, { headers: { authorization: `Bearer ${token}` }, localAddress });
    for (let i = 0; i < 4; i++)
      expect((await as(alice, `127.0.0.${11 + i}`, i % 2 ? '/dicom-web/studies' : '/api/studies')).status).to.equal(200);
    const limited = await as(alice, '127.0.0.15');
    expect(limited.status).to.equal(429);
    expect(Number(limited.headers['retry-after'])).to.be.within(1, 15);
    expect(JSON.parse(limited.body).error.message).to.match(/user/);
    expect((await as(alice, '127.0.0.16', '/dicom-web/studies')).status).to.equal(429);
    expect((await as(bob, '127.0.0.15')).status).to.equal(200);
    await node.audit.flush();
    const rows = (await node.db('audit_logs').where({ actor: 'alice', status: 429 })) as unknown[];
    expect(rows.length).to.be.at.least(2);
  });
});

describe('HTTP edge: body size limits and security headers', function () {
  this.timeout(60_000);
  let node: TestNode;
  let url: string;
  let token: string;
  before(async () => {
    node = await startTestNode({ MAX_UPLOAD_BYTES: String(4 * 1024 * 1024) });
    url = `http://127.0.0.1:${node.httpPort}`;
    await createUser(node.db, { username: 'carol', password: 'carol-password-1', role: 'admin' });
    token = await login(url, 'carol', 'carol-password-1', '127.0.0.1');
  });
  after(async () => {
    await node?.cleanup();
  });

  it('refuses a declared body above MAX_UPLOAD_BYTES on any route, and a JSON body above 1 MiB as it streams (413)', async () => {
    const big = Buffer.alloc(5 * 1024 * 1024, 0x61);
    for (const [method, p] of [
      ['POST', '/api/auth/token'],
      ['GET', '/healthz'],
      ['POST', '/api/patients'],
    ] as const) {
      const res = await request(`${url}${p}`, { method, body: big, headers: { 'content-type': 'application/json' } }).catch(
        (err: Error) => ({ status: 0, headers: {}, body: err.message }),
      );
      expect(res.status, `${method} ${p}: ${res.body}`).to.equal(413);
    }
    const json = JSON.stringify({ patientId: 'P1', patientName: 'x'.repeat(2 * 1024 * 1024) });
    const streamed = await request(`${url}/api/patients`, {
      method: 'POST',
      body: json,
      chunked: true,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    }).catch((err: Error) => ({ status: 0, headers: {}, body: err.message }));
    expect(streamed.status, streamed.body).to.equal(413);
    expect((await request(`${url}/healthz`)).status).to.equal(200);
  });

  it('sets nosniff, no-referrer, no framing and a same-origin CSP on the API, the UI and the docs; no HSTS over plain HTTP', async () => {
    const answers = {
      api: await request(`${url}/api/studies`),
      authorised: await request(`${url}/api/studies`, { headers: { authorization: `Bearer ${token}` } }),
      dicomweb: await request(`${url}/dicom-web/studies`, { headers: { authorization: `Bearer ${token}` } }),
      ui: await request(`${url}/`),
      docs: await request(`${url}/docs`),
    };
    for (const [name, res] of Object.entries(answers)) {
      expect(res.headers['x-content-type-options'], name).to.equal('nosniff');
      expect(res.headers['referrer-policy'], name).to.equal('no-referrer');
      expect(res.headers['x-frame-options'], name).to.equal('DENY');
      const csp = String(res.headers['content-security-policy']);
      expect(csp, name).to.include("default-src 'self'").and.include("frame-ancestors 'none'").and.include("object-src 'none'");
      expect(csp, name).to.match(/script-src 'self'(;|$)/);
      expect(csp, name).to.not.include('unsafe-eval');
      expect(res.headers['strict-transport-security'], name).to.equal(undefined);
    }
    expect(String(answers.ui.headers['content-security-policy'])).to.match(/style-src 'self'(;|$)/);
  });
});
