/**
 * OpenTelemetry spans (issue 21, item 5): a tracer provider with an in-memory exporter
 * (@opentelemetry/sdk-trace-base) stands where an OTLP exporter would; the node's spans nest:
 * HTTP request → its queries, DICOM association → C-STORE → the ingest's queries, analysis job →
 * the model call. No attribute carries a patient's name.
 */
import { expect } from 'chai';
import fsp from 'node:fs/promises';
import type http from 'node:http';
import path from 'node:path';
import { context, trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { makeCtSeries } from '../fixtures/generate.js';
import { enableTraceContext } from '../src/observability/tracing.js';
import { apiClient } from './helpers/api.js';
import { storescu } from './helpers/dcmtk.js';
import { fakeEndpoint, okReply } from './helpers/fake-openai.js';
import { baseUrl, bearer, tokenFor } from './helpers/http.js';
import { startTestNode, tempDir, type TestNode } from './helpers/node.js';
import { until } from './helpers/until.js';

const answer = { findings: [], measurements: [], impression: 'Normal.', comparison_with_prior: '', technical_limitations: '' };

describe('Tracing: spans of HTTP, DIMSE, database and model calls, nested', function () {
  this.timeout(180_000);
  const exporter = new InMemorySpanExporter();
  let node: TestNode;
  let fake: Awaited<ReturnType<typeof fakeEndpoint>>;
  let dir: string;
  const patient = { id: 'TRACE-PID-1', name: 'Tracefamily^Ottilie', birthDate: '19580101', sex: 'F' as const };
  const files = makeCtSeries({ seed: 'tracing', patient, studyDate: '20240505', slices: 5, size: 32 });

  const spans = () => exporter.getFinishedSpans();
  const byId = () => new Map(spans().map((s) => [s.spanContext().spanId, s]));
  const isUnder = (s: ReadableSpan, ancestor: ReadableSpan): boolean => {
    const all = byId();
    for (let p = s.parentSpanId; p; p = all.get(p)?.parentSpanId) if (p === ancestor.spanContext().spanId) return true;
    return false;
  };

  before(async () => {
    const provider = new BasicTracerProvider();
    provider.addSpanProcessor(new SimpleSpanProcessor(exporter));
    enableTraceContext();
    trace.setGlobalTracerProvider(provider);
    fake = await fakeEndpoint((req: http.IncomingMessage, res: http.ServerResponse) => {
      req.resume();
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(okReply(JSON.stringify(answer)));
      });
    });
    node = await startTestNode({
      MEDGEMMA_BACKEND: 'remote',
      MEDGEMMA_API_ENDPOINT: fake.url,
      MEDGEMMA_API_MODEL: 'medgemma-1.5-4b-it',
      MEDGEMMA_CONTEXT: '8192',
      ANALYSIS_IMAGE_SIZE: '64',
      JOB_POLL_MS: '100',
    });
    dir = await tempDir('trace');
  });
  after(async () => {
    await node?.cleanup();
    await fake?.close();
    if (dir) await fsp.rm(dir, { recursive: true, force: true });
    // Other test files in the same process run without a provider again.
    trace.disable();
    context.disable();
  });

  it("an association span holds its C-STORE spans, each holding the ingest's queries", async () => {
    const paths = await Promise.all(
      files.map(async (f) => {
        const p = path.join(dir, `${f.sopInstanceUid}.dcm`);
        await fsp.writeFile(p, f.bytes);
        return p;
      }),
    );
    const r = await storescu(node.dicomPort, paths);
    expect(r.code, r.stderr).to.equal(0);
    const association = await until('association span', async () => spans().find((s) => s.name === 'DIMSE association'));
    expect(association.attributes).to.include({ 'dicom.calling_ae': 'TESTSCU', 'radiant.association.stored': 5 });
    const stores = spans().filter((s) => s.name === 'DIMSE C-STORE' && s.parentSpanId === association.spanContext().spanId);
    expect(stores).to.have.length(5);
    for (const s of stores) expect(s.attributes['dicom.dimse.status']).to.equal('0x0000');
    const inserts = spans().filter((s) => s.name === 'db insert' && stores.some((c) => isUnder(s, c)));
    expect(inserts.length).to.be.at.least(5);
    expect(inserts[0]!.attributes['db.system.name']).to.equal('sqlite');
  });

  it('an HTTP span is named for its route and holds its queries; an analysis job holds the model call', async () => {
    const token = await tokenFor(node, 'radiologist');
    const res = await fetch(`${baseUrl(node)}/dicom-web/studies?PatientID=${patient.id}`, { headers: bearer(token) });
    expect(res.status).to.equal(200);
    const qido = await until('QIDO span', async () => spans().find((s) => s.name === 'HTTP GET /dicom-web/studies'));
    expect(qido.attributes).to.include({ 'http.route': '/dicom-web/studies', 'http.response.status_code': 200 });
    expect(spans().some((s) => s.name === 'db select' && isUnder(s, qido))).to.equal(true);

    const api = apiClient(node, token);
    const a = await api.post<{ id: number }>('/api/analysis', { study_id: files[0]!.studyInstanceUid });
    const job = await until('analysis job span', async () => spans().find((s) => s.name === 'job analysis.run'));
    // A root of its own, not a child of the request that queued it.
    expect(job.parentSpanId).to.equal(undefined);
    const model = spans().find((s) => s.name === 'model chat' && isUnder(s, job));
    expect(model, 'model call under the job').to.not.equal(undefined);
    expect(model!.attributes['radiant.engine']).to.equal('remote');
    expect(a.status).to.be.oneOf([200, 201, 202]);

    // Kinds, routes, statuses and AE titles: no patient's name anywhere.
    const everything = JSON.stringify(spans().map((s) => ({ name: s.name, attributes: s.attributes, events: s.events })));
    expect(everything).to.not.include('Tracefamily').and.not.include('Ottilie');
  });
});
