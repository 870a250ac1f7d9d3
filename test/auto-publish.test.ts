import { expect } from 'chai';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import dcmjs from 'dcmjs';
import { makeCtSeries, writeSeries, type GeneratedFile } from '../fixtures/generate.js';
import { createAnalysis, getAnalysis, storeOutcome } from '../src/analysis/analyses.js';
import { findInstance, listInstances } from '../src/catalog/catalog.js';
import type { Ingestor } from '../src/ingest/ingest.js';
import { migrateLatest, migrationStatus } from '../src/db/connection.js';
import { JobError } from '../src/jobs/errors.js';
import { migrationSource } from '../migrations/index.js';
import { JobWorker } from '../src/jobs/worker.js';
import { autoPublishConfig, reportJobHandlers } from '../src/reports/auto-publish.js';
import { publishReportVersion, REPORT_PUBLISH_JOB, type ReportPublishResult } from '../src/reports/publish-job.js';
import { versionUids } from '../src/reports/publish.js';
import { getReport, getVersion } from '../src/reports/report-store.js';
import { createReport, workflowDeps } from '../src/reports/workflow.js';
import { apiClient, auditRows } from './helpers/api.js';
import { startStorescp, storescu } from './helpers/dcmtk.js';
import { answeringEndpoint, forwardAiResultsTo, noduleAnswer } from './helpers/ai-results.js';
import { onBothDatabases } from './helpers/postgres.js';
import { tokenFor } from './helpers/http.js';
import { freePort, startTestCore, startTestNode, tempDir, type TestCore, type TestNode } from './helpers/node.js';
import { until } from './helpers/until.js';

/**
 * Closing the loop (issue 16, item 1): a study pushed by a modality (DCMTK storescu) is analysed
 * when stable (AUTO_ANALYZE, a stand-in OpenAI-compatible endpoint that answers at once), and the
 * node drafts the report and publishes its SR and PDF by itself (AUTO_PUBLISH, a report.autodraft
 * then a report.publish job); a forwarding rule for AI results sends both to a DCMTK storescp.
 * With the gate closed (an unvalidated model, not allowed) nothing is published and the API says
 * why. Publishing is idempotent: a run that stored the SR and died before the PDF is finished by
 * the next run without a second SR.
 */

const SR_CLASS = '1.2.840.10008.5.1.4.1.1.88.34';
const PDF_CLASS = '1.2.840.10008.5.1.4.1.1.104.1';

const ANSWER = noduleAnswer([80, 80, 180, 180]);

type Naturalized = Record<string, unknown> & {
  SOPClassUID?: string;
  SOPInstanceUID?: string;
  StudyInstanceUID?: string;
  SeriesDescription?: string;
};

function naturalize(bytes: Buffer): Naturalized {
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer;
  return dcmjs.data.DicomMetaDictionary.naturalizeDataset(dcmjs.data.DicomMessage.readFile(ab).dict) as Naturalized;
}

const nodeEnv = (endpoint: string): Record<string, string> => ({
  MEDGEMMA_BACKEND: 'remote',
  MEDGEMMA_API_ENDPOINT: endpoint,
  AUTO_ANALYZE: 'all',
  STUDY_STABLE_SECONDS: '1',
  MEDGEMMA_MAX_SLICES: '4',
  ANALYSIS_IMAGE_SIZE: '128',
  JOB_POLL_MS: '100',
  FORWARD_POLL_MS: '100',
  FORWARD_SETTLE_MS: '100',
});

async function push(node: TestNode, files: GeneratedFile[], work: string[]): Promise<void> {
  const dir = await tempDir('autopub-push');
  work.push(dir);
  const sent = await storescu(node.dicomPort, await writeSeries(dir, files));
  expect(sent.code, sent.stderr).to.equal(0);
}

interface AnalysisView {
  id: number;
  status: string;
  trigger: string;
  auto_publish: { status: string; reason: string | null; report_id: number | null };
}

