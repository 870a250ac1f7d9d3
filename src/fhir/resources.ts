import type { ReportAlgorithm, ReportContent, ReportFinding, ReportState } from '../reports/content.js';
import { lateralityCode, procedureCode, quantityCode, severityCode, type Code } from '../reports/sr/codes.js';

/**
 * The node's records as FHIR R4 resources: pure functions from what the index and the reports
 * hold (a report's ReportContent, the one shape the SR and the PDF are written from) to
 * Patient, ImagingStudy (with its DICOMweb Endpoint contained), DiagnosticReport, Observation
 * per finding and Device per AI model. References are given by the caller: `Patient/12` when the
 * node answers a read, `urn:uuid:…` inside a transaction Bundle pushed to another server.
 */

export const SYSTEMS = {
  dcm: 'http://dicom.nema.org/resources/ontology/DCM',
  sct: 'http://snomed.info/sct',
  loinc: 'http://loinc.org',
  ucum: 'http://unitsofmeasure.org',
  /** A DICOM UID as an identifier (ImagingStudy.identifier, PS3.18 F / FHIR R4 ImagingStudy notes). */
  dicomUid: 'urn:dicom:uid',
  /** Any URI as identifier value (urn:oid:… of a UID the node derived). */
  rfc3986: 'urn:ietf:rfc:3986',
  v2_0203: 'http://terminology.hl7.org/CodeSystem/v2-0203',
  v2_0074: 'http://terminology.hl7.org/CodeSystem/v2-0074',
  observationCategory: 'http://terminology.hl7.org/CodeSystem/observation-category',
  endpointConnectionType: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type',
  /** Patient IDs whose issuer is not an OID: this system plus the issuer (URI-encoded), or alone when there is none. */
  patientId: 'urn:radiant-ai:patient-id',
  /** The AI model's SHA-256 as its Device identifier. */
  modelSha256: 'urn:radiant-ai:model-sha256',
} as const;

const SCHEME_SYSTEM: Record<string, string> = { DCM: SYSTEMS.dcm, SCT: SYSTEMS.sct, LN: SYSTEMS.loinc, UCUM: SYSTEMS.ucum };

/** A DICOM/SR code as a FHIR CodeableConcept: coded when its scheme has a FHIR system, else its words only (99RADIANT). */
export function concept(c: Code, text?: string): fhir4.CodeableConcept {
  const system = SCHEME_SYSTEM[c.scheme];
  return system ? { coding: [{ system, code: c.value, display: c.meaning }], text: text ?? c.meaning } : { text: text ?? c.meaning };
}

const OID = /^[0-2](\.(0|[1-9][0-9]*))+$/;

/** Patient ID with its issuer as a FHIR Identifier: an OID issuer is the system (urn:oid:), any other goes into ours. */
export function patientIdentifier(patientId: string, issuer: string | null): fhir4.Identifier {
  const i = issuer?.trim() ?? '';
  const system = !i ? SYSTEMS.patientId : OID.test(i) ? `urn:oid:${i}` : `${SYSTEMS.patientId}:${encodeURIComponent(i)}`;
  return {
    use: 'usual',
    type: { coding: [{ system: SYSTEMS.v2_0203, code: 'MR', display: 'Medical record number' }] },
    system,
    value: patientId,
    ...(i ? { assigner: { display: i } } : {}),
  };
}

/** The issuer a Patient identifier system names (patientIdentifier's inverse); undefined: not one of ours. */
export function issuerOfSystem(system: string): string | undefined {
  if (system === SYSTEMS.patientId) return '';
  if (system.startsWith(`${SYSTEMS.patientId}:`)) return decodeURIComponent(system.slice(SYSTEMS.patientId.length + 1));
  if (system.startsWith('urn:oid:') && OID.test(system.slice(8))) return system.slice(8);
  return undefined;
}

/** DICOM DA (YYYYMMDD) → FHIR date; undefined when it is not a full date. */
export function fhirDate(da: string | null | undefined): string | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec((da ?? '').trim());
  return m ? `${m[1]}-${m[2]}-${m[3]}` : undefined;
}

