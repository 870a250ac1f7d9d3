import { expect } from 'chai';
import { dateRange, parseDate, parseToken, referenceId, searchset } from '../../src/fhir/bundles.js';
import {
  diagnosticReportResource,
  fhirStatus,
  humanName,
  issuerOfSystem,
  observationResource,
  patientIdentifier,
  patientResource,
  type ReportRefs,
} from '../../src/fhir/resources.js';
import type { ReportContent } from '../../src/reports/content.js';
import { fhirSchemaErrors } from '../helpers/fhir.js';

/** The FHIR mapping (src/fhir/resources.ts, bundles.ts): pure functions, checked against the official R4 JSON schema. */

const finding: ReportContent['findings'][number] = {
  number: 1,
  trackingUid: '2.25.1234',
  description: 'Small rounded opacity, possibly a nodule.',
  anatomicalLocation: 'right upper lobe',
  laterality: 'right',
  category: 'abnormal',
  severity: 'mild',
  confidence: 0.6,
  images: [],
  region: null,
  recommendation: 'Follow-up CT may be considered.',
  safetyFlags: [{ rule: 'certainty', phrase: 'definitely' }],
};

const content = (state: ReportContent['state']): ReportContent => ({
  reportId: 7,
  version: 1,
  state,
  patient: { name: 'Doe^Jane', id: 'P1', issuer: null, birthDate: '19700101', sex: 'F' },
  study: {
    studyInstanceUid: '1.2.3',
    accessionNumber: 'A1',
    studyDate: '20240501',
    studyTime: '101500',
    studyId: null,
    studyDescription: 'CT chest',
    referringPhysicianName: null,
    specificCharacterSet: null,
  },
  procedure: 'CT chest',
  modality: 'CT',
  bodyPart: 'CHEST',
  clinicalIndication: null,
  technique: 't',
  findings: [finding],
  measurements: [{ findingNumber: 1, quantity: 'long axis', value: 8, unit: 'mm' }],
  impression: 'Possible small nodule.',
  comparison: null,
  limitations: null,
  imageLibrary: [],
  algorithm: {
    name: 'tiny.gguf',
    version: 'RADIANT_0.1',
    sha256: 'a'.repeat(64),
    quantization: null,
    backend: 'remote',
    promptTemplate: null,
    deviceUid: '2.25.99',
    validated: false,
    validation: 'not in the allowlist',
  },
  node: { aeTitle: 'RADIANT', institutionName: null, softwareVersion: 'RADIANT_0.1', manufacturer: 'RadiantAI' },
  signer:
    state === 'final'
      ? { name: 'Doe^John^^^MD', display: 'John Doe, MD', username: 'jd', organization: 'x', at: '2024-05-02T10:00:00.000Z' }
      : null,
  amendmentReason: null,
  disclaimer: '',
  predecessors: [],
  createdAt: '2024-05-02T10:00:00.000Z',
});

const refs: ReportRefs = {
  patient: 'Patient/1',
  imagingStudy: 'ImagingStudy/1.2.3',
  device: 'Device/2.25.99',
  observation: (f) => `Observation/7-${f.number}`,
};

