import { getAnalysis } from '../analysis/analyses.js';
import { listStudyInstances } from '../catalog/catalog.js';
import { patientRow, patientSearchRows, type PatientRow } from '../catalog/patients.js';
import { reportModels, reportSearchRows } from '../catalog/reports.js';
import { seriesRowsOfStudy, studyRow, studyRows, type StudyRow } from '../catalog/studies.js';
import { uidFromNames } from '../dicom/new-uid.js';
import type { ReportContent } from '../reports/content.js';
import { modelDeviceUid } from '../reports/content-builder.js';
import { versionContent, type ReportNodeDeps } from '../reports/publish-job.js';
import { getReport, listVersions, type Report, type ReportVersion } from '../reports/report-store.js';
import { dateRange, FhirSearchError, parseToken, referenceId, type Page } from './bundles.js';
import {
  deviceId,
  deviceResource,
  diagnosticReportResource,
  dicomwebEndpoint,
  DICOMWEB_ENDPOINT_ID,
  imagingStudyResource,
  issuerOfSystem,
  observationId,
  observationResource,
  patientResource,
  statesOf,
  SYSTEMS,
  type ReportForm,
  type ReportRefs,
  type SeriesFacts,
} from './resources.js';

/**
 * The FHIR face's reads and searches over the index (src/catalog) and the reports service: a
 * report is shown as its latest published version (the draft, or the last signed or amended
 * one; edits in between are not published), the same content its SR and PDF were written from.
 */

export type FhirReadDeps = Pick<ReportNodeDeps, 'db' | 'node'>;

/** Where the node is reached, as the request named it (src/http/external-url.ts). */
export interface FhirUrls {
  /** …/fhir */
  fhir: string;
  /** The node's root (the REST API's exports are under it). */
  root: string;
}

export interface Found<T extends fhir4.FhirResource> {
  resource: T;
  /** The study the resource belongs to, for the audit row. */
  study?: string;
  patientId?: string;
}

export interface SearchResult {
  total: number;
  resources: fhir4.FhirResource[];
  /** Studies and patients returned, for the audit row. */
  studies: string[];
  patientIds: string[];
}

type Params = Record<string, string | string[]>;
const one = (q: Params, k: string): string | undefined => {
  const v = q[k];
  return Array.isArray(v) ? v.at(-1) : v;
};
const many = (q: Params, k: string): string[] => {
  const v = q[k];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
};

const patientRef = (pk: number | string) => `Patient/${pk}`;

function patientOf(r: PatientRow): fhir4.Patient {
  return patientResource(String(r.id), {
    patientId: r.patient_id,
    issuer: r.issuer_of_patient_id,
    name: r.patient_name,
    birthDate: r.patient_birth_date,
    sex: r.patient_sex,
  });
}

export async function readPatient(d: FhirReadDeps, id: string): Promise<Found<fhir4.Patient> | undefined> {
  if (!/^\d{1,10}$/.test(id)) return undefined;
  const r = await patientRow(d.db, Number(id));
  return r && { resource: patientOf(r), patientId: r.patient_id };
}

export async function searchPatients(d: FhirReadDeps, q: Params, page: Page): Promise<SearchResult> {
  const idRaw = one(q, 'identifier');
  let identifier: { value: string; issuer?: string } | undefined;
  if (idRaw !== undefined) {
    const t = parseToken(idRaw);
    const issuer = t.system ? issuerOfSystem(t.system) : undefined;
    // A system that is none of ours names no patient of this node.
    if (t.system && issuer === undefined) return { total: 0, resources: [], studies: [], patientIds: [] };
    identifier = { value: t.value, ...(issuer !== undefined ? { issuer } : {}) };
  }
  const birth = dateRange('birthdate', q.birthdate);
  const { total, rows } = await patientSearchRows(d.db, {
    identifier,
    name: one(q, 'name'),
    birthFrom: birth?.from,
    birthTo: birth?.to,
    limit: page.count,
    offset: page.offset,
  });
  return { total, resources: rows.map(patientOf), studies: [], patientIds: rows.map((r) => r.patient_id) };
}

