import { expect } from 'chai';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { loadConfig } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import { createStorage } from '../storage/index.js';
import { type RunningAzurite, startAzurite } from './helpers/azurite.js';
import { type RunningS3rver, startS3rver } from './helpers/s3rver.js';
import { readAll } from './helpers/storage-contract.js';

/**
 * Encryption at rest on object storage: S3_SSE / S3_SSE_KMS_KEY_ID and AZURE_ENCRYPTION_SCOPE are
 * named on every put. s3rver and Azurite accept the headers without encrypting anything, so the
 * requests are read on the wire: a recording proxy between the node's client and the server.
 */

interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

/** A pass-through HTTP proxy to `target` that records every request's method, path and headers. */
async function recordingProxy(target: string): Promise<{ url: string; seen: SeenRequest[]; close(): Promise<void> }> {
  const to = new URL(target);
  const seen: SeenRequest[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    // Host kept as the client sent it: SigV4 and SharedKey signatures cover it.
    const up = http.request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * The requests that create objects: PutObject and CreateMultipartUpload (S3 takes the encryption
 * there; UploadPart and CompleteMultipartUpload, which name an uploadId, carry none by the API).
 */
function writes(seen: SeenRequest[], bucket: string): SeenRequest[] {
  return seen.filter((r) => r.url.startsWith(`/${bucket}/`) && (r.method === 'PUT' || r.method === 'POST') && !/uploadId=/.test(r.url));
}

describe('encryption at rest: S3 server-side encryption', function () {
  let s3: RunningS3rver;
  let proxy: Awaited<ReturnType<typeof recordingProxy>>;
  before(async function () {
    s3 = await startS3rver();
    proxy = await recordingProxy(s3.endpoint);
  });
  after(async function () {
    await proxy?.close();
    await s3?.stop();
  });

  const env = (extra: Record<string, string>) => ({
    STORAGE_TYPE: 's3',
    S3_BUCKET: 'radiant-sse',
    S3_ENDPOINT: proxy.url,
    S3_ACCESS_KEY: s3.accessKeyId,
    S3_SECRET_KEY: s3.secretAccessKey,
    ...extra,
  });

  it('S3_SSE=aws:kms with S3_SSE_KMS_KEY_ID sends both on a single put and on a multipart upload', async function () {
    const config = loadConfig(env({ S3_SSE: 'aws:kms', S3_SSE_KMS_KEY_ID: 'alias/radiant-test' }), '/tmp');
    const storage = await createStorage({ ...config.storage, createBucket: true } as typeof config.storage);
    await storage.check();
    proxy.seen.length = 0;
    await storage.put('small/k', Readable.from([Buffer.from('small object')]));
    const big = randomBytes(9 * 1024 * 1024); // over the 8 MiB part size: a multipart upload
    await storage.put('big/k', Readable.from([big]));
    const w = writes(proxy.seen, 'radiant-sse');
    expect(w.map((r) => `${r.method} ${r.url.split('?')[0]}`)).to.include.members(['PUT /radiant-sse/small/k', 'POST /radiant-sse/big/k']);
    for (const r of w) {
      expect(r.headers['x-amz-server-side-encryption'], r.url).to.equal('aws:kms');
      expect(r.headers['x-amz-server-side-encryption-aws-kms-key-id'], r.url).to.equal('alias/radiant-test');
    }
    // The object itself is intact through the proxy.
    expect(Buffer.compare(await readAll(await storage.get('big/k')), big)).to.equal(0);
    await storage.close?.();
  });

  it('S3_SSE=AES256 sends AES256 and no KMS key; without S3_SSE no encryption header is sent', async function () {
    const aes = await createStorage(loadConfig(env({ S3_SSE: 'AES256' }), '/tmp').storage);
    proxy.seen.length = 0;
    await aes.put('aes/k', Readable.from([Buffer.from('x')]));
    const [put] = writes(proxy.seen, 'radiant-sse');
    expect(put?.headers['x-amz-server-side-encryption']).to.equal('AES256');
    expect(put?.headers).not.to.have.property('x-amz-server-side-encryption-aws-kms-key-id');
    await aes.close?.();

    const plain = await createStorage(loadConfig(env({}), '/tmp').storage);
    proxy.seen.length = 0;
    await plain.put('plain/k', Readable.from([Buffer.from('x')]));
    const [put2] = writes(proxy.seen, 'radiant-sse');
    expect(put2?.method).to.equal('PUT');
    expect(put2?.headers).not.to.have.property('x-amz-server-side-encryption');
    await plain.close?.();
  });

  it('a KMS key without S3_SSE=aws:kms is a configuration error', function () {
    expect(() => loadConfig(env({ S3_SSE: 'AES256', S3_SSE_KMS_KEY_ID: 'k' }), '/tmp')).to.throw(ConfigError, /S3_SSE=aws:kms/);
    expect(() => loadConfig(env({ S3_SSE: 'des' }), '/tmp')).to.throw(ConfigError, /S3_SSE/);
  });
});

describe('encryption at rest: Azure encryption scope', function () {
  let azurite: RunningAzurite;
  let proxy: Awaited<ReturnType<typeof recordingProxy>>;
  before(async function () {
    azurite = await startAzurite();
    const blobEndpoint = /BlobEndpoint=(http:\/\/[^/;]+)/.exec(azurite.connectionString)![1]!;
    proxy = await recordingProxy(blobEndpoint);
  });
  after(async function () {
    await proxy?.close();
    await azurite?.stop();
  });

  it('AZURE_ENCRYPTION_SCOPE is named on every put', async function () {
    const connection = azurite.connectionString.replace(/BlobEndpoint=http:\/\/[^/;]+/, `BlobEndpoint=${proxy.url}`);
    const config = loadConfig(
      {
        STORAGE_TYPE: 'azure',
        AZURE_STORAGE_CONNECTION_STRING: connection,
        AZURE_CONTAINER: 'radiant-scope',
        AZURE_ENCRYPTION_SCOPE: 'radiantscope',
      },
      '/tmp',
    );
    const storage = await createStorage({ ...config.storage, createContainer: true } as typeof config.storage);
    await storage.check();
    proxy.seen.length = 0;
    await storage.put('k', Readable.from([Buffer.from('scoped')]));
    const w = proxy.seen.filter((r) => r.method === 'PUT' && r.url.includes('/radiant-scope/k'));
    expect(w.length).to.be.greaterThan(0);
    for (const r of w) expect(r.headers['x-ms-encryption-scope'], r.url).to.equal('radiantscope');
    await storage.close?.();
  });
});