describe('FHIR mapping', function () {
  // Compiling the R4 schema takes a few seconds of CPU, once.
  this.timeout(60_000);
  before(() => fhirSchemaErrors({ resourceType: 'Patient' }));

  it('Patient: identifier with its issuer as system, PN as HumanName, DA as date; valid R4', () => {
    const p = patientResource('1', { patientId: 'P1', issuer: '1.2.840.99', name: 'Doe^Jane^Q^Dr', birthDate: '19700101', sex: 'F' });
    expect(p.identifier![0]).to.include({ system: 'urn:oid:1.2.840.99', value: 'P1' });
    expect(p.name).to.deep.equal([{ use: 'official', family: 'Doe', given: ['Jane', 'Q'], prefix: ['Dr'] }]);
    expect(p).to.include({ birthDate: '1970-01-01', gender: 'female' });
    expect(fhirSchemaErrors(p)).to.deep.equal([]);
    expect(issuerOfSystem(patientIdentifier('X', 'Main Hospital').system!)).to.equal('Main Hospital');
    expect(issuerOfSystem(patientIdentifier('X', null).system!)).to.equal('');
    expect(issuerOfSystem('http://other')).to.equal(undefined);
    expect(humanName(null)).to.deep.equal([]);
  });

  it('report state → status: draft and preliminary are preliminary, final, amended', () => {
    expect(['draft', 'preliminary', 'final', 'amended'].map((s) => fhirStatus(s as ReportContent['state']))).to.deep.equal([
      'preliminary',
      'preliminary',
      'final',
      'amended',
    ]);
  });

  it('Observation: the finding verbatim, body site, confidence as UCUM "1", laterality and severity in SNOMED; valid R4', () => {
    const o = observationResource(content('draft'), finding, refs);
    expect(o).to.include({ id: '7-1', status: 'preliminary', valueString: finding.description });
    expect(o.bodySite).to.deep.equal({ text: 'right upper lobe' });
    expect(o.component![0]!.valueQuantity).to.deep.equal({ value: 0.6, unit: '1', system: 'http://unitsofmeasure.org', code: '1' });
    expect(o.component![1]!.valueCodeableConcept!.coding![0]).to.include({ system: 'http://snomed.info/sct', code: '24028007' });
    expect(o.component!.some((c) => c.valueQuantity?.unit === 'mm' && c.code.coding?.[0]?.code === '103339001')).to.equal(true);
    expect(o.note!.map((n) => n.text).join(' ')).to.match(/unverified draft.*Follow-up.*certainty: definitely/);
    expect(o.derivedFrom).to.deep.equal([{ reference: 'ImagingStudy/1.2.3' }]);
    expect(o.device).to.deep.equal({ reference: 'Device/2.25.99' });
    expect(fhirSchemaErrors(o)).to.deep.equal([]);
  });

  it('DiagnosticReport: LOINC procedure, impression as conclusion, PDF inline, interpreter once signed; valid R4', () => {
    const dr = diagnosticReportResource('7', '2.25.5', content('final'), refs, { pdf: { data: Buffer.from('%PDF-1.4') } });
    expect(dr).to.include({ status: 'final', conclusion: 'Possible small nodule.', effectiveDateTime: '2024-05-01' });
    expect(dr.code.coding![0]).to.deep.equal({ system: 'http://loinc.org', code: '24627-2', display: 'CT Chest' });
    expect(dr.presentedForm![0]).to.include({ contentType: 'application/pdf', data: Buffer.from('%PDF-1.4').toString('base64') });
    expect(dr.resultsInterpreter![0]!.display).to.equal('John Doe, MD');
    expect(dr.result).to.deep.equal([{ reference: 'Observation/7-1' }]);
    expect(fhirSchemaErrors(dr)).to.deep.equal([]);
    const draft = diagnosticReportResource('7', '2.25.5', content('draft'), refs, {});
    expect(draft.status).to.equal('preliminary');
    expect(draft.resultsInterpreter).to.equal(undefined);
  });

  it('search values: date prefixes as DA ranges, tokens, references; paging links', () => {
    expect(parseDate('d', '2024-05-01')).to.deep.equal({ from: '20240501', to: '20240501' });
    expect(parseDate('d', 'ge2024-05')).to.deep.equal({ from: '20240501' });
    expect(parseDate('d', 'le2024-02')).to.deep.equal({ to: '20240229' });
    expect(parseDate('d', 'gt2024-12-31')).to.deep.equal({ from: '20250101' });
    expect(parseDate('d', 'lt2024')).to.deep.equal({ to: '20231231' });
    expect(dateRange('d', ['ge2024-01-01', 'le2024-06-30'])).to.deep.equal({ from: '20240101', to: '20240630' });
    expect(() => parseDate('d', 'yesterday')).to.throw(/not a FHIR date/);
    expect(parseToken('urn:dicom:uid|urn:oid:1.2')).to.deep.equal({ system: 'urn:dicom:uid', value: 'urn:oid:1.2' });
    expect(parseToken('A1')).to.deep.equal({ value: 'A1' });
    expect(referenceId('patient', 'Patient', 'Patient/12')).to.equal('12');
    expect(referenceId('patient', 'Patient', '12')).to.equal('12');
    expect(() => referenceId('patient', 'Patient', 'Group/1')).to.throw(/not a reference/);
    const b = searchset('http://n/fhir', 'Patient', [['name', 'doe']], { count: 2, offset: 0 }, 5, []);
    expect(b.link!.map((l) => l.url)).to.deep.equal([
      'http://n/fhir/Patient?name=doe&_count=2',
      'http://n/fhir/Patient?name=doe&_count=2&_offset=2',
    ]);
    expect(fhirSchemaErrors(b)).to.deep.equal([]);
  });
});