/** DICOM PN (Family^Given^Middle^Prefix^Suffix, alphabetic group) → HumanName. */
export function humanName(pn: string | null): fhir4.HumanName[] {
  if (!pn?.trim()) return [];
  const [family = '', given = '', middle = '', prefix = '', suffix = ''] = (pn.split('=')[0] ?? '').split('^').map((p) => p.trim());
  const givens = [given, middle].filter(Boolean);
  return [
    {
      use: 'official',
      ...(family ? { family } : {}),
      ...(givens.length ? { given: givens } : {}),
      ...(prefix ? { prefix: [prefix] } : {}),
      ...(suffix ? { suffix: [suffix] } : {}),
    },
  ];
}

const GENDER: Record<string, 'male' | 'female' | 'other'> = { M: 'male', F: 'female', O: 'other' };

export interface PatientFacts {
  patientId: string;
  issuer: string | null;
  name: string | null;
  birthDate: string | null;
  sex: string | null;
}

export function patientResource(id: string, p: PatientFacts): fhir4.Patient {
  const birthDate = fhirDate(p.birthDate);
  const name = humanName(p.name);
  return {
    resourceType: 'Patient',
    id,
    identifier: [patientIdentifier(p.patientId, p.issuer)],
    ...(name.length ? { name } : {}),
    gender: GENDER[(p.sex ?? '').trim().toUpperCase()] ?? 'unknown',
    ...(birthDate ? { birthDate } : {}),
  };
}

export interface StudyFacts {
  studyInstanceUid: string;
  accessionNumber: string | null;
  studyDate: string | null;
  studyDescription: string | null;
  numberOfSeries: number;
  numberOfInstances: number;
}

export interface SeriesFacts {
  seriesInstanceUid: string;
  modality: string | null;
  seriesNumber: number | null;
  seriesDescription: string | null;
  bodyPartExamined: string | null;
  instances: Array<{ sopInstanceUid: string; sopClassUid: string; instanceNumber: number | null }>;
}

/** A DICOM modality (CID 29 defined term) as a Coding of the DCM system. */
export function modalityCoding(modality: string): fhir4.Coding {
  return { system: SYSTEMS.dcm, code: modality.trim().toUpperCase() };
}

export const DICOMWEB_ENDPOINT_ID = 'dicomweb';

/** The node's DICOMweb service as an Endpoint (connectionType dicom-wado-rs): the ImagingStudy's contained endpoint. */
export function dicomwebEndpoint(address: string, id = DICOMWEB_ENDPOINT_ID): fhir4.Endpoint {
  return {
    resourceType: 'Endpoint',
    id,
    status: 'active',
    connectionType: { system: SYSTEMS.endpointConnectionType, code: 'dicom-wado-rs' },
    name: 'DICOMweb (WADO-RS)',
    payloadType: [{ text: 'DICOM' }],
    payloadMimeType: ['application/dicom'],
    address,
  };
}

/** Study Instance UID as the ImagingStudy's identifier (R4: system urn:dicom:uid, value urn:oid:). */
export function studyUidIdentifier(uid: string): fhir4.Identifier {
  return { system: SYSTEMS.dicomUid, value: `urn:oid:${uid}` };
}

