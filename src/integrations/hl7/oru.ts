import type { Code } from '../../reports/sr/codes.js';
import { administrativeSex, dicomDateTime, formattedText, hl7Time, newMessage, xpn } from './v2.js';

/**
 * ORU^R01 (HL7 v2.5.1) of one report version: the radiology result a RIS files with the order.
 * Pure: everything it says comes in `OruInput` (src/integrations/hl7-send.ts gathers it from the
 * index), so the mapping is unit-tested on its own. README, "HL7", has the field table.
 *
 * Result status (OBR-25, OBX-11): P for the AI draft (and a preliminary edit), F once signed,
 * C for an amended (corrected) version. Text goes verbatim, as FT (line breaks as \.br\).
 */

export type OruReportState = 'draft' | 'preliminary' | 'final' | 'amended';

export interface OruFinding {
  number: number;
  description: string;
  anatomicalLocation: string | null;
  laterality: string | null;
  /** The model's confidence (0–1) while the words are the model's. */
  confidence: number | null;
  recommendation: string | null;
  author: 'ai' | 'radiologist';
}

export interface OruInput {
  controlId: string;
  /** MSH-7. */
  at: Date;
  sendingFacility: string | null;
  receivingApplication: string | null;
  receivingFacility: string | null;
  patient: { id: string; issuer: string | null; name: string | null; birthDate: string | null; sex: string | null };
  study: { accessionNumber: string | null; studyInstanceUid: string; studyDate: string | null; studyTime: string | null };
  /** The order received over ORM/OMI for this Accession Number, when there is one. */
  order: { placerOrderNumber: string | null; fillerOrderNumber: string | null } | null;
  /** OBR-4: the procedure as the SR codes it (modality and body part), and its free text. */
  procedure: { code: Code; text: string };
  state: OruReportState;
  /** When this version was made (OBR-22, results status change). */
  versionAt: string;
  /** The signing radiologist (OBR-32, OBX-16); null for a draft. */
  signer: { username: string; name: string } | null;
  findings: OruFinding[];
  impression: string;
  /** The AI draft's disclaimer, or the signed report's AI-assisted note (NTE after OBR). */
  disclaimer: string;
}

/** LOINC report sections (Radiology Playbook narrative codes) and the local code of the model's confidence. */
const SECTION = {
  impression: ['19005-8', 'Radiology Imaging study [Impression] (narrative)', 'LN'],
  finding: ['18782-3', 'Radiology Study observation (narrative)', 'LN'],
  recommendation: ['18783-1', 'Radiology Study recommendation (narrative)', 'LN'],
  confidence: ['RAI-CONF', 'AI model confidence', '99RAI'],
} as const;

/** OBR-25 / OBX-11 (HL7 tables 0123 / 0085). */
export function resultStatus(state: OruReportState): 'P' | 'F' | 'C' {
  return state === 'final' ? 'F' : state === 'amended' ? 'C' : 'P';
}

/** Coding systems as HL7 table 0396 names them. */
function codingSystem(scheme: string): string {
  return scheme === 'LN' ? 'LN' : scheme === 'SCT' ? 'SCT' : scheme === 'DCM' ? 'DCM' : scheme;
}

