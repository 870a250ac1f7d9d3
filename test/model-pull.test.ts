/**
 * `radiant model pull` against a local stand-in for the Hugging Face hub (HF_ENDPOINT): the real
 * CLI and node-llama-cpp downloader, the hub's resolve URL answering 302 with X-Linked-Etag (the
 * Git LFS sha256) and a CDN path serving the bytes. A matching hash keeps the file; a mismatching
 * one deletes it and exits 1; a hub that gives no hash is refused.
 */
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';

const execFileP = promisify(execFile);
const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli.js');

interface Hub {
  url: string;
  /** What the hub claims as the LFS sha256 per file name; undefined: no X-Linked-Etag. */
  claims: Map<string, string | undefined>;
  heads: string[];
  close(): Promise<void>;
}

async function standInHub(files: Map<string, Buffer>): Promise<Hub> {
  const claims = new Map<string, string | undefined>();
  const heads: string[] = [];
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://hub');
    const resolve = /^\/([^/]+)\/([^/]+)\/resolve\/main\/(.+)$/.exec(u.pathname);
    if (resolve) {
      const name = decodeURIComponent(resolve[3]!);
      if (req.method === 'HEAD') heads.push(name);
      if (!files.has(name)) return res.writeHead(404).end();
      const headers: Record<string, string> = {
        location: `/cdn/${encodeURIComponent(name)}`,
        'x-linked-size': String(files.get(name)!.length),
      };
      const claim = claims.has(name) ? claims.get(name) : sha(files.get(name)!);
      if (claim) headers['x-linked-etag'] = `"${claim}"`;
      return res.writeHead(302, headers).end();
    }
    const cdn = /^\/cdn\/(.+)$/.exec(u.pathname);
    const body = cdn ? files.get(decodeURIComponent(cdn[1]!)) : undefined;
    if (!body) return res.writeHead(404).end();
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range) {
      const start = Number(range[1]);
      const end = range[2] ? Number(range[2]) : body.length - 1;
      res.writeHead(206, {
        'content-length': String(end - start + 1),
        'content-range': `bytes ${start}-${end}/${body.length}`,
        'accept-ranges': 'bytes',
      });
      return res.end(req.method === 'HEAD' ? undefined : body.subarray(start, end + 1));
    }
    res.writeHead(200, { 'content-length': String(body.length), 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    claims,
    heads,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('radiant model pull verifies the SHA-256 against the hub (stand-in hub)', function () {
  this.timeout(120_000);
  let hub: Hub;
  let dir: string;
  const body = Buffer.concat([Buffer.from('GGUF'), Buffer.alloc(200_000, 7)]);

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'radiant-pull-'));
    hub = await standInHub(
      new Map([
        ['model-good.gguf', body],
        ['model-bad.gguf', body],
        ['model-nohash.gguf', body],
      ]),
    );
    hub.claims.set('model-bad.gguf', sha(Buffer.from('something else')));
    hub.claims.set('model-nohash.gguf', undefined);
  });
  after(async () => {
    await hub?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const pull = async (file: string, out: string) => {
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: dir,
      DATA_DIR: dir,
      HF_ENDPOINT: hub.url,
      XDG_CACHE_HOME: path.join(dir, 'cache'),
    };
    try {
      const r = await execFileP(process.execPath, [CLI, 'model', 'pull', `hf:radiant/test-GGUF/${file}`, '--dir', out, '--timeout', '20'], {
        env,
        timeout: 90_000,
      });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (e) {
      const x = e as { code: number; stdout: string; stderr: string };
      return { code: x.code, stdout: x.stdout, stderr: x.stderr };
    }
  };

  it('keeps a download whose SHA-256 matches the LFS pointer', async () => {
    const out = path.join(dir, 'good');
    const r = await pull('model-good.gguf', out);
    expect(r.code, r.stderr).to.equal(0);
    expect(hub.heads).to.include('model-good.gguf');
    const file = r.stdout.trim();
    expect(path.dirname(file)).to.equal(out);
    expect(path.basename(file)).to.match(/model-good\.gguf$/);
    expect(sha(fs.readFileSync(file))).to.equal(sha(body));
    expect(r.stderr).to.include(`SHA-256 ${sha(body)} matches the hub's LFS pointer`);
  });

  it('deletes a download whose SHA-256 differs and exits 1', async () => {
    const out = path.join(dir, 'bad');
    const r = await pull('model-bad.gguf', out);
    expect(r.code, r.stderr).to.equal(1);
    expect(r.stderr).to.match(/radiant model pull: .*model-bad\.gguf: SHA-256 [0-9a-f]{64} differs from the hub's LFS pointer/);
    expect(r.stderr).to.include('the file was deleted');
    const gguf = (d: string) => (fs.existsSync(d) ? fs.readdirSync(d).filter((f) => f.endsWith('.gguf')) : []);
    expect(gguf(out)).to.deep.equal([]);
    // a damaged copy left from before (skipExisting) is found and deleted too
    fs.mkdirSync(out, { recursive: true });
    const stale = path.join(out, 'hf_radiant_test-GGUF_model-good.gguf');
    fs.writeFileSync(stale, Buffer.concat([body.subarray(0, -1), Buffer.from([0])]));
    const again = await pull('model-good.gguf', out);
    expect(again.code, again.stderr).to.equal(1);
    expect(again.stderr).to.include('differs from the hub');
    expect(fs.existsSync(stale)).to.equal(false);
  });

  it('refuses a file the hub gives no LFS hash for, and an unknown file', async () => {
    let r = await pull('model-nohash.gguf', path.join(dir, 'nohash'));
    expect(r.code, r.stderr).to.equal(1);
    expect(r.stderr).to.match(/no SHA-256 \(Git LFS pointer\)/);
    expect(fs.existsSync(path.join(dir, 'nohash')) ? fs.readdirSync(path.join(dir, 'nohash')) : []).to.deep.equal([]);
    r = await pull('missing.gguf', path.join(dir, 'missing'));
    expect(r.code, r.stderr).to.equal(1);
    expect(r.stderr).to.match(/cannot download hf:radiant\/test-GGUF\/missing\.gguf/);
  });
});
