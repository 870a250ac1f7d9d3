import { randomUUID } from 'node:crypto';
import type { AuditLog } from '../audit/audit.js';
import type { Backoff } from '../backoff.js';
import { findInstance, listStudyInstances, type StoredInstanceRow } from '../catalog/catalog.js';
import { getDelivery, getIntegration, setDeliveryPayload } from '../catalog/integrations.js';
import { seriesRowsOfStudy, studyRow } from '../catalog/studies.js';
import { DocumentUnavailable, encapsulatedDocumentRange } from '../dicom/encapsulated-document.js';
import { uidFromNames } from '../dicom/new-uid.js';
import { readRange } from '../dicom/pixel-data.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { getAnalysis } from '../analysis/analyses.js';
import { FHIR_PUSH_JOB, parseDeliveryPayload, settleAttempt, type DeliveryJobPayload } from '../integrations/deliveries.js';
import { JobError } from '../jobs/errors.js';
import type { JobRow } from '../jobs/types.js';
import { typedHandler, type JobHandlers } from '../jobs/worker.js';
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

/**
 * FHIR push: the `fhir.push` job on the one job runner sends one delivery of the delivery log
 * (src/integrations/deliveries.ts queues one per 'fhir' integration whose triggers name a version,
 * when the version's SR and PDF are recorded) to its FHIR server: one transaction Bundle of
 * conditional updates (PUT Type?identifier=…): Patient, ImagingStudy, Device, an Observation per
 * finding and the DiagnosticReport with the PDF and the SR inline, so a repeated push updates the
 * same resources. The Bundle is built on the first attempt and kept with the delivery (PHI: in the
 * index for audit, never in the log); retries send the same one. Each attempt records the
 * server's answer and status. Network failures, 408, 429 and 5xx are retried with back-off until
 * the job's attempts run out; another 4xx (the server refused the content) is the dead letter at
 * once, with its OperationOutcome.
 */

export interface FhirPushDeps extends Pick<ReportNodeDeps, 'db' | 'node'> {
  storage: BlobStorage;
  audit: AuditLog;
  log: Logger;
  /** Back-off between attempts (FHIR_PUSH_RETRY_BASE_MS doubling to an hour). */
  backoff: Backoff;
}

/** The PDF inside a stored Encapsulated PDF; undefined when it cannot be found (the push goes without it). */
async function pdfOf(d: FhirPushDeps, row: StoredInstanceRow): Promise<Buffer | undefined> {
  try {
    return await readRange(
      d.storage,
      row.storage_key,
      await encapsulatedDocumentRange(d.storage, row.storage_key, row.transfer_syntax_uid),
    );
  } catch (err) {
    if (!(err instanceof DocumentUnavailable)) throw err;
    d.log.warn({ sop: row.sop_instance_uid, why: err.message }, 'fhir push: the report PDF is not readable');
    return undefined;
  }
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
  const pdf = pdfRow && (await pdfOf(d, pdfRow));
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

export interface FhirPushResult {
  deliveryId: number;
  status: number;
  /** What the server answered per entry (status, location): no content, no PHI. */
  entries: Array<{ status?: string; location?: string }>;
}

const retryable = (status: number) => status === 408 || status === 429 || status >= 500;

/** Why the server refused: its OperationOutcome's diagnostics, else the first characters of its answer. */
function refusal(text: string): string {
  try {
    const o = JSON.parse(text) as fhir4.OperationOutcome;
    if (o.resourceType === 'OperationOutcome')
      return (o.issue ?? [])
        .map((i) => i.diagnostics ?? i.code)
        .join('; ')
        .slice(0, 300);
  } catch {
    // Not JSON: its first characters say enough.
  }
  return text.slice(0, 300);
}

/** One fhir.push run: the delivery's Bundle (built on the first attempt), POSTed to its integration's base URL. */
export async function runFhirPush(d: FhirPushDeps, job: JobRow<DeliveryJobPayload>, signal?: AbortSignal): Promise<FhirPushResult> {
  const id = job.payload.deliveryId;
  const final = (why: string) => new JobError(why, { retryable: false });
  let delivery = await getDelivery(d.db, id);
  if (!delivery) throw final(`delivery ${id} does not exist (its integration was removed)`);
  if (delivery.status === 'delivered') return { deliveryId: id, status: Number(delivery.responseCode), entries: [] };
  const integration = await getIntegration(d.db, delivery.integrationId);
  if (!integration?.baseUrl) throw final(`integration ${delivery.integrationId} was removed or has no base URL`);
  if (delivery.payload === null) {
    if (delivery.reportId === null || delivery.reportVersion === null) throw final(`delivery ${id} names no report version`);
    // Bundle.identifier: the server (and the delivery log) can tell this push from a repeat of it.
    const bundle = await pushBundle(d, delivery.reportId, delivery.reportVersion);
    const identifier = { system: 'urn:ietf:rfc:3986', value: `urn:uuid:${randomUUID()}` };
    await setDeliveryPayload(d.db, id, identifier.value, JSON.stringify({ ...bundle, identifier }));
    delivery = (await getDelivery(d.db, id))!;
  }
  const attempt = { delivery, integration, job, actor: FHIR_PUSH_JOB };
  const timeout = AbortSignal.timeout(integration.timeoutMs);
  let res: Response;
  let text: string;
  try {
    res = await fetch(integration.baseUrl.replace(/\/+$/, ''), {
      method: 'POST',
      headers: {
        'Content-Type': FHIR_JSON,
        Accept: FHIR_JSON,
        ...(integration.bearerToken ? { Authorization: `Bearer ${integration.bearerToken}` } : {}),
      },
      body: delivery.payload!,
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    text = await res.text();
  } catch (err) {
    if (signal?.aborted) throw err;
    const why = `not reached: ${errorMessage(err)}`;
    throw (await settleAttempt(d, attempt, { response: null, code: null, error: why, retryable: true, backoff: d.backoff }))!;
  }
  const code = String(res.status);
  if (!res.ok) {
    const again = retryable(res.status);
    const why = `HTTP ${res.status}: ${refusal(text)}`;
    throw (await settleAttempt(d, attempt, { response: text, code, error: why, retryable: again, backoff: d.backoff }))!;
  }
  let entries: FhirPushResult['entries'] = [];
  try {
    const b = JSON.parse(text) as fhir4.Bundle;
    entries = (b.entry ?? []).map((e) => ({ status: e.response?.status, location: e.response?.location }));
  } catch {
    // A 2xx without a transaction-response body: delivered all the same.
  }
  await settleAttempt(d, attempt, { response: text, code, error: null, details: { entries: entries.length } });
  return { deliveryId: id, status: res.status, entries };
}

export function fhirPushHandlers(d: FhirPushDeps): JobHandlers {
  return {
    [FHIR_PUSH_JOB]: typedHandler<DeliveryJobPayload, FhirPushResult>(parseDeliveryPayload, (job, ctx) => runFhirPush(d, job, ctx.signal)),
  };
}