export function buildOru(r: OruInput): string {
  const status = resultStatus(r.state);
  const m = newMessage({
    type: ['ORU', 'R01', 'ORU_R01'],
    controlId: r.controlId,
    processingId: 'P',
    sendingFacility: r.sendingFacility,
    receivingApplication: r.receivingApplication,
    receivingFacility: r.receivingFacility,
    at: r.at,
  });

  const pid = m.addSegment('PID');
  pid.set('1', '1');
  pid.set('3.1', r.patient.id);
  if (r.patient.issuer) pid.set('3.4', r.patient.issuer);
  pid.set('3.5', 'PI');
  xpn(r.patient.name).forEach((part, i) => {
    if (part) pid.set(`5.${i + 1}`, part);
  });
  if (r.patient.birthDate && /^\d{8}$/.test(r.patient.birthDate)) pid.set('7', r.patient.birthDate);
  pid.set('8', administrativeSex(r.patient.sex));

  const pv1 = m.addSegment('PV1');
  pv1.set('1', '1');
  // Patient class unknown: the node does not know the visit.
  pv1.set('2', 'U');

  const placer = r.order?.placerOrderNumber || r.study.accessionNumber || '';
  const filler = r.order?.fillerOrderNumber || r.study.accessionNumber || '';
  const orc = m.addSegment('ORC');
  orc.set('1', 'RE');
  if (placer) orc.set('2.1', placer);
  if (filler) orc.set('3.1', filler);
  orc.set('5', status === 'P' ? 'IP' : 'CM');

  const observed = dicomDateTime(r.study.studyDate, r.study.studyTime);
  const obr = m.addSegment('OBR');
  obr.set('1', '1');
  if (placer) obr.set('2.1', placer);
  if (filler) obr.set('3.1', filler);
  obr.set('4.1', r.procedure.code.value);
  obr.set('4.2', r.procedure.code.meaning);
  obr.set('4.3', codingSystem(r.procedure.code.scheme));
  if (r.procedure.text) obr.set('4.5', r.procedure.text);
  if (observed) obr.set('7', observed);
  obr.set('22', hl7Time(new Date(r.versionAt)));
  obr.set('24', 'RAD');
  obr.set('25', status);
  if (r.signer) {
    const [family, given] = xpn(r.signer.name);
    obr.set('32.1.1', r.signer.username);
    if (family) obr.set('32.1.2', family);
    if (given) obr.set('32.1.3', given);
  }
  const nte = m.addSegment('NTE');
  nte.set('1', '1');
  nte.set('2', 'L');
  nte.set('3', formattedText(m, r.disclaimer));

  let setId = 0;
  const obx = (
    value: { type: 'FT' | 'NM'; v: unknown },
    code: readonly [string, string, string],
    subId: string,
    units?: string,
    site?: string,
  ) => {
    const s = m.addSegment('OBX');
    s.set('1', String(++setId));
    s.set('2', value.type);
    s.set('3.1', code[0]);
    s.set('3.2', code[1]);
    s.set('3.3', code[2]);
    if (subId) s.set('4', subId);
    s.set('5', value.v);
    if (units) s.set('6.1', units);
    s.set('11', status);
    if (observed) s.set('14', observed);
    if (r.signer) s.set('16.1', r.signer.username);
    if (site) s.set('20.2', site);
  };
  obx({ type: 'FT', v: formattedText(m, r.impression) }, SECTION.impression, '');
  for (const f of r.findings) {
    const sub = String(f.number);
    const site = [f.laterality && f.laterality !== 'not_applicable' ? f.laterality : null, f.anatomicalLocation].filter(Boolean).join(' ');
    // The model's (or radiologist's) words as they are; where, in OBX-20 (observation site, as text).
    obx({ type: 'FT', v: formattedText(m, f.description) }, SECTION.finding, sub, undefined, site);
    if (f.confidence !== null && f.author === 'ai') obx({ type: 'NM', v: f.confidence.toFixed(2) }, SECTION.confidence, sub, '1');
    if (f.recommendation) obx({ type: 'FT', v: formattedText(m, f.recommendation) }, SECTION.recommendation, sub);
  }
  return m.toString();
}

/** A connection test (POST /api/integrations/:id/test): MSH only, processing ID D (debugging). */
export function buildTestMessage(h: {
  controlId: string;
  at: Date;
  sendingFacility: string | null;
  receivingApplication: string | null;
  receivingFacility: string | null;
}): string {
  const m = newMessage({ ...h, type: ['ORU', 'R01', 'ORU_R01'], processingId: 'D' });
  const nte = m.addSegment('NTE');
  nte.set('1', '1');
  nte.set('3', 'RadiantAI connection test: no result, nothing to file.');
  return m.toString();
}