describe('Auto-publish: a pushed study comes back as a draft SR and PDF, forwarded, with no API call', function () {
  this.timeout(300_000);
  let fake: Awaited<ReturnType<typeof answeringEndpoint>>;
  const work: string[] = [];

  before(async () => {
    fake = await answeringEndpoint(ANSWER);
  });

  after(async () => {
    await fake?.close();
    for (const d of work) await fsp.rm(d, { recursive: true, force: true });
  });

  describe('gate open (MEDGEMMA_ALLOW_UNVALIDATED_MODEL=true)', () => {
    let node: TestNode;
    let scp: { port: number; stop(): Promise<void> };
    let scpDir = '';

    before(async () => {
      node = await startTestNode({ ...nodeEnv(fake.url), MEDGEMMA_ALLOW_UNVALIDATED_MODEL: 'true' });
      scpDir = await tempDir('autopub-pacs');
      work.push(scpDir);
      const port = await freePort();
      scp = await startStorescp(port, scpDir, { aeTitle: 'AUTO_PACS' });
      await forwardAiResultsTo(node, 'AUTO_PACS', port);
    });

    after(async () => {
      await scp?.stop();
      await node?.cleanup();
    });

    it('storescu pushes a CT series → the UNVERIFIED draft SR and the PDF arrive at the PACS by themselves', async () => {
      const files = makeCtSeries({ seed: 'auto-publish-open', slices: 8, size: 96 });
      const study = files[0]!.studyInstanceUid;
      const t0 = Date.now();
      await push(node, files, work);
      // Nothing but the push: the analysis, the draft and its publishing are the node's own doing.
      // Issue 16: three objects now, the finding having a box: the TID 1500 SR, its text rendition
      // (an SR series of its own, "(text)", that OHIF shows as text) and the PDF.
      const received = await until('SR, text SR and PDF at the PACS', async () => {
        const names = fs.readdirSync(scpDir);
        const objs = names.map((n) => naturalize(fs.readFileSync(path.join(scpDir, n))));
        return objs.length >= 3 ? objs : undefined;
      });
      const elapsed = Date.now() - t0;
      expect(received).to.have.length(3);
      const isText = (o: Naturalized) => String(o.SeriesDescription).endsWith('(text)');
      const sr = received.find((o) => o.SOPClassUID === SR_CLASS && !isText(o));
      const text = received.find((o) => o.SOPClassUID === SR_CLASS && isText(o));
      expect(text, 'text SR at the PACS').to.include({
        StudyInstanceUID: study,
        VerificationFlag: 'UNVERIFIED',
        CompletionFlag: 'PARTIAL',
      });
      const pdf = received.find((o) => o.SOPClassUID === PDF_CLASS);
      expect(sr, 'SR at the PACS').to.include({ StudyInstanceUID: study, VerificationFlag: 'UNVERIFIED', CompletionFlag: 'PARTIAL' });
      expect(pdf, 'PDF at the PACS').to.include({ StudyInstanceUID: study });

      // The API tells what happened: an automatic analysis, its report published by the node.
      const api = apiClient(node, await tokenFor(node, 'viewer'));
      const list = await api.get<{ items: Array<{ id: number; trigger: string }> }>(`/api/studies/${study}/analyses`);
      const auto = list.body.items.find((a) => a.trigger === 'auto')!;
      const a = (await api.get<AnalysisView>(`/api/analysis/${auto.id}`)).body;
      expect(a.status).to.equal('succeeded');
      expect(a.auto_publish).to.include({ status: 'published', reason: null });
      const report = (
        await api.get<{ id: number; state: string; created_by: string; dicom: { sr: { sop_instance_uid: string } } }>(
          `/api/reports/${a.auto_publish.report_id}`,
        )
      ).body;
      expect(report).to.include({ state: 'draft', created_by: 'radiant-ai' });
      expect(report.dicom.sr.sop_instance_uid).to.equal(sr!.SOPInstanceUID);
      const created = (await auditRows(node, 'report.created')).filter((r) => r.resource_id === String(report.id));
      expect(created).to.have.length(1);
      expect(created[0]).to.include({ actor_type: 'system', actor: 'radiant-ai' });
      console.log(`      last instance sent → draft SR + PDF at the PACS: ${elapsed} ms (STUDY_STABLE_SECONDS=1)`);
    });
  });

  describe('gate closed (an unvalidated model, MEDGEMMA_ALLOW_UNVALIDATED_MODEL=false)', () => {
    let node: TestNode;

    before(async () => {
      node = await startTestNode({ ...nodeEnv(fake.url), MEDGEMMA_ALLOW_UNVALIDATED_MODEL: 'false', REPORT_PUBLISH_WAIT_MS: '0' });
    });

    after(async () => {
      await node?.cleanup();
    });

    it('nothing is published and the API says held, and why; a radiologist can still draft it (202 while publishing)', async () => {
      const files = makeCtSeries({ seed: 'auto-publish-held', slices: 8, size: 96 });
      const study = files[0]!.studyInstanceUid;
      await push(node, files, work);
      const rad = apiClient(node, await tokenFor(node, 'radiologist'));
      const analysisId = await until('automatic analysis', async () => {
        const r = await rad.get<{ items: Array<{ id: number; trigger: string }> }>(`/api/studies/${study}/analyses`);
        return r.body.items?.find((a) => a.trigger === 'auto')?.id;
      });
      await until('auto-publish decision', async () => {
        const jobs = await node.queue.list<unknown, { status: string }>({ kind: 'report.autodraft' });
        return jobs.find((j) => j.status === 'succeeded');
      });
      const a = (await rad.get<AnalysisView>(`/api/analysis/${analysisId}`)).body;
      expect(a.status).to.equal('succeeded');
      expect(a.auto_publish.status).to.equal('held');
      expect(a.auto_publish.reason).to.match(/is not validated .* MEDGEMMA_ALLOW_UNVALIDATED_MODEL is false/);
      expect(await node.db('reports').count({ n: '*' }).first()).to.deep.include({ n: 0 });
      const stored = await listInstances(node.db, { study });
      expect(stored.filter((i) => i.sop_class_uid === SR_CLASS || i.sop_class_uid === PDF_CLASS)).to.have.length(0);
      const held = await auditRows(node, 'report.auto_publish');
      expect(held.map((r) => r.outcome)).to.deep.equal(['failure']);

      // A person decides: the draft is made on request; REPORT_PUBLISH_WAIT_MS=0 answers 202 at once.
      const r = await rad.post<{ id: number; publishing: { job_id: number; sr_sop_instance_uid: string } }>('/api/reports', {
        study_id: study,
        analysis_id: analysisId,
      });
      expect(r.status, JSON.stringify(r.body)).to.equal(202);
      const job = await node.queue.waitFor<unknown, ReportPublishResult>(r.body.publishing.job_id, 60_000);
      expect(job?.status, job?.error ?? '').to.equal('succeeded');
      expect(job?.result?.srSopInstanceUid).to.equal(r.body.publishing.sr_sop_instance_uid);
      // One report per analysis: asking again answers the same report.
      const again = await rad.post<{ id: number; dicom: { sr: { sop_instance_uid: string } } }>('/api/reports', {
        study_id: study,
        analysis_id: analysisId,
      });
      expect(again.status).to.equal(200);
      expect(again.body.id).to.equal(r.body.id);
      expect(again.body.dicom.sr.sop_instance_uid).to.equal(r.body.publishing.sr_sop_instance_uid);
      const after = (await rad.get<AnalysisView>(`/api/analysis/${analysisId}`)).body;
      expect(after.auto_publish).to.include({ status: 'published', report_id: r.body.id });
    });
  });
});

