/**
 * The remote MedGemma backend against a stand-in OpenAI-compatible endpoint: which answers are
 * retried (408, 429, 5xx) and which never are (any other 4xx), the https rule, the request size
 * budget checked before sending, and the identity of a remote model (never validated); a slow
 * answer is bounded by MEDGEMMA_TIMEOUT_MS alone, not by fetch's (undici's) 300 s limits.
 */
import { expect } from 'chai';
import { RemoteEngine } from '../src/medgemma/backends/remote.js';
import { type AnalyzeRequest, EngineError, type JsonSchema } from '../src/medgemma/engine.js';
import { postChatCompletion } from '../src/medgemma/http-chat.js';
import { fakeEndpoint, okReply, shortenFetchLimits } from './helpers/fake-openai.js';

const schema: JsonSchema = {
  type: 'object',
  properties: { findings: { type: 'array', items: { type: 'string' } } },
  required: ['findings'],
};
const request = (over: Partial<AnalyzeRequest> = {}): AnalyzeRequest => ({ images: [], prompt: 'Describe.', schema, ...over });

async function rejects(p: Promise<unknown>): Promise<EngineError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected a rejection').to.be.instanceOf(EngineError);
  return err as EngineError;
}

describe('remote MedGemma backend: retry policy, https rule, request budget (stand-in endpoint)', function () {
  this.timeout(30_000);
  let statuses: number[] = [];
  let n = 0;
  let fake: Awaited<ReturnType<typeof fakeEndpoint>>;

  before(async () => {
    fake = await fakeEndpoint((req, res) => {
      req.resume();
      req.on('end', () => {
        const status = statuses[n++] ?? 200;
        if (status !== 200) return res.writeHead(status, { 'retry-after': '0' }).end(`status ${status}`);
        res.setHeader('content-type', 'application/json');
        res.end(okReply(JSON.stringify({ findings: ['opacity'] })));
      });
    });
  });
  after(() => fake?.close());
  beforeEach(() => {
    n = 0;
    statuses = [];
  });

  const engine = (over: Partial<ConstructorParameters<typeof RemoteEngine>[0]> = {}) =>
    new RemoteEngine({ endpoint: fake.url, retries: 3, baseDelayMs: 5, ...over });

  it('retries 408 and 503, then succeeds; the remote model is never validated', async () => {
    statuses = [408, 503];
    const retried: number[] = [];
    const r = await engine({ onRetry: (i) => retried.push(i.error.details.status!) }).analyze<{ findings: string[] }>(request());
    expect(n).to.equal(3);
    expect(retried).to.deep.equal([408, 503]);
    expect(r.json.findings).to.deep.equal(['opacity']);
    expect(r.model.validated).to.equal(false);
    expect(r.model.validation.basis).to.equal('none');
    expect(r.model.validation.reason).to.match(/remote endpoint/);
  });

  for (const status of [400, 404, 413, 422]) {
    it(`a ${status} is sent once and not retryable later either (the job layer asks err.retryable)`, async () => {
      statuses = [status, status, status, status];
      const err = await rejects(engine().analyze(request()));
      expect(n).to.equal(1);
      expect(err.kind).to.equal('upstream');
      expect(err.details.status).to.equal(status);
      expect(err.details.attempts).to.equal(1);
      expect(err.retryable).to.equal(false);
    });
  }

  it('a 500 that persists exhausts the retries and stays retryable for the job layer', async () => {
    statuses = [500, 500, 500, 500];
    const err = await rejects(engine().analyze(request()));
    expect(n).to.equal(4);
    expect(err.details.attempts).to.equal(4);
    expect(err.retryable).to.equal(true);
  });

  it('refuses plain http to a non-loopback host before any connection; loopback and MEDGEMMA_API_ALLOW_HTTP pass', async () => {
    expect(() => new RemoteEngine({ endpoint: 'http://medgemma.example/v1', apiKey: 'k' })).to.throw(
      EngineError,
      /unencrypted: use https:\/\/, a loopback host, or set MEDGEMMA_API_ALLOW_HTTP=true/,
    );
    expect(() => new RemoteEngine({ endpoint: 'http://medgemma.example/v1', allowHttp: true })).to.not.throw();
    expect(() => new RemoteEngine({ endpoint: 'https://medgemma.example/v1' })).to.not.throw();
    const viaLocalhost = new RemoteEngine({ endpoint: fake.url.replace('127.0.0.1', 'localhost') });
    const r = await viaLocalhost.analyze<{ findings: string[] }>(request());
    expect(r.json.findings).to.deep.equal(['opacity']);
  });

  it('a request over MEDGEMMA_MAX_REQUEST_MB fails as too_large without being sent', async () => {
    const err = await rejects(engine({ maxRequestBytes: 2_000_000 }).analyze(request({ prompt: 'x'.repeat(2_100_000) })));
    expect(err.kind).to.equal('too_large');
    expect(err.message).to.match(/exceeds MEDGEMMA_MAX_REQUEST_MB \(2\.0 MB\): lower MEDGEMMA_MAX_SLICES/);
    expect(err.retryable).to.equal(false);
    expect(n).to.equal(0);
  });
});

