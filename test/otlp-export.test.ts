/**
 * OTLP trace export by environment (issue 21, item 5): with OTEL_EXPORTER_OTLP_ENDPOINT the node
 * registers a provider whose batch processor posts OTLP JSON to the collector; a tiny HTTP
 * collector here receives the QIDO request's route span, under the configured service name, and
 * stop() flushes what is still batched. Without the variable no span leaves the process.
 */
import { expect } from 'chai';
import http from 'node:http';
import type net from 'node:net';
import { startSpan } from '../src/observability/tracing.js';
import { baseUrl, bearer, tokenFor } from './helpers/http.js';
import { startTestNode, type TestNode } from './helpers/node.js';
import { until } from './helpers/until.js';

interface OtlpAttribute {
  key: string;
  value: { stringValue?: string; intValue?: number | string };
}
interface OtlpSpan {
  name: string;
  spanId: string;
  parentSpanId?: string;
  attributes: OtlpAttribute[];
}
interface OtlpExport {
  resourceSpans: { resource: { attributes: OtlpAttribute[] }; scopeSpans: { spans: OtlpSpan[] }[] }[];
}

/** A collector: every POST's path, content type and JSON body. */
async function collector() {
  const posts: { path: string; type: string; body: OtlpExport }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      posts.push({
        path: req.url ?? '',
        type: String(req.headers['content-type']),
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpExport,
      });
      res.setHeader('content-type', 'application/json');
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const spans = () => posts.flatMap((p) => p.body.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)));
  return { url, posts, spans, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

const attr = (attrs: OtlpAttribute[], key: string) => {
  const v = attrs.find((a) => a.key === key)?.value;
  return v?.stringValue ?? (v?.intValue === undefined ? undefined : Number(v.intValue));
};

describe('OTLP trace export: OTEL_EXPORTER_OTLP_ENDPOINT sends the spans to a collector', function () {
  this.timeout(120_000);
  let col: Awaited<ReturnType<typeof collector>>;
  let node: TestNode | undefined;

  before(async () => {
    col = await collector();
  });
  afterEach(async () => {
    await node?.cleanup();
    node = undefined;
  });
  after(async () => {
    await col?.close();
  });

  it("a QIDO request's route span reaches the collector as OTLP JSON, under OTEL_SERVICE_NAME", async () => {
    node = await startTestNode({ OTEL_EXPORTER_OTLP_ENDPOINT: `${col.url}/`, OTEL_SERVICE_NAME: 'radiant-test-a' });
    const token = await tokenFor(node, 'radiologist');
    const res = await fetch(`${baseUrl(node)}/dicom-web/studies?PatientID=OTLP-1`, { headers: bearer(token) });
    expect(res.status).to.be.oneOf([200, 204]);
    const span = await until(
      'the QIDO span at the collector',
      async () => col.spans().find((s) => s.name === 'HTTP GET /dicom-web/studies'),
      30_000,
    );
    expect(attr(span.attributes, 'http.route')).to.equal('/dicom-web/studies');
    expect(attr(span.attributes, 'http.response.status_code')).to.equal(res.status);
    const post = col.posts.find((p) => p.body.resourceSpans.some((r) => r.scopeSpans.some((s) => s.spans.includes(span))))!;
    expect(post.path).to.equal('/v1/traces');
    expect(post.type).to.match(/^application\/json/);
    expect(attr(post.body.resourceSpans[0]!.resource.attributes, 'service.name')).to.equal('radiant-test-a');
    // The request's database spans travel too, as its children.
    await until(
      'the QIDO query span',
      async () => col.spans().some((s) => s.name === 'db select' && s.parentSpanId === span.spanId),
      30_000,
    );
  });

  it('stop() flushes the spans still batched; OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as given', async () => {
    const before = col.posts.length;
    node = await startTestNode({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${col.url}/custom/traces` });
    const token = await tokenFor(node, 'radiologist');
    const res = await fetch(`${baseUrl(node)}/dicom-web/series?Modality=MR`, { headers: bearer(token) });
    expect(res.status).to.be.oneOf([200, 204]);
    await node.cleanup();
    node = undefined;
    const after = col.posts.slice(before);
    const names = after.flatMap((p) => p.body.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans.map((x) => x.name))));
    expect(names).to.include('HTTP GET /dicom-web/series');
    expect(after.every((p) => p.path === '/custom/traces')).to.equal(true);
    expect(attr(after[0]!.body.resourceSpans[0]!.resource.attributes, 'service.name')).to.equal('radiant');
  });

  it("without an endpoint no provider is registered: the node's spans are no-ops; stop() unregisters the exporting one", async () => {
    node = await startTestNode({ OTEL_EXPORTER_OTLP_ENDPOINT: col.url });
    const live = startSpan('probe', {});
    expect(live.isRecording()).to.equal(true);
    live.end();
    await node.cleanup();
    node = undefined;
    const after = startSpan('probe', {});
    expect(after.isRecording()).to.equal(false);
    node = await startTestNode();
    const off = startSpan('probe', {});
    expect(off.isRecording()).to.equal(false);
  });
});
