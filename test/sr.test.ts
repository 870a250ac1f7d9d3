import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import dcmjs, { type NaturalizedDataset } from 'dcmjs';
import { AI_DISCLAIMER, type ImageRef, type ReportContent } from '../src/reports/content.js';
import { buildStructuredReport, COMPREHENSIVE_3D_SR_SOP_CLASS, type SrIds } from '../src/reports/sr/sr-builder.js';
import { newUid, uidFromNames } from '../src/dicom/new-uid.js';
import { isValidUid } from '../src/dicom/uids.js';
import { RadiantError } from '../src/errors.js';

const { DicomMessage, DicomMetaDictionary } = dcmjs.data;

const CT_IMAGE = '1.2.840.10008.5.1.4.1.1.2';
const SR_CLASS = COMPREHENSIVE_3D_SR_SOP_CLASS;
const HOSTILE = '<script>alert(1)</script>';

/** A realistic two-series CT study: 6 axial slices and 2 reformats, all UIDs fresh. */
export function makeContent(state: ReportContent['state']): ReportContent {
  const studyUid = newUid();
  const axial = newUid();
  const coronal = newUid();
  const slice = (series: string): ImageRef => ({
    sopClassUid: CT_IMAGE,
    sopInstanceUid: newUid(),
    seriesInstanceUid: series,
    rows: 512,
    columns: 512,
  });
  const library = [...Array.from({ length: 6 }, () => slice(axial)), slice(coronal), slice(coronal)];
  const signed = state === 'final' || state === 'amended';
  return {
    reportId: 42,
    version: signed ? 2 : 1,
    state,
    patient: { name: 'Müller^Zoë', id: 'PID-0042', issuer: 'HOSP-A', birthDate: '19640229', sex: 'F' },
    study: {
      studyInstanceUid: studyUid,
      accessionNumber: 'ACC123',
      studyDate: '20261124',
      studyTime: '101530',
      studyId: 'S1',
      studyDescription: 'CT Thorax',
      referringPhysicianName: `Doe^${HOSTILE}`,
      specificCharacterSet: 'ISO_IR 100',
    },
    procedure: 'CT chest',
    modality: 'CT',
    clinicalIndication: 'Cough for 6 weeks',
    technique: 'Non-contrast CT of the chest, 1 mm slices.',
    findings: [
      {
        number: 1,
        trackingUid: newUid(),
        description: `Solid nodule in the right lower lobe ${HOSTILE}`,
        anatomicalLocation: 'right lower lobe',
        laterality: 'right',
        category: 'abnormal',
        severity: 'moderate',
        confidence: 0.82,
        images: [library[2]!],
        region: { image: library[2]!, box: [120.5, 200, 160, 236.25] },
        recommendation: 'Follow-up CT in 3 months.',
      },
      {
        number: 2,
        trackingUid: newUid(),
        description: 'Small left pleural effusion.',
        anatomicalLocation: 'left pleural space',
        laterality: 'left',
        category: 'abnormal',
        severity: 'mild',
        confidence: 0.64,
        images: [library[4]!, library[6]!],
        region: null,
        recommendation: null,
      },
    ],
    measurements: [
      { findingNumber: 1, quantity: 'Long axis diameter', value: 14.2, unit: 'mm' },
      { findingNumber: 1, quantity: 'Volume', value: 1.37, unit: 'cm3' },
      { findingNumber: 2, quantity: 'Depth', value: 8, unit: 'mm' },
      { findingNumber: null, quantity: 'Mean attenuation', value: -812, unit: "[hnsf'U]" },
    ],
    impression: `1. Right lower lobe nodule, 14 mm. 2. Small left effusion. ${HOSTILE}`,
    comparison: 'None available.',
    limitations: 'Motion artefact at the lung bases.',
    imageLibrary: library,
    algorithm: {
      name: 'medgemma-4b-it-Q4_K_M.gguf',
      version: '0.1.0',
      sha256: 'a'.repeat(32) + 'b'.repeat(32),
      quantization: 'Q4_K_M',
      backend: 'llama.cpp cpu',
      promptTemplate: 'chest-ct-v1',
      deviceUid: uidFromNames('model', 'a'.repeat(32) + 'b'.repeat(32)),
      validated: true,
      validation: 'SHA-256 listed in MEDGEMMA_TRUSTED_SHA256',
    },
    node: { aeTitle: 'RADIANT', institutionName: 'Hôpital Général', softwareVersion: '0.1.0', manufacturer: 'RadiantAI' },
    signer: signed ? { name: 'Šimić^Ana^^Dr.', username: 'asimic', organization: 'Radiology Dept', at: '2026-11-25T09:30:00Z' } : null,
    amendmentReason: state === 'amended' ? 'Corrected laterality.' : null,
    disclaimer: AI_DISCLAIMER,
    predecessors: signed ? [{ sopClassUid: SR_CLASS, sopInstanceUid: newUid(), seriesInstanceUid: newUid() }] : [],
    createdAt: '2026-11-25T09:00:00Z',
  };
}