describe('model calls: MEDGEMMA_TIMEOUT_MS is the only limit (stand-in endpoint slower than fetch allows)', function () {
  this.timeout(30_000);
  // undici's 300 s headersTimeout/bodyTimeout, shortened to 1 s; the stand-in answers after 2.5 s.
  const LIMIT_MS = 1000;
  const SLOW_MS = 2500;
  let restore: () => void = () => undefined;
  let fake: Awaited<ReturnType<typeof fakeEndpoint>>;
  const content = JSON.stringify({ findings: ['slow opacity'] });

  before(async () => {
    // /late-headers[-ms]: nothing until the answer is ready (llama-server); /late-body: headers at once, the body later.
    fake = await fakeEndpoint((req, res) => {
      req.resume();
      req.on('end', () => {
        const m = /^\/late-(headers|body)(?:-(\d+))?/.exec(req.url!);
        const delay = m?.[2] ? Number(m[2]) : SLOW_MS;
        if (m?.[1] === 'body') res.writeHead(200, { 'content-type': 'application/json' }).flushHeaders();
        setTimeout(() => {
          if (!res.headersSent) res.setHeader('content-type', 'application/json');
          res.end(okReply(content));
        }, delay);
      });
    });
    restore = await shortenFetchLimits(LIMIT_MS);
  });
  after(async () => {
    restore();
    await fake?.close();
  });

  const base = () => fake.url.replace(/\/v1$/, '');

  it('the shortened limit holds for fetch: a reply later than it fails there', async () => {
    const err = await fetch(`${base()}/late-headers`, { method: 'POST', body: '{}' }).then(
      async (r) => r.text(),
      (e: unknown) => e as Error & { cause?: { code?: string } },
    );
    expect(err).to.be.instanceOf(Error);
    expect((err as Error & { cause?: { code?: string } }).cause?.code).to.equal('UND_ERR_HEADERS_TIMEOUT');
  });

  for (const path of ['late-headers', 'late-body']) {
    it(`remote backend: a reply after the fetch limit (${path}) is received`, async () => {
      const engine = new RemoteEngine({ endpoint: `${base()}/${path}`, retries: 0, timeoutMs: 20_000 });
      const r = await engine.analyze<{ findings: string[] }>(request());
      expect(r.json.findings).to.deep.equal(['slow opacity']);
    });
  }

  it('llama-server backend: its call (the same client, no retries) receives a reply after the fetch limit', async () => {
    const reply = await postChatCompletion({
      url: `${base()}/late-headers`,
      apiKey: 'k',
      body: { messages: [] },
      signal: AbortSignal.timeout(20_000),
      retries: 0,
      backend: 'llama-server',
    });
    expect(reply.choices?.[0]?.message?.content).to.equal(content);
  });

  it('a reply later than MEDGEMMA_TIMEOUT_MS fails with the timeout error, at the timeout', async () => {
    const engine = new RemoteEngine({ endpoint: `${base()}/late-headers-6000`, retries: 0, timeoutMs: 1500 });
    const t0 = performance.now();
    const err = await rejects(engine.analyze(request()));
    const took = performance.now() - t0;
    expect(err.kind).to.equal('timeout');
    expect(err.message).to.match(/timed out after 1500 ms/);
    expect(took).to.be.within(1400, 5000);
  });
});