async function studyResource(d: FhirReadDeps, s: StudyRow, urls: FhirUrls): Promise<fhir4.ImagingStudy> {
  const [series, instances] = await Promise.all([seriesRowsOfStudy(d.db, Number(s.id)), listStudyInstances(d.db, s.study_instance_uid)]);
  const facts: SeriesFacts[] = series.map((x) => ({
    seriesInstanceUid: x.series_instance_uid,
    modality: x.modality,
    seriesNumber: x.series_number === null ? null : Number(x.series_number),
    seriesDescription: x.series_description,
    bodyPartExamined: x.body_part_examined,
    instances: instances
      .filter((i) => i.series_instance_uid === x.series_instance_uid)
      .map((i) => ({ sopInstanceUid: i.sop_instance_uid, sopClassUid: i.sop_class_uid, instanceNumber: i.instance_number })),
  }));
  return imagingStudyResource(
    s.study_instance_uid,
    {
      studyInstanceUid: s.study_instance_uid,
      accessionNumber: s.accession_number,
      studyDate: s.study_date,
      studyDescription: s.study_description,
      numberOfSeries: Number(s.num_series),
      numberOfInstances: Number(s.num_instances),
    },
    facts,
    { patient: patientRef(s.patient_pk), dicomwebAddress: `${urls.root}/dicom-web` },
  );
}

export async function readImagingStudy(d: FhirReadDeps, id: string, urls: FhirUrls): Promise<Found<fhir4.ImagingStudy> | undefined> {
  if (!/^[0-9.]{1,64}$/.test(id)) return undefined;
  const s = await studyRow(d.db, { uid: id });
  return s && { resource: await studyResource(d, s, urls), study: s.study_instance_uid, patientId: s.patient_id };
}

/** A Study Instance UID from an ImagingStudy identifier token (urn:dicom:uid|urn:oid:…, urn:oid:…, urn:dicom:uid:…). */
function studyUidOf(t: { system?: string; value: string }): string | undefined {
  const m = /^urn:(?:oid|dicom:uid):([0-9.]{1,64})$/.exec(t.value);
  if (m) return m[1];
  if (t.system === SYSTEMS.dicomUid && /^[0-9.]{1,64}$/.test(t.value)) return t.value;
  return undefined;
}

export async function searchImagingStudies(d: FhirReadDeps, q: Params, page: Page, urls: FhirUrls): Promise<SearchResult> {
  const patient = one(q, 'patient');
  const idRaw = one(q, 'identifier');
  const t = idRaw === undefined ? undefined : parseToken(idRaw);
  const uid = t && studyUidOf(t);
  if (t?.system === SYSTEMS.dicomUid && !uid) throw new FhirSearchError(`identifier: "${idRaw}" is not a DICOM UID (urn:oid:1.2.3…)`);
  const modality = one(q, 'modality');
  const started = dateRange('started', q.started);
  const { total, rows } = await studyRows(d.db, {
    ...(patient !== undefined ? { patientPk: Number(referenceId('patient', 'Patient', patient)) || -1 } : {}),
    ...(uid ? { studyInstanceUid: uid } : t ? { accession: t.value } : {}),
    ...(modality !== undefined ? { modality: parseToken(modality).value.toUpperCase() } : {}),
    dateFrom: started?.from,
    dateTo: started?.to,
    limit: page.count,
    offset: page.offset,
  });
  const resources = [];
  for (const s of rows) resources.push(await studyResource(d, s, urls));
  return { total, resources, studies: rows.map((s) => s.study_instance_uid), patientIds: rows.map((s) => s.patient_id) };
}

/** A report as FHIR sees it: its latest published version and that version's content. */
export interface PublishedReport {
  report: Report;
  version: ReportVersion;
  content: ReportContent;
  patientPk: number;
}

export async function publishedReport(d: FhirReadDeps, reportId: number): Promise<PublishedReport | undefined> {
  const report = await getReport(d.db, reportId);
  if (!report) return undefined;
  const version = (await listVersions(d.db, reportId)).filter((v) => v.action !== 'edit').at(-1);
  const analysis = await getAnalysis(d.db, report.analysisId);
  const study = await studyRow(d.db, { uid: report.studyInstanceUid });
  if (!version || !analysis || !study) return undefined;
  return { report, version, content: await versionContent(d, report, version, analysis), patientPk: Number(study.patient_pk) };
}

/** The identifier of a report on every server: a UID derived from (study, report id, creation time), like its objects' UIDs. */
export function reportIdentifierUid(r: Pick<Report, 'id' | 'studyInstanceUid' | 'createdAt'>): string {
  return uidFromNames('radiant-report', r.studyInstanceUid, String(r.id), r.createdAt, 'fhir-diagnostic-report');
}

/** References between a report's resources on this node. */
export function nodeRefs(p: PublishedReport): ReportRefs {
  return {
    patient: patientRef(p.patientPk),
    imagingStudy: `ImagingStudy/${p.report.studyInstanceUid}`,
    device: `Device/${deviceId(p.content.algorithm)}`,
    observation: (f) => `Observation/${observationId(p.report.id, f)}`,
  };
}