export function imagingStudyResource(
  id: string,
  s: StudyFacts,
  series: SeriesFacts[],
  refs: { patient: string; dicomwebAddress: string },
): fhir4.ImagingStudy {
  const modalities = [...new Set(series.map((x) => x.modality?.trim().toUpperCase()).filter((m): m is string => !!m))];
  const started = fhirDate(s.studyDate);
  return {
    resourceType: 'ImagingStudy',
    id,
    contained: [dicomwebEndpoint(refs.dicomwebAddress)],
    identifier: [
      studyUidIdentifier(s.studyInstanceUid),
      ...(s.accessionNumber
        ? [{ type: { coding: [{ system: SYSTEMS.v2_0203, code: 'ACSN', display: 'Accession ID' }] }, value: s.accessionNumber }]
        : []),
    ],
    status: 'available',
    ...(modalities.length ? { modality: modalities.map(modalityCoding) } : {}),
    subject: { reference: refs.patient },
    ...(started ? { started } : {}),
    endpoint: [{ reference: `#${DICOMWEB_ENDPOINT_ID}` }],
    numberOfSeries: s.numberOfSeries,
    numberOfInstances: s.numberOfInstances,
    ...(s.studyDescription ? { description: s.studyDescription } : {}),
    series: series.map((x) => ({
      uid: x.seriesInstanceUid,
      ...(x.seriesNumber !== null ? { number: x.seriesNumber } : {}),
      modality: modalityCoding(x.modality?.trim() || 'OT'),
      ...(x.seriesDescription ? { description: x.seriesDescription } : {}),
      numberOfInstances: x.instances.length,
      ...(x.bodyPartExamined
        ? { bodySite: { system: SYSTEMS.dcm, code: x.bodyPartExamined.trim(), display: x.bodyPartExamined.trim() } }
        : {}),
      instance: x.instances.map((i) => ({
        uid: i.sopInstanceUid,
        sopClass: { system: SYSTEMS.rfc3986, code: `urn:oid:${i.sopClassUid}` },
        ...(i.instanceNumber !== null ? { number: i.instanceNumber } : {}),
      })),
    })),
  };
}

/** A report's state as DiagnosticReport/Observation status: the AI draft is preliminary until signed. */
export function fhirStatus(state: ReportState): 'preliminary' | 'final' | 'amended' {
  return state === 'final' ? 'final' : state === 'amended' ? 'amended' : 'preliminary';
}

/** The report states a DiagnosticReport status search stands for. */
export function statesOf(status: string): ReportState[] {
  switch (status) {
    case 'preliminary':
      return ['draft', 'preliminary'];
    case 'final':
      return ['final'];
    case 'amended':
      return ['amended'];
    default:
      return [];
  }
}

/** The FHIR id of the AI model's Device: its Device Observer UID (the SR's), stable per model SHA-256. */
export const deviceId = (a: Pick<ReportAlgorithm, 'deviceUid'>): string => a.deviceUid;

export function deviceResource(a: ReportAlgorithm): fhir4.Device {
  return {
    resourceType: 'Device',
    id: deviceId(a),
    identifier: a.sha256
      ? [{ system: SYSTEMS.modelSha256, value: a.sha256 }]
      : [{ system: SYSTEMS.rfc3986, value: `urn:oid:${a.deviceUid}` }],
    status: 'active',
    deviceName: [{ name: a.name, type: 'model-name' }],
    type: { text: 'AI model (MedGemma) for imaging decision support' },
    version: [
      { type: { text: 'node software' }, value: a.version },
      ...(a.quantization ? [{ type: { text: 'quantization' }, value: a.quantization }] : []),
    ],
    note: [{ text: a.validated ? `Validated model: ${a.validation}` : `UNVALIDATED model: ${a.validation}` }],
  };
}

export interface ReportRefs {
  patient: string;
  imagingStudy: string;
  device: string;
  /** The reference to the Observation of a finding. */
  observation(f: ReportFinding): string;
}

/**
 * The FHIR id of a finding's Observation on this node: report id and the finding's number in the
 * published version. Its identifier is the finding's tracking UID, the same in every version.
 */
export const observationId = (reportId: number, f: Pick<ReportFinding, 'number'>): string => `${reportId}-${f.number}`;

const ucumQuantity = (value: number, unit: string): fhir4.Quantity => ({ value, unit, system: SYSTEMS.ucum, code: unit });

