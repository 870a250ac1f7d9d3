import type { AuditLog } from '../audit/audit.js';
import type { FhirPushConfig } from '../config.js';
import type { Backoff } from '../backoff.js';
import { findInstance, type StoredInstanceRow } from '../catalog/catalog.js';
import { studyRow } from '../catalog/studies.js';
import type { Db, Trx } from '../db/connection.js';
import { tagNumber } from '../dicom/dictionary.js';
import { uidFromNames } from '../dicom/new-uid.js';
import { findByPath, RangeReader, readRange } from '../dicom/pixel-data.js';
import { errorMessage } from '../errors.js';
import type { EventBus } from '../events.js';
import type { Logger } from '../logger.js';
import { getAnalysis } from '../analysis/analyses.js';
import { JobError } from '../jobs/errors.js';
import type { JobQueue } from '../jobs/queue.js';
import { typedHandler, type JobHandlers } from '../jobs/worker.js';
import type { ReportState } from '../reports/content.js';
import type { PublishedHook } from '../reports/publish.js';
import { versionContent, type ReportNodeDeps } from '../reports/publish-job.js';
import { getReport, getVersion } from '../reports/report-store.js';
import type { BlobStorage } from '../../storage/types.js';
import { FHIR_JSON } from './bundles.js';
import { reportIdentifierUid } from './read.js';
import {
  deviceResource,
  diagnosticReportResource,
  imagingStudyResource,
  observationResource,
  patientIdentifier,
  patientResource,
  type ReportRefs,
} from './resources.js';
import { listStudyInstances } from '../catalog/catalog.js';
import { seriesRowsOfStudy } from '../catalog/studies.js';

/**
 * FHIR push (`fhir.push` jobs on the one job runner): when a report version's SR and PDF are
 * recorded (the draft published, a version signed or amended), a job per configured FHIR
 * server whose triggers ask for it is queued in that same transaction; the job sends one
 * transaction Bundle of conditional updates (PUT Type?identifier=…): Patient, ImagingStudy,
 * Device, an Observation per finding and the DiagnosticReport with the PDF and the SR inline, so
 * a repeated push updates the same resources. Network failures, 408, 429 and 5xx are retried with
 * back-off; another 4xx (the server refused the content) fails at once with its OperationOutcome.
 */

export const FHIR_PUSH_JOB = 'fhir.push';

/** What makes a push: the draft's publishing, or a signed (or amended) version. */
export type FhirTrigger = 'publish' | 'sign';

/** One FHIR server the node pushes to. */
export interface FhirTarget {
  /** Stable name of the target (the job names it; "env" for the FHIR_PUSH_* one). */
  id: string;
  /** The server's base, e.g. https://ehr.example/fhir (the Bundle is POSTed there). */
  baseUrl: string;
  /** Sent as the Authorization header. */
  authorization?: string;
  triggers: readonly FhirTrigger[];
}

/**
 * Where the targets come from: the seam for the integrations registry (kind 'fhir'), which
 * answers with its rows; for now the composition root feeds it from FHIR_PUSH_* (envFhirTargets).
 * Called with the transaction that records a version, so a registry reads its table there.
 */
export type FhirTargetSource = (db: Db | Trx) => Promise<readonly FhirTarget[]>;

export function envFhirTargets(c: FhirPushConfig | null): FhirTargetSource {
  const targets: FhirTarget[] = c
    ? [{ id: 'env', baseUrl: c.url.replace(/\/+$/, ''), ...(c.token ? { authorization: `Bearer ${c.token}` } : {}), triggers: c.on }]
    : [];
  return async () => targets;
}

export interface FhirPushPayload {
  reportId: number;
  version: number;
  target: string;
}

const triggerOf = (state: ReportState): FhirTrigger => (state === 'final' || state === 'amended' ? 'sign' : 'publish');

/** The hook publishing calls in the transaction that records a version's objects: one fhir.push job per target that wants it. */
export function fhirPushHook(p: { queue: JobQueue; targets: FhirTargetSource; events?: EventBus; maxAttempts: number }): PublishedHook {
  return async (trx, v) => {
    const wanted = (await p.targets(trx)).filter((t) => t.triggers.includes(triggerOf(v.state)));
    for (const t of wanted)
      await p.queue.enqueueIn<FhirPushPayload>(trx, {
        kind: FHIR_PUSH_JOB,
        payload: { reportId: v.reportId, version: v.version, target: t.id },
        dedupeKey: `fhir.push:${t.id}:${v.reportId}:${v.version}`,
        maxAttempts: p.maxAttempts,
      });
    if (wanted.length)
      void trx.executionPromise.then(
        () => p.events?.emit('job-due', { kind: FHIR_PUSH_JOB, runAt: new Date() }),
        () => undefined,
      );
  };
}