export function ids(n: number): SrIds {
  return {
    sopInstanceUid: newUid(),
    seriesInstanceUid: newUid(),
    seriesNumber: 9000 + n,
    instanceNumber: n,
    contentDateTime: new Date('2026-11-25T09:31:02.123Z'),
  };
}

let tmp: string;
before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'radiant-sr-'));
});
after(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

async function writeTmp(name: string, bytes: Buffer): Promise<string> {
  const p = path.join(tmp, `${name}.dcm`);
  await fs.writeFile(p, bytes);
  return p;
}

function tool(cmd: string, args: string[]): { status: number | null; output: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) throw new Error(`${cmd} must be on PATH: ${r.error.message}`);
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

/** Naturalized dataset of a built SR, read back with dcmjs. */
function readBack(bytes: Buffer): { meta: NaturalizedDataset; ds: NaturalizedDataset } {
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  const file = DicomMessage.readFile(ab);
  return { meta: DicomMetaDictionary.naturalizeDataset(file.meta), ds: DicomMetaDictionary.naturalizeDataset(file.dict) };
}

/** Items of a naturalized sequence (dcmjs unwraps nothing for SQ, but be explicit). */
function seq(v: unknown): NaturalizedDataset[] {
  if (v === undefined || v === null) return [];
  expect(v, 'sequence').to.be.an('array');
  return v as NaturalizedDataset[];
}

function conceptMeaning(item: NaturalizedDataset): string | undefined {
  return seq(item.ConceptNameCodeSequence)[0]?.CodeMeaning as string | undefined;
}

/** Depth-first walk of the content tree. */
function walk(items: NaturalizedDataset[], visit: (item: NaturalizedDataset, depth: number) => void, depth = 1): void {
  for (const item of items) {
    visit(item, depth);
    walk(seq(item.ContentSequence), visit, depth + 1);
  }
}

function findAll(root: NaturalizedDataset, meaning: string): NaturalizedDataset[] {
  const found: NaturalizedDataset[] = [];
  walk(seq(root.ContentSequence), (item) => {
    if (conceptMeaning(item) === meaning) found.push(item);
  });
  return found;
}

function dciodvfy(file: string): { output: string; errors: string[]; warnings: string[] } {
  const { output } = tool('dciodvfy', [file]);
  const lines = output.split('\n');
  return {
    output,
    errors: lines.filter((l) => /^\s*Error/.test(l)),
    warnings: lines.filter((l) => /^\s*Warning/.test(l)),
  };
}

describe('DICOM-SR writer (TID 1500, Comprehensive 3D SR)', () => {
  const draft = makeContent('draft');
  const draftIds = ids(1);
  const final = makeContent('final');
  const finalIds = ids(2);
  let draftBytes: Buffer;
  let finalBytes: Buffer;
  let draftPath: string;
  let finalPath: string;

  before(async () => {
    draftBytes = buildStructuredReport(draft, draftIds);
    finalBytes = buildStructuredReport(final, finalIds);
    draftPath = await writeTmp('draft', draftBytes);
    finalPath = await writeTmp('final', finalBytes);
  });

  describe('dsrdump (DCMTK) parses the document and shows the tree', () => {
    function dump(file: string): string {
      const r = tool('dsrdump', ['+U8', '+Pt', '+Pc', '+Pl', '+Pu', file]);
      expect(r.status, r.output).to.equal(0);
      expect(r.output, 'dsrdump reported no error').not.to.match(/^E: /m);
      return r.output;
    }

    it('draft: Comprehensive 3D SR, TID 1500 root, UNVERIFIED/PARTIAL, device observer, groups, values', () => {
      const out = dump(draftPath);
      expect(out).to.include('Comprehensive 3D SR Document');
      expect(out).to.match(/<CONTAINER:\(126000,DCM,"Imaging Measurement Report"\)=SEPARATE>\s+# TID 1500 \(DCMR\)/);
      expect(out).to.match(/Completion Flag\s+: PARTIAL/);
      expect(out).to.match(/Verification Flag\s+: UNVERIFIED/);
      expect(out).to.include('<has obs context CODE:(121005,DCM,"Observer Type")=(121007,DCM,"Device")>');
      expect(out).to.include(`<has obs context UIDREF:(121012,DCM,"Device Observer UID")="${draft.algorithm.deviceUid}">`);
      expect(out).to.include('<has obs context TEXT:(121014,DCM,"Device Observer Manufacturer")="RadiantAI">');
      expect(out).to.include(`<has obs context TEXT:(121015,DCM,"Device Observer Model Name")="${draft.algorithm.name}">`);
      expect(out).to.include(`<has obs context TEXT:(121016,DCM,"Device Observer Serial Number")="${draft.algorithm.sha256}">`);
      // Finding 1 has a box: tracked under the name of the Cornerstone3D tool that draws it, so OHIF can load it (issue 16).
      expect(out).to.include(
        '<has obs context TEXT:(112039,DCM,"Tracking Identifier")="Cornerstone3DTools@^0.1.0:RectangleROI:Finding 1">',
      );
      expect(out).to.include('<has obs context TEXT:(112039,DCM,"Tracking Identifier")="Finding 2">');
      for (const f of draft.findings) {
        expect(out).to.include(`<has obs context UIDREF:(112040,DCM,"Tracking Unique Identifier")="${f.trackingUid}">`);
      }
      expect(out).to.match(/<contains NUM:\(103339001,SCT,"Long Axis"\)="14.2" \(mm,UCUM,"millimeter"\)>/);
      expect(out).to.match(/<contains NUM:\(118565006,SCT,"Volume"\)="1.37" \(cm3,UCUM,"cubic centimeter"\)>/);
      expect(out).to.match(/<contains NUM:\(112031,DCM,"Attenuation Coefficient"\)="-812" \(\[hnsf'U\],UCUM,"Hounsfield unit"\)>/);
      // The model's confidence on its own 0–1 scale, dimensionless (issue 16: was a percentage).
      expect(out).to.match(/<contains NUM:\(111012,DCM,"Certainty of Finding"\)="0.82" \(1,UCUM,"no units"\)>/);
      // Each measurement of the boxed finding is inferred from its region (where OHIF's adapters read it).
      expect(out).to.match(
        /"Certainty of Finding"\)="0.82" \(1,UCUM,"no units"\)>\s+<inferred from SCOORD:\(111030,DCM,"Image Region"\)=\(POLYLINE,/,
      );
      expect(out).to.include('<contains NUM:(131197000,SCT,"Depth")="8" (mm,UCUM,"millimeter")>');
      expect(out).to.include('<contains CODE:(246112005,SCT,"Severity")=(6736007,SCT,"Moderate")>');
      expect(out).to.include('<has concept mod CODE:(272741003,SCT,"Laterality")=(24028007,SCT,"Right")>');
      // The region of finding 1: a closed box on its image.
      expect(out).to.match(
        /<contains SCOORD:\(111030,DCM,"Image Region"\)=\(POLYLINE,120.5\/200,160\/200,160\/236.25,120.5\/236.25,120.5\/200\)>/,
      );
      expect(out).to.include(
        `<selected from IMAGE:(111040,DCM,"Original Source")=(CT image,"${draft.findings[0]!.images[0]!.sopInstanceUid}")>`,
      );
      // Finding 2 has no region: its images are the group's sources.
      expect(out).to.include(`<contains IMAGE:(260753009,SCT,"Source")=(CT image,"${draft.findings[1]!.images[0]!.sopInstanceUid}")>`);
      // The hostile and non-ASCII text is data, kept whole.
      // Finding is a CODE (TID 1501): the model's words as a local code's meaning.
      expect(out).to.match(
        /<contains CODE:\(121071,DCM,"Finding"\)=\(F[0-9A-F]{8},99RADIANT,"Solid nodule in the right lower lobe <script>alert\(1\)<\/script>"\)>/,
      );
      expect(out).to.include('Müller^Zoë');
      expect(out).to.include(`<contains TEXT:(121106,DCM,"Comment")="${AI_DISCLAIMER}">`);
      // Image library: every analysed instance is listed.
      for (const ref of draft.imageLibrary) expect(out).to.include(`<contains IMAGE:=(CT image,"${ref.sopInstanceUid}")>`);
    });

    it('final: VERIFIED/COMPLETE with the verifying observer and the predecessor', () => {
      const out = dump(finalPath);
      expect(out).to.match(/Completion Flag\s+: COMPLETE/);
      expect(out).to.match(/Verification Flag\s+: VERIFIED/);
      expect(out).to.match(/Verifying Observers : 2026-11-25 09:30:00 \+00:00, Šimić\^Ana\^\^Dr\., Radiology Dept/);
      expect(out).to.match(/Predecessor Docs\s+: 1/);
      expect(out).to.include('<has obs context PNAME:(121008,DCM,"Person Observer Name")="Šimić^Ana^^Dr.">');
    });

    it('dsr2xml round trip: the XML carries the tree, and xml2dsr reads it back', async () => {
      const r0 = spawnSync('dsr2xml', ['+U8', finalPath], { encoding: 'utf8' });
      const x = { status: r0.status, output: r0.stdout };
      expect(x.status, r0.stderr).to.equal(0);
      expect(x.output).to.include('<value>Cornerstone3DTools@^0.1.0:RectangleROI:Finding 1</value>');
      expect(x.output).to.include('&lt;script&gt;alert(1)&lt;/script&gt;');
      const xmlPath = path.join(tmp, 'final.xml');
      await fs.writeFile(xmlPath, x.output);
      const back = path.join(tmp, 'final-back.dcm');
      const r = tool('xml2dsr', [xmlPath, back]);
      expect(r.status, r.output).to.equal(0);
      const out = tool('dsrdump', ['+U8', back]).output;
      expect(out).to.include('"Tracking Identifier"');
    });
  });

  describe('dciodvfy (dicom3tools) finds no errors', () => {
    for (const which of ['draft', 'final'] as const) {
      it(`${which} verifies as Comprehensive3DSR`, () => {
        const r = dciodvfy(which === 'draft' ? draftPath : finalPath);
        expect(r.output).to.match(/Comprehensive3DSR/);
        expect(r.errors, r.output).to.deep.equal([]);
      });
    }

    it('does report errors (so the check above can fail)', async () => {
      const ab = draftBytes.buffer.slice(draftBytes.byteOffset, draftBytes.byteOffset + draftBytes.byteLength) as ArrayBuffer;
      const file = DicomMessage.readFile(ab);
      delete file.dict['0040A491']; // CompletionFlag
      delete file.dict['0040A493']; // VerificationFlag
      const p = await writeTmp('broken', Buffer.from(file.write()));
      const r = dciodvfy(p);
      expect(r.errors.join('\n')).to.include('CompletionFlag').and.to.include('VerificationFlag');
    });
  });

  describe('dcmjs reads the modules back', () => {
    it('draft: same patient and study, a new SR series, PARTIAL/UNVERIFIED, no verifier', () => {
      const { meta, ds } = readBack(draftBytes);
      expect(meta.TransferSyntaxUID).to.equal('1.2.840.10008.1.2.1');
      expect(meta.MediaStorageSOPClassUID).to.equal(SR_CLASS);
      expect(ds.SOPClassUID).to.equal(SR_CLASS);
      expect(ds.SOPInstanceUID).to.equal(draftIds.sopInstanceUid);
      expect(ds.StudyInstanceUID).to.equal(draft.study.studyInstanceUid);
      expect(ds.SeriesInstanceUID).to.equal(draftIds.seriesInstanceUid);
      expect(ds.SeriesNumber).to.equal(draftIds.seriesNumber);
      expect(ds.InstanceNumber).to.equal(draftIds.instanceNumber);
      expect(ds.Modality).to.equal('SR');
      // Issue 16: which report and version, draft or signed, and when; unique per report and version.
      expect(ds.SeriesDescription).to.match(/^AI DRAFT - not reviewed - R42 v1 2026-11-25$/);
      expect(ds.Manufacturer).to.equal('RadiantAI');
      // Non-ASCII text is written as UTF-8, so the set must say so even though the source was Latin-1.
      expect(ds.SpecificCharacterSet).to.equal('ISO_IR 192');
      expect(seq(ds.PatientName)[0]).to.deep.equal({ Alphabetic: 'Müller^Zoë' });
      expect(seq(ds.ReferringPhysicianName)[0]).to.deep.equal({ Alphabetic: `Doe^${HOSTILE}` });
      expect(ds.PatientID).to.equal('PID-0042');
      expect(ds.IssuerOfPatientID).to.equal('HOSP-A');
      expect(ds.PatientBirthDate).to.equal('19640229');
      expect(ds.PatientSex).to.equal('F');
      expect(ds.StudyDate).to.equal('20261124');
      expect(ds.StudyTime).to.equal('101530');
      expect(ds.AccessionNumber).to.equal('ACC123');
      expect(ds.StudyID).to.equal('S1');
      expect(ds.CompletionFlag).to.equal('PARTIAL');
      expect(ds.VerificationFlag).to.equal('UNVERIFIED');
      expect(ds.PreliminaryFlag).to.equal('PRELIMINARY');
      expect(ds.VerifyingObserverSequence).to.equal(undefined);
      expect(ds.PredecessorDocumentsSequence).to.equal(undefined);
      expect(ds.ContentDate).to.equal('20261125');
      expect(ds.ContentTime).to.equal('093102.123');
      expect(seq(ds.ContentTemplateSequence)[0]).to.include({ MappingResource: 'DCMR', TemplateIdentifier: '1500' });
    });

    it('evidence lists every referenced instance, study → series → SOP', () => {
      const { ds } = readBack(draftBytes);
      const evidence = seq(ds.CurrentRequestedProcedureEvidenceSequence);
      expect(evidence).to.have.length(1);
      expect(evidence[0]!.StudyInstanceUID).to.equal(draft.study.studyInstanceUid);
      const series = seq(evidence[0]!.ReferencedSeriesSequence);
      const bySeries = new Map(series.map((s) => [s.SeriesInstanceUID as string, seq(s.ReferencedSOPSequence)]));
      const expected = new Map<string, Set<string>>();
      for (const r of draft.imageLibrary) {
        expected.set(r.seriesInstanceUid, (expected.get(r.seriesInstanceUid) ?? new Set()).add(r.sopInstanceUid));
      }
      expect([...bySeries.keys()].sort()).to.deep.equal([...expected.keys()].sort());
      for (const [s, sops] of expected) {
        const got = bySeries.get(s)!;
        expect(got.map((x) => x.ReferencedSOPInstanceUID).sort()).to.deep.equal([...sops].sort());
        for (const x of got) expect(x.ReferencedSOPClassUID).to.equal(CT_IMAGE);
      }
    });

    it('final: COMPLETE/VERIFIED with verifier, predecessor and signed description', () => {
      const { ds } = readBack(finalBytes);
      expect(ds.StudyInstanceUID).to.equal(final.study.studyInstanceUid);
      expect(ds.CompletionFlag).to.equal('COMPLETE');
      expect(ds.VerificationFlag).to.equal('VERIFIED');
      expect(ds.PreliminaryFlag).to.equal('FINAL');
      expect(ds.SeriesDescription).to.equal('Signed report - R42 v2 2026-11-25');
      const v = seq(ds.VerifyingObserverSequence);
      expect(v).to.have.length(1);
      // dcmjs decodes text inside sequences as Latin-1 whatever the character set, so the
      // non-ASCII name is checked with dsrdump above; here only that it is there.
      expect(seq(v[0]!.VerifyingObserverName)).to.have.length(1);
      expect(v[0]!.VerifyingOrganization).to.equal('Radiology Dept');
      expect(String(v[0]!.VerificationDateTime).trimEnd(), 'DT (padded to even length)').to.equal('20261125093000.000+0000');
      const pred = seq(ds.PredecessorDocumentsSequence);
      expect(pred).to.have.length(1);
      expect(pred[0]!.StudyInstanceUID).to.equal(final.study.studyInstanceUid);
      const ps = seq(pred[0]!.ReferencedSeriesSequence);
      expect(ps).to.have.length(1);
      expect(ps[0]!.SeriesInstanceUID).to.equal(final.predecessors[0]!.seriesInstanceUid);
      const sop = seq(ps[0]!.ReferencedSOPSequence);
      expect(sop.map((s) => [s.ReferencedSOPClassUID, s.ReferencedSOPInstanceUID])).to.deep.equal([
        [SR_CLASS, final.predecessors[0]!.sopInstanceUid],
      ]);
    });

    it('contributing equipment names the model and the node', () => {
      const { ds } = readBack(finalBytes);
      const eq = seq(ds.ContributingEquipmentSequence);
      expect(eq).to.have.length(2);
      const model = eq.find((e) => e.ManufacturerModelName === final.algorithm.name)!;
      expect(model, 'model item').to.not.equal(undefined);
      expect(model.Manufacturer).to.equal('RadiantAI');
      expect(model.SoftwareVersions).to.equal(final.algorithm.version);
      expect(model.DeviceSerialNumber).to.equal(final.algorithm.sha256);
      expect(seq(model.PurposeOfReferenceCodeSequence)[0]).to.include({ CodeValue: '109102', CodingSchemeDesignator: 'DCM' });
      const node = eq.find((e) => e !== model)!;
      expect(node.StationName).to.equal('RADIANT');
      expect(node.InstitutionName, 'present (its UTF-8 is checked with dcmdump below)').to.be.a('string');
      expect(tool('dcmdump', ['+U8', '+P', '0018,a001', finalPath]).output).to.include('[Hôpital Général]');
    });

    it('content tree: one measurement group per finding, text kept verbatim as UT', () => {
      const { ds } = readBack(draftBytes);
      const groups = findAll(ds, 'Measurement Group');
      // Two findings plus the group of the measurement with no finding.
      expect(groups).to.have.length(3);
      const ids = groups.map((g) => seq(g.ContentSequence).find((i) => conceptMeaning(i) === 'Tracking Identifier')?.TextValue);
      expect(ids).to.deep.equal(['Cornerstone3DTools@^0.1.0:RectangleROI:Finding 1', 'Finding 2', 'Unassigned measurements']);
      const impression = findAll(ds, 'Impression')[0]!;
      expect(impression.ValueType).to.equal('TEXT');
      expect(impression.TextValue).to.equal(draft.impression);
      const finding = findAll(ds, 'Finding')[0]!;
      expect(finding.ValueType).to.equal('CODE');
      expect(seq(finding.ConceptCodeSequence)[0]!.CodeMeaning).to.equal(draft.findings[0]!.description);
      const site = findAll(ds, 'Finding Site')[0]!;
      expect(site.ValueType).to.equal('CODE');
      expect(seq(site.ConceptCodeSequence)[0]!.CodeMeaning).to.equal(draft.findings[0]!.anatomicalLocation);
      expect(findAll(ds, 'Limitations')[0]!.TextValue).to.equal(draft.limitations);
      // The one private code is declared (PS3.3 C.12.1.1.7).
      expect(seq(ds.CodingSchemeIdentificationSequence).map((x) => x.CodingSchemeDesignator)).to.deep.equal(['99RADIANT']);
      expect(findAll(ds, 'Radiology Comparison Study')[0]!.TextValue).to.equal(draft.comparison);
      const file = DicomMessage.readFile(
        draftBytes.buffer.slice(draftBytes.byteOffset, draftBytes.byteOffset + draftBytes.byteLength) as ArrayBuffer,
      );
      let textVr: string | undefined;
      const visit = (items: Array<Record<string, { vr: string; Value?: unknown[] }>>): void => {
        for (const it of items) {
          if (it['0040A160']) textVr = it['0040A160'].vr;
          if (it['0040A730']) visit(it['0040A730'].Value as Array<Record<string, { vr: string; Value?: unknown[] }>>);
        }
      };
      visit(file.dict['0040A730']!.Value as Array<Record<string, { vr: string; Value?: unknown[] }>>);
      expect(textVr).to.equal('UT');
    });
  });

  describe('edge cases', () => {
    it('all-ASCII content keeps the source character set; long short strings are clipped to their VR', () => {
      const c = makeContent('draft');
      c.patient.name = 'Smith^John';
      c.study.referringPhysicianName = null;
      c.study.specificCharacterSet = 'ISO_IR 100';
      c.node.institutionName = 'General Hospital';
      c.study.accessionNumber = 'A'.repeat(40);
      c.study.studyDescription = `${'x'.repeat(70)}\\y`;
      const bytes = buildStructuredReport(c, ids(3));
      const { ds } = readBack(bytes);
      // dcmjs reports every decoded file as ISO_IR 192, so read what the file says with dcmdump.
      return writeTmp('ascii', bytes).then((p) => {
        expect(tool('dcmdump', ['+P', '0008,0005', p]).output).to.include('[ISO_IR 100]');
        expect(ds.AccessionNumber).to.equal('A'.repeat(16));
        expect(ds.StudyDescription).to.equal('x'.repeat(64));
        expect(ds.CodingSchemeIdentificationSequence, 'limitations (private code) still present').to.not.equal(undefined);
        expect(dciodvfy(p).errors).to.deep.equal([]);
      });
    });

    it('a region on an image with a plane: SCOORD on the image, and a SCOORD3D group of the same tracked finding', async () => {
      const c = makeContent('draft');
      const forUid = newUid();
      c.findings[0]!.region!.patient = {
        frameOfReferenceUid: forUid,
        corners: [
          [-100, -50, 12.5],
          [-80, -50, 12.5],
          [-80, -30, 12.5],
          [-100, -30, 12.5],
        ],
      };
      const bytes = buildStructuredReport(c, ids(11));
      const p = await writeTmp('scoord3d', bytes);
      const out = tool('dsrdump', ['+Pl', '+Pc', '+Pu', p]).output;
      expect(out, out).to.include(
        `SCOORD3D:(111030,DCM,"Image Region")=(POLYGON,"${forUid}",-100/-50/12.5,-80/-50/12.5,-80/-30/12.5,-100/-30/12.5,-100/-50/12.5)`,
      );
      const { ds } = readBack(bytes);
      const groups = findAll(ds, 'Measurement Group');
      const tracked = groups.filter((g) => seq(g.ContentSequence).some((i) => i.UID === c.findings[0]!.trackingUid));
      expect(tracked).to.have.length(2);
      // The group viewers draw comes first, with the image-bound SCOORD; the second carries the 3D region and its algorithm.
      expect(seq(tracked[0]!.ContentSequence).find((i) => i.ValueType === 'SCOORD' || i.ValueType === 'SCOORD3D')!.ValueType).to.equal(
        'SCOORD',
      );
      const second = seq(tracked[1]!.ContentSequence);
      expect(second.map((i) => i.ValueType))
        .to.include('SCOORD3D')
        .and.not.include('SCOORD');
      expect(second.map(conceptMeaning)).to.include.members(['Tracking Identifier', 'Algorithm Name', 'Algorithm Version']);
      expect(dciodvfy(p).errors).to.deep.equal([]);
    });

    it('a point region becomes a POINT SCOORD; preliminary is PARTIAL', () => {
      const c = makeContent('preliminary');
      c.findings[0]!.region!.box = [10, 20, 10, 20];
      const p = path.join(tmp, 'point.dcm');
      return fs.writeFile(p, buildStructuredReport(c, ids(4))).then(() => {
        const out = tool('dsrdump', ['+Pc', p]).output;
        expect(out).to.include('SCOORD:(111030,DCM,"Image Region")=(POINT,10/20)');
        expect(out).to.match(/Completion Flag\s+: PARTIAL/);
        expect(dciodvfy(p).errors).to.deep.equal([]);
      });
    });

    it('blank model text (description, impression, location, recommendation) never makes an empty TEXT item', async () => {
      const c = makeContent('draft');
      Object.assign(c.findings[0]!, { description: '  ', anatomicalLocation: '', recommendation: ' ' });
      Object.assign(c, { impression: '', comparison: ' ', limitations: '' });
      const p = await writeTmp('blank', buildStructuredReport(c, ids(9)));
      const dump = tool('dsrdump', [p]);
      expect(dump.status, dump.output).to.equal(0);
      expect(dump.output).to.include('(no description given)').and.include('(no impression given)');
      expect(dciodvfy(p).errors).to.deep.equal([]);
    });

    it('amended: COMPLETE/VERIFIED, says amended, carries the reason; passes dciodvfy', async () => {
      const c = makeContent('amended');
      const p = await writeTmp('amended', buildStructuredReport(c, ids(8)));
      const { ds } = readBack(await fs.readFile(p));
      expect(ds.CompletionFlag).to.equal('COMPLETE');
      expect(ds.VerificationFlag).to.equal('VERIFIED');
      expect(ds.SeriesDescription).to.equal('Amended report - R42 v2 2026-11-25');
      expect(findAll(ds, 'Reason for amendment')[0]!.TextValue).to.equal('Corrected laterality.');
      expect(seq(ds.PredecessorDocumentsSequence)).to.have.length(1);
      expect(dciodvfy(p).errors).to.deep.equal([]);
    });

    it('a frame of a multi-frame image is referenced by its frame number; the evidence lists the instance once', async () => {
      const c = makeContent('draft');
      const enhanced = { sopClassUid: '1.2.840.10008.5.1.4.1.1.2.1', sopInstanceUid: newUid(), seriesInstanceUid: newUid() };
      c.imageLibrary.push({ ...enhanced, frameNumber: 5 }, { ...enhanced, frameNumber: 6 });
      c.findings[1]!.images = [{ ...enhanced, frameNumber: 6 }];
      const bytes = buildStructuredReport(c, ids(9));
      const p = await writeTmp('multiframe', bytes);
      const out = tool('dsrdump', ['+Pu', p]).output;
      expect(out).to.include(`<contains IMAGE:=(CTe image,"${enhanced.sopInstanceUid}",5)>`);
      expect(out).to.include(`<contains IMAGE:(,,"Source")=(CTe image,"${enhanced.sopInstanceUid}",6)>`);
      const evidence = seq(readBack(bytes).ds.CurrentRequestedProcedureEvidenceSequence)[0]!;
      const series = seq(evidence.ReferencedSeriesSequence).find((x) => x.SeriesInstanceUID === enhanced.seriesInstanceUid)!;
      expect(seq(series.ReferencedSOPSequence)).to.have.length(1);
      expect(dciodvfy(p).errors).to.deep.equal([]);
    });

    it('the local coding scheme is declared, and it is the only thing dciodvfy warns about', async () => {
      const c = makeContent('final');
      c.limitations = null;
      const bytes = buildStructuredReport(c, ids(10));
      expect(seq(readBack(bytes).ds.CodingSchemeIdentificationSequence).map((x) => x.CodingSchemeDesignator)).to.deep.equal(['99RADIANT']);
      const r = dciodvfy(await writeTmp('no-private', bytes));
      expect(r.errors, r.output).to.deep.equal([]);
      for (const w of r.warnings) expect(w, r.output).to.match(/99RADIANT/);
    });

    it('a finding longer than a Code Meaning keeps its whole text as a comment', async () => {
      const c = makeContent('draft');
      c.findings[0]!.description = `${'Ground-glass opacity '.repeat(5)}in the right lower lobe`;
      const bytes = buildStructuredReport(c, ids(11));
      const { ds } = readBack(bytes);
      const group = findAll(ds, 'Measurement Group')[0]!;
      const items = seq(group.ContentSequence);
      const finding = items.find((i) => conceptMeaning(i) === 'Finding')!;
      expect([...String(seq(finding.ConceptCodeSequence)[0]!.CodeMeaning)].length).to.equal(64);
      expect(items.find((i) => conceptMeaning(i) === 'Comment')!.TextValue).to.equal(c.findings[0]!.description);
      expect(dciodvfy(await writeTmp('long-finding', bytes)).errors).to.deep.equal([]);
    });

    it('refuses content that cannot make a valid object', () => {
      const unsigned = makeContent('final');
      unsigned.signer = null;
      expect(() => buildStructuredReport(unsigned, ids(5))).to.throw(RadiantError, /signer/);
      const badUid = makeContent('draft');
      badUid.findings[0]!.trackingUid = '1.2.03.x';
      expect(() => buildStructuredReport(badUid, ids(6))).to.throw(RadiantError, /trackingUid/);
    });

    it('is deterministic for the same content and ids', () => {
      const i = ids(7);
      expect(buildStructuredReport(draft, i).equals(buildStructuredReport(draft, i))).to.equal(true);
    });

    it('newUid gives valid, distinct 2.25 UIDs', () => {
      const a = newUid();
      const b = newUid();
      expect(a).to.match(/^2\.25\.[1-9][0-9]*$/);
      expect(isValidUid(a)).to.equal(true);
      expect(a).to.not.equal(b);
      expect(uidFromNames('x', 'y')).to.equal(uidFromNames('x', 'y'));
      expect(uidFromNames('x', 'y')).to.not.equal(uidFromNames('xy'));
    });
  });
  describe('draft and signed are different objects (issue 16)', () => {
    const doc = (ds: NaturalizedDataset) => seq(ds.ContentSequence);
    const observerTypes = (items: NaturalizedDataset[]) =>
      items.filter((i) => conceptMeaning(i) === 'Observer Type').map((i) => seq(i.ConceptCodeSequence)[0]!.CodeMeaning);

    it('draft: the algorithm is the only observer; signed: the radiologist is, and accepted AI findings keep the device', async () => {
      const d = readBack(buildStructuredReport(makeContent('draft'), ids(20))).ds;
      expect(observerTypes(doc(d))).to.deep.equal(['Device']);
      const c = makeContent('final');
      c.signer = { ...c.signer!, name: 'Šimić^Ana^^^MD', display: 'Ana Šimić, MD' };
      c.findings[1] = { ...c.findings[1]!, author: 'radiologist' };
      const p = await writeTmp('observers', buildStructuredReport(c, ids(21)));
      const { ds } = readBack(await fs.readFile(p));
      expect(observerTypes(doc(ds))).to.deep.equal(['Person']);
      const groups = findAll(ds, 'Measurement Group');
      // Finding 1 (the model's, accepted at signing): device observer, algorithm, "accepted by".
      expect(observerTypes(seq(groups[0]!.ContentSequence))).to.deep.equal(['Device']);
      expect(findAll(groups[0]!, 'Algorithm Name')).to.have.length(1);
      // (dcmjs reads text in sequences as Latin-1: the name's non-ASCII letters are not compared here.)
      expect(findAll(groups[0]!, 'Comment').map((i) => String(i.TextValue))).to.satisfy((t: string[]) =>
        t.some((x) => x.startsWith('AI-generated finding, accepted by Ana ') && x.endsWith(', MD')),
      );
      // Finding 2 (the radiologist's words): no algorithm as its author.
      expect(observerTypes(seq(groups[1]!.ContentSequence))).to.deep.equal([]);
      expect(findAll(groups[1]!, 'Algorithm Name')).to.have.length(0);
      expect(dciodvfy(p).errors).to.deep.equal([]);
    });

    it('the procedure code comes from modality and body part; unknown ones fall back to the modality code', () => {
      const c = makeContent('draft');
      const code = (x: ReportContent) =>
        seq(findAll(readBack(buildStructuredReport(x, ids(22))).ds, 'Procedure reported')[0]!.ConceptCodeSequence)[0]!;
      expect(code({ ...c, bodyPart: 'CHEST' })).to.include({ CodeValue: '24627-2', CodingSchemeDesignator: 'LN', CodeMeaning: 'CT Chest' });
      expect(code({ ...c, bodyPart: 'HEAD' })).to.include({ CodeValue: '24725-4', CodeMeaning: 'CT Head' });
      expect(code({ ...c, bodyPart: 'KNEE' })).to.include({ CodeValue: '25045-6' });
    });

    it('a report with no region to draw is a Diagnostic imaging report (OHIF shows it as text); with one, TID 1500', async () => {
      const c = makeContent('draft');
      const withRegion = readBack(buildStructuredReport(c, ids(23))).ds;
      expect(seq(withRegion.ConceptNameCodeSequence)[0]!.CodeValue).to.equal('126000');
      expect(seq(withRegion.ContentTemplateSequence)[0]!.TemplateIdentifier).to.equal('1500');
      const p = await writeTmp(
        'text-only',
        buildStructuredReport({ ...c, findings: c.findings.map((f) => ({ ...f, region: null })) }, ids(24)),
      );
      const { ds } = readBack(await fs.readFile(p));
      expect(seq(ds.ConceptNameCodeSequence)[0]).to.include({ CodeValue: '18748-4', CodingSchemeDesignator: 'LN' });
      expect(ds.ContentTemplateSequence).to.equal(undefined);
      expect(findAll(ds, 'Impression')).to.have.length(1);
      // OHIF 3's text view renders every item by its concept name and fails on one without: the
      // nameless Image Library entries are left out; the findings still cite their images.
      expect(findAll(ds, 'Image Library')).to.have.length(0);
      const nameless: NaturalizedDataset[] = [];
      walk(seq(ds.ContentSequence), (item) => {
        if (!seq(item.ConceptNameCodeSequence).length) nameless.push(item);
      });
      expect(nameless).to.deep.equal([]);
      expect(findAll(ds, 'Source').length).to.be.greaterThan(0);
      expect(dciodvfy(p).errors).to.deep.equal([]);
    });
  });
});