export function observationResource(c: ReportContent, f: ReportFinding, refs: ReportRefs): fhir4.Observation {
  const status = fhirStatus(c.state);
  const effective = fhirDate(c.study.studyDate);
  const components: fhir4.ObservationComponent[] = [];
  if (f.confidence !== null)
    components.push({
      code: concept({ value: '111012', scheme: 'DCM', meaning: 'Certainty of Finding' }, 'AI model confidence (0–1)'),
      valueQuantity: ucumQuantity(f.confidence, '1'),
    });
  const lat = lateralityCode(f.laterality);
  if (lat)
    components.push({ code: concept({ value: '272741003', scheme: 'SCT', meaning: 'Laterality' }), valueCodeableConcept: concept(lat) });
  const sev = severityCode(f.severity);
  if (sev)
    components.push({ code: concept({ value: '246112005', scheme: 'SCT', meaning: 'Severity' }), valueCodeableConcept: concept(sev) });
  for (const m of c.measurements.filter((x) => x.findingNumber === f.number))
    components.push({ code: concept(quantityCode(m.quantity), m.quantity), valueQuantity: ucumQuantity(m.value, m.unit) });
  const notes: fhir4.Annotation[] = [];
  if (status === 'preliminary') notes.push({ text: 'AI-generated finding, an unverified draft until a radiologist signs the report.' });
  if (f.recommendation) notes.push({ text: `Recommendation: ${f.recommendation}` });
  for (const x of f.safetyFlags ?? []) notes.push({ text: `AI safety flag ${x.rule}: ${x.phrase}` });
  return {
    resourceType: 'Observation',
    id: observationId(c.reportId, f),
    identifier: [{ system: SYSTEMS.rfc3986, value: `urn:oid:${f.trackingUid}` }],
    status,
    category: [{ coding: [{ system: SYSTEMS.observationCategory, code: 'imaging', display: 'Imaging' }] }],
    code: concept({ value: '121071', scheme: 'DCM', meaning: 'Finding' }),
    subject: { reference: refs.patient },
    ...(effective ? { effectiveDateTime: effective } : {}),
    issued: new Date(c.createdAt).toISOString(),
    // The model's (or the radiologist's) words, verbatim.
    valueString: f.description,
    ...(f.anatomicalLocation?.trim() ? { bodySite: { text: f.anatomicalLocation.trim() } } : {}),
    ...(notes.length ? { note: notes } : {}),
    device: { reference: refs.device },
    derivedFrom: [{ reference: refs.imagingStudy }],
    ...(components.length ? { component: components } : {}),
  };
}

export interface ReportForm {
  /** The Encapsulated PDF's document: a URL to fetch it, or its bytes inline. */
  pdf?: { url: string } | { data: Buffer };
  /** The DICOM SR (Part 10). */
  sr?: { url: string } | { data: Buffer };
}

function attachment(
  kind: 'application/pdf' | 'application/dicom',
  src: { url: string } | { data: Buffer },
  title: string,
  creation: string,
): fhir4.Attachment {
  return {
    contentType: kind,
    ...('url' in src ? { url: src.url } : { data: src.data.toString('base64'), size: src.data.length }),
    title,
    creation,
  };
}

export function diagnosticReportResource(
  id: string,
  identifierUid: string,
  c: ReportContent,
  refs: ReportRefs,
  form: ReportForm,
): fhir4.DiagnosticReport {
  const issued = new Date(c.createdAt).toISOString();
  const effective = fhirDate(c.study.studyDate);
  const who = c.node.institutionName ?? `RadiantAI node ${c.node.aeTitle}`;
  const presentedForm: fhir4.Attachment[] = [];
  if (form.pdf) presentedForm.push(attachment('application/pdf', form.pdf, `Report ${c.reportId} v${c.version} (PDF)`, issued));
  if (form.sr) presentedForm.push(attachment('application/dicom', form.sr, `Report ${c.reportId} v${c.version} (DICOM SR)`, issued));
  return {
    resourceType: 'DiagnosticReport',
    id,
    identifier: [{ system: SYSTEMS.rfc3986, value: `urn:oid:${identifierUid}` }],
    status: fhirStatus(c.state),
    category: [{ coding: [{ system: SYSTEMS.v2_0074, code: 'RAD', display: 'Radiology' }] }],
    code: concept(procedureCode(c.modality, c.bodyPart), c.procedure),
    subject: { reference: refs.patient },
    ...(effective ? { effectiveDateTime: effective } : {}),
    issued,
    performer: [{ type: 'Organization', display: who }],
    ...(c.signer ? { resultsInterpreter: [{ type: 'Practitioner', display: c.signer.display ?? c.signer.name }] } : {}),
    result: c.findings.map((f) => ({ reference: refs.observation(f) })),
    imagingStudy: [{ reference: refs.imagingStudy }],
    conclusion: c.impression,
    ...(presentedForm.length ? { presentedForm } : {}),
  };
}