function reportOf(p: PublishedReport, urls: FhirUrls): fhir4.DiagnosticReport {
  const form: ReportForm = {
    ...(p.version.pdfSopInstanceUid ? { pdf: { url: `${urls.root}/api/export/report/${p.report.id}/pdf` } } : {}),
    ...(p.version.srSopInstanceUid ? { sr: { url: `${urls.root}/api/export/report/${p.report.id}/dicom-sr` } } : {}),
  };
  return diagnosticReportResource(String(p.report.id), reportIdentifierUid(p.report), p.content, nodeRefs(p), form);
}

export async function readDiagnosticReport(
  d: FhirReadDeps,
  id: string,
  urls: FhirUrls,
): Promise<Found<fhir4.DiagnosticReport> | undefined> {
  if (!/^\d{1,10}$/.test(id)) return undefined;
  const p = await publishedReport(d, Number(id));
  return p && { resource: reportOf(p, urls), study: p.report.studyInstanceUid, patientId: p.content.patient.id };
}

interface ReportFilter {
  patientPk?: number;
  studyInstanceUid?: string;
  states?: string[];
  dateFrom?: string;
  dateTo?: string;
}

function reportFilter(q: Params, type: string): ReportFilter {
  const patient = one(q, 'patient') ?? one(q, 'subject');
  const study = one(q, type === 'DiagnosticReport' ? 'study' : 'derived-from');
  const statuses = many(q, 'status').flatMap((s) => s.split(','));
  const date = dateRange('date', q.date);
  return {
    ...(patient !== undefined ? { patientPk: Number(referenceId('patient', 'Patient', patient)) || -1 } : {}),
    ...(study !== undefined ? { studyInstanceUid: referenceId('study', 'ImagingStudy', study) } : {}),
    ...(statuses.length ? { states: statuses.flatMap(statesOf) } : {}),
    dateFrom: date?.from,
    dateTo: date?.to,
  };
}

export async function searchDiagnosticReports(d: FhirReadDeps, q: Params, page: Page, urls: FhirUrls): Promise<SearchResult> {
  const { total, ids } = await reportSearchRows(d.db, { ...reportFilter(q, 'DiagnosticReport'), limit: page.count, offset: page.offset });
  const found = (await Promise.all(ids.map((id) => publishedReport(d, id)))).filter((p): p is PublishedReport => !!p);
  return {
    total,
    resources: found.map((p) => reportOf(p, urls)),
    studies: found.map((p) => p.report.studyInstanceUid),
    patientIds: found.map((p) => p.content.patient.id),
  };
}

export async function readObservation(d: FhirReadDeps, id: string): Promise<Found<fhir4.Observation> | undefined> {
  const m = /^(\d{1,10})-(\d{1,4})$/.exec(id);
  if (!m) return undefined;
  const p = await publishedReport(d, Number(m[1]));
  const f = p?.content.findings.find((x) => x.number === Number(m[2]));
  return (
    p &&
    f && { resource: observationResource(p.content, f, nodeRefs(p)), study: p.report.studyInstanceUid, patientId: p.content.patient.id }
  );
}

/** Observations of the reports that match, in report order then finding order; paged over the findings. */
export async function searchObservations(d: FhirReadDeps, q: Params, page: Page): Promise<SearchResult> {
  const { ids } = await reportSearchRows(d.db, { ...reportFilter(q, 'Observation'), limit: 10_000, offset: 0 });
  const all: Array<{ p: PublishedReport; o: fhir4.Observation }> = [];
  for (const id of ids) {
    const p = await publishedReport(d, id);
    for (const f of p?.content.findings ?? []) all.push({ p: p!, o: observationResource(p!.content, f, nodeRefs(p!)) });
  }
  const slice = all.slice(page.offset, page.offset + page.count);
  return {
    total: all.length,
    resources: slice.map((x) => x.o),
    studies: [...new Set(slice.map((x) => x.p.report.studyInstanceUid))],
    patientIds: [...new Set(slice.map((x) => x.p.content.patient.id))],
  };
}

export async function readDevice(d: FhirReadDeps, id: string): Promise<Found<fhir4.Device> | undefined> {
  if (!/^[0-9.]{1,64}$/.test(id)) return undefined;
  // Few models ever draft reports: their Device UIDs are computed, not indexed.
  const model = (await reportModels(d.db)).find((m) => modelDeviceUid(m.sha256, m.name) === id);
  const p = model && (await publishedReport(d, model.reportId));
  return p && { resource: deviceResource(p.content.algorithm) };
}

export function readEndpoint(id: string, urls: FhirUrls): Found<fhir4.Endpoint> | undefined {
  return id === DICOMWEB_ENDPOINT_ID ? { resource: dicomwebEndpoint(`${urls.root}/dicom-web`) } : undefined;
}