export interface FhirPushDeps extends Pick<ReportNodeDeps, 'db' | 'node'> {
  storage: BlobStorage;
  audit: AuditLog;
  log: Logger;
  targets: FhirTargetSource;
  backoff: Backoff;
  /** Per request (default 30 s). */
  timeoutMs?: number;
}

const ENCAPSULATED_DOCUMENT = tagNumber('EncapsulatedDocument');

/** The PDF inside a stored Encapsulated PDF, found by the kernel's element walker. */
async function pdfOf(storage: BlobStorage, row: StoredInstanceRow): Promise<Buffer | undefined> {
  const info = await storage.stat(row.storage_key);
  if (!info) return undefined;
  const e = await findByPath(new RangeReader(storage, row.storage_key, info.size), row.transfer_syntax_uid, [ENCAPSULATED_DOCUMENT]);
  if (!e?.length) return undefined;
  return readRange(storage, row.storage_key, { start: e.valueOffset, end: e.valueOffset + e.length - 1 });
}

const urn = (...names: string[]) => {
  const hex = uidFromNames(...names).slice(5);
  const h = BigInt(hex).toString(16).padStart(32, '0');
  return `urn:uuid:${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};
const conditional = (type: string, id: fhir4.Identifier) =>
  `${type}?identifier=${encodeURIComponent(`${id.system ?? ''}|${id.value ?? ''}`)}`;

/** The transaction Bundle of one report version: conditional updates, references between entries by urn:uuid. */
export async function pushBundle(d: FhirPushDeps, reportId: number, version: number): Promise<fhir4.Bundle> {
  const final = (why: string) => new JobError(why, { retryable: false });
  const report = await getReport(d.db, reportId);
  const v = report && (await getVersion(d.db, reportId, version));
  const analysis = report && (await getAnalysis(d.db, report.analysisId));
  const study = report && (await studyRow(d.db, { uid: report.studyInstanceUid }));
  if (!report || !v || !analysis || !study) throw final(`report ${reportId} v${version} (or its analysis or study) is gone`);
  const c = await versionContent(d, report, v, analysis);
  const key = `${report.studyInstanceUid}/${report.id}/${report.createdAt}`;
  const refs: ReportRefs = {
    patient: urn('fhir-patient', c.patient.issuer ?? '', c.patient.id),
    imagingStudy: urn('fhir-imaging-study', report.studyInstanceUid),
    device: urn('fhir-device', c.algorithm.deviceUid),
    observation: (f) => urn('fhir-observation', key, f.trackingUid),
  };
  const pdfRow = v.pdfSopInstanceUid ? await findInstance(d.db, v.pdfSopInstanceUid) : undefined;
  const srRow = v.srSopInstanceUid ? await findInstance(d.db, v.srSopInstanceUid) : undefined;
  const pdf = pdfRow && (await pdfOf(d.storage, pdfRow));
  const sr = srRow && (await readRange(d.storage, srRow.storage_key, { start: 0, end: srRow.size_bytes - 1 }));
  const [series, instances] = await Promise.all([
    seriesRowsOfStudy(d.db, Number(study.id)),
    listStudyInstances(d.db, study.study_instance_uid),
  ]);
  const strip = <T extends fhir4.FhirResource>(r: T): T => {
    // Conditional updates: the server assigns the ids; the node's own are not sent.
    const { id: _id, ...rest } = r;
    return rest as T;
  };
  const entry = (fullUrl: string, resource: fhir4.FhirResource, id: fhir4.Identifier): fhir4.BundleEntry => ({
    fullUrl,
    resource: strip(resource),
    request: { method: 'PUT', url: conditional(resource.resourceType, id) },
  });
  const patient = patientResource('p', {
    patientId: c.patient.id,
    issuer: c.patient.issuer,
    name: c.patient.name,
    birthDate: c.patient.birthDate,
    sex: c.patient.sex,
  });
  const imagingStudy = imagingStudyResource(
    report.studyInstanceUid,
    {
      studyInstanceUid: study.study_instance_uid,
      accessionNumber: study.accession_number,
      studyDate: study.study_date,
      studyDescription: study.study_description,
      numberOfSeries: Number(study.num_series),
      numberOfInstances: Number(study.num_instances),
    },
    series.map((x) => ({
      seriesInstanceUid: x.series_instance_uid,
      modality: x.modality,
      seriesNumber: x.series_number === null ? null : Number(x.series_number),
      seriesDescription: x.series_description,
      bodyPartExamined: x.body_part_examined,
      instances: instances
        .filter((i) => i.series_instance_uid === x.series_instance_uid)
        .map((i) => ({ sopInstanceUid: i.sop_instance_uid, sopClassUid: i.sop_class_uid, instanceNumber: i.instance_number })),
    })),
    // A job does not know the address clients reach the node at: the contained Endpoint names the path.
    { patient: refs.patient, dicomwebAddress: '/dicom-web' },
  );
  const device = deviceResource(c.algorithm);
  const observations = c.findings.map((f) => ({ f, o: observationResource(c, f, refs) }));
  const dr = diagnosticReportResource('r', reportIdentifierUid(report), c, refs, {
    ...(pdf ? { pdf: { data: pdf } } : {}),
    ...(sr ? { sr: { data: sr } } : {}),
  });
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      entry(refs.patient, patient, patientIdentifier(c.patient.id, c.patient.issuer)),
      entry(refs.imagingStudy, imagingStudy, imagingStudy.identifier![0]!),
      entry(refs.device, device, device.identifier![0]!),
      ...observations.map(({ f, o }) => entry(refs.observation(f), o, o.identifier![0]!)),
      entry(urn('fhir-diagnostic-report', key), dr, dr.identifier![0]!),
    ],
  };
}

export interface FhirPushResult extends FhirPushPayload {
  status: number;
  /** What the server answered per entry (status, location): no content, no PHI. */
  entries: Array<{ status?: string; location?: string }>;
}

const retryable = (status: number) => status === 408 || status === 429 || status >= 500;

/** One fhir.push run: build the Bundle, POST it, keep the server's answer. */
export async function runFhirPush(d: FhirPushDeps, p: FhirPushPayload, signal?: AbortSignal): Promise<FhirPushResult> {
  const target = (await d.targets(d.db)).find((t) => t.id === p.target);
  if (!target) throw new JobError(`FHIR target ${p.target} is no longer configured`, { retryable: false });
  const bundle = await pushBundle(d, p.reportId, p.version);
  const timeout = AbortSignal.timeout(d.timeoutMs ?? 30_000);
  let res: Response;
  try {
    res = await fetch(target.baseUrl, {
      method: 'POST',
      headers: {
        'Content-Type': FHIR_JSON,
        Accept: FHIR_JSON,
        ...(target.authorization ? { Authorization: target.authorization } : {}),
      },
      body: JSON.stringify(bundle),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
  } catch (err) {
    d.log.warn({ report: p.reportId, version: p.version, target: p.target, err: errorMessage(err) }, 'fhir push: server not reached');
    throw new JobError(`FHIR server ${p.target} not reached: ${errorMessage(err)}`, { retryable: true, backoff: d.backoff, cause: err });
  }
  const text = await res.text();
  d.log.info({ report: p.reportId, version: p.version, target: p.target, status: res.status }, 'fhir push answered');
  if (!res.ok) {
    let why = text.slice(0, 300);
    try {
      const o = JSON.parse(text) as fhir4.OperationOutcome;
      if (o.resourceType === 'OperationOutcome')
        why = (o.issue ?? [])
          .map((i) => i.diagnostics ?? i.code)
          .join('; ')
          .slice(0, 300);
    } catch {
      // Not JSON: its first characters say enough.
    }
    const again = retryable(res.status);
    if (!again)
      await d.audit.record({
        actorType: 'system',
        actor: FHIR_PUSH_JOB,
        action: 'fhir.push',
        resourceType: 'report',
        resourceId: String(p.reportId),
        outcome: 'failure',
        status: res.status,
        details: { version: p.version, target: p.target, answer: why },
      });
    throw new JobError(`FHIR server ${p.target} answered ${res.status}: ${why}`, {
      retryable: again,
      ...(again ? { backoff: d.backoff } : {}),
    });
  }
  let entries: FhirPushResult['entries'] = [];
  try {
    const b = JSON.parse(text) as fhir4.Bundle;
    entries = (b.entry ?? []).map((e) => ({ status: e.response?.status, location: e.response?.location }));
  } catch {
    // A 2xx without a transaction-response body: delivered all the same.
  }
  const report = await getReport(d.db, p.reportId);
  await d.audit.record({
    actorType: 'system',
    actor: FHIR_PUSH_JOB,
    action: 'fhir.push',
    resourceType: 'report',
    resourceId: String(p.reportId),
    ...(report ? { studyInstanceUid: report.studyInstanceUid } : {}),
    outcome: 'success',
    status: res.status,
    details: { version: p.version, target: p.target, entries: entries.length },
  });
  return { ...p, status: res.status, entries };
}

function parsePayload(x: unknown): FhirPushPayload {
  const { reportId, version, target } = (x ?? {}) as Partial<FhirPushPayload>;
  const ok = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;
  if (!ok(reportId) || !ok(version) || typeof target !== 'string' || !target)
    throw new TypeError('reportId, version and target are required');
  return { reportId, version, target };
}

export function fhirPushHandlers(d: FhirPushDeps): JobHandlers {
  return {
    [FHIR_PUSH_JOB]: typedHandler<FhirPushPayload, FhirPushResult>(parsePayload, (job, ctx) => runFhirPush(d, job.payload, ctx.signal)),
  };
}