onBothDatabases(
  (db, env) =>
    describe(`report.publish: one SR per version, whatever crashes and retries (${db})`, function () {
      this.timeout(120_000);
      let core: TestCore;
      let lastReportId = 0;

      before(async () => {
        core = await startTestCore(await env());
      });

      after(async () => {
        await core?.cleanup();
      });

      it('SR stored then a crash before the PDF: the retry stores the PDF only; the queued job then finds it done', async () => {
        const files = makeCtSeries({ seed: 'publish-crash', slices: 4, size: 64 });
        for (const f of files) await core.ingestor.ingestStream(Readable.from([f.bytes]), { source: 'import' });
        const study = files[0]!.studyInstanceUid;
        const analysisId = await createAnalysis(core.db, { studyInstanceUid: study, analysisType: 'primary', trigger: 'manual' });
        await storeOutcome(core.db, analysisId, {
          seriesInstanceUid: files[0]!.seriesInstanceUid,
          volumeId: null,
          priorStudyInstanceUid: null,
          model: {
            name: 'stand-in.gguf',
            sha256: null,
            quantization: null,
            validated: false,
            validation: { basis: 'none', reason: 'test stand-in' },
          },
          provenance: {
            systemPromptSha256: null,
            userPromptSha256: 'u'.repeat(64),
            schemaSha256: 's'.repeat(64),
            sampling: { temperature: 0 },
            samplingSha256: 't'.repeat(64),
            imageSha256: [],
            llamaBuild: null,
            modelSha256: null,
            mmprojSha256: null,
            modelValidated: false,
            promptTokens: null,
            predictedTokens: null,
            finishReason: 'stop',
            timings: null,
          },
          backend: 'remote',
          prompt: { templateId: 'test', templateVersion: '1', hash: 'h', text: 'p' },
          images: files
            .slice(0, 2)
            .map((f, index) => ({ index, sopInstanceUid: f.sopInstanceUid, frameNumber: 1, seriesInstanceUid: f.seriesInstanceUid })),
          answer: {
            findings: [
              {
                ...ANSWER.findings[0]!,
                laterality: 'right',
                category: 'abnormal',
                severity: 'mild',
                confidence: 0.6,
                image_indices: [1],
                region: null,
              },
            ],
            measurements: [],
            impression: ANSWER.impression,
            comparison_with_prior: '',
            technical_limitations: '',
            flags: [],
          },
          rawText: '{}',
          safetyFlags: [],
          timings: {},
          selection: null,
        });
        expect((await getAnalysis(core.db, analysisId))?.status).to.equal('succeeded');

        const deps = workflowDeps(core);
        const by = { username: 'dr.crash', role: 'radiologist' as const };
        // Two requests (or nodes) at once: one report, one publish job.
        const both = await Promise.all([
          createReport(deps, { studyInstanceUid: study, analysisId, includeAiDisclaimer: true }, by),
          createReport(deps, { studyInstanceUid: study, analysisId, includeAiDisclaimer: true }, by),
        ]);
        expect(both.map((b) => b.created).sort()).to.deep.equal([false, true]);
        expect(both[0].report.id).to.equal(both[1].report.id);
        const made = both.find((b) => b.created)!;
        const reportId = made.report.id;
        expect(await core.queue.list({ kind: REPORT_PUBLISH_JOB })).to.have.length(1);
        const uids = versionUids(made.report, 1);
        expect(made.publish).to.include({ srSopInstanceUid: uids.sr.sop, pdfSopInstanceUid: uids.pdf.sop, version: 1 });

        // The first run stores the SR, then the process "dies" storing the PDF.
        let calls = 0;
        const crashing = {
          ingestStream: (s: Readable, o: Parameters<Ingestor['ingestStream']>[1]) => {
            if (++calls === 2) return Promise.reject(new Error('simulated crash while storing the PDF'));
            return core.ingestor.ingestStream(s, o);
          },
        } as unknown as Ingestor;
        const failed = await publishReportVersion({ ...deps, ingestor: crashing }, reportId, 1).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(failed).to.be.instanceOf(JobError);
        expect((failed as JobError).retryable).to.equal(true);
        expect(await findInstance(core.db, uids.sr.sop), 'SR stored before the crash').to.not.equal(undefined);
        expect(await findInstance(core.db, uids.pdf.sop)).to.equal(undefined);
        expect((await getVersion(core.db, reportId, 1))?.srSopInstanceUid).to.equal(null);

        // The retry: same UIDs, the SR found stored, only the PDF built and stored.
        const retried = await publishReportVersion(deps, reportId, 1);
        expect(retried).to.include({ already: false, srSopInstanceUid: uids.sr.sop, pdfSopInstanceUid: uids.pdf.sop });
        expect(retried.timings!.srMs).to.equal(0);
        const objects = (await listInstances(core.db, { study })).filter(
          (i) => i.sop_class_uid === SR_CLASS || i.sop_class_uid === PDF_CLASS,
        );
        expect(objects.map((i) => i.sop_instance_uid).sort()).to.deep.equal([uids.sr.sop, uids.pdf.sop].sort());
        expect(await getReport(core.db, reportId)).to.include({ srSopInstanceUid: uids.sr.sop, pdfSopInstanceUid: uids.pdf.sop });

        // The job queued with the version (committed before the "crash") runs later: done at once.
        const worker = new JobWorker(core.queue, reportJobHandlers(deps, autoPublishConfig(core.config)), { pollMs: 50 });
        worker.start();
        try {
          const job = await core.queue.waitFor<unknown, ReportPublishResult>(made.publish!.jobId, 30_000);
          expect(job?.status, job?.error ?? '').to.equal('succeeded');
          expect(job?.result).to.include({ already: true, srSopInstanceUid: uids.sr.sop });
        } finally {
          await worker.stop();
        }
        const after = (await listInstances(core.db, { study })).filter((i) => i.sop_class_uid === SR_CLASS);
        expect(after).to.have.length(1);
        lastReportId = reportId;
      });

      it('migration 015_report_per_analysis: of the reports older nodes made for one analysis, the oldest is its report', async () => {
        const first = (await getReport(core.db, lastReportId))!;
        await core.db.migrate.down({ migrationSource, name: '015_report_per_analysis' });
        expect((await migrationStatus(core.db)).pending).to.include('015_report_per_analysis');
        // What nodes before it could do: a second report of the same analysis.
        const { id: _id, ...row } = (await core.db('reports').where({ id: first.id }).first()) as Record<string, unknown>;
        await core.db('reports').insert(row);
        await migrateLatest(core.db);
        const rows = (await core.db('reports').where({ analysis_id: first.analysisId }).orderBy('id')) as Array<{
          one_per_analysis: number | string | null;
        }>;
        expect(rows.map((r) => (r.one_per_analysis === null ? null : Number(r.one_per_analysis)))).to.deep.equal([first.analysisId, null]);
        const again = await createReport(
          workflowDeps(core),
          { studyInstanceUid: first.studyInstanceUid, analysisId: first.analysisId, includeAiDisclaimer: true },
          { username: 'dr.crash', role: 'radiologist' },
        );
        expect(again).to.deep.include({ created: false, publish: null });
        expect(again.report.id).to.equal(first.id);
      });
    }),
  'radiant_autopub',
);
