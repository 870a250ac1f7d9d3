import type { Db } from '../db/connection.js';
import { findingRows, latestAnalysisRow } from '../catalog/analyses.js';
import { findInstance } from '../catalog/catalog.js';
import { studyFacts, type StudyFactsRow } from '../catalog/studies.js';
import { orderForAccession } from '../catalog/orders.js';
import { otherStudiesOfPatient, seriesBodyParts } from '../catalog/study-facts.js';
import { errorMessage } from '../errors.js';
import { describeAge, describeSex, type PromptContext } from '../medgemma/prompts/index.js';
import { tag } from '../dicom/dictionary.js';
import { readStoredHeader } from '../dicom/metadata-json.js';
import type { BlobStorage } from '../../storage/types.js';
import type { AssembledVolume, SeriesCandidate } from '../volumes/index.js';
import type { Analysis } from './analyses.js';

/**
 * What the prompt says about the examination, from the index and the first analysed image's
 * header: modality, body part, age and sex (never names or birth dates), the clinical
 * indication the requesting person typed or the RIS's order gave (only those), an acquisition summary, and for a
 * comparison the most relevant prior study.
 */

type Header = Awaited<ReturnType<typeof readStoredHeader>>;

function text(h: Header | undefined, tag: string): string | undefined {
  const v = h?.[tag]?.Value;
  if (!Array.isArray(v) || v.length === 0) return undefined;
  const first: unknown = v[0];
  if (typeof first === 'string') return first.trim() || undefined;
  if (typeof first === 'number') return String(first);
  return undefined;
}

type StudyFacts = StudyFactsRow;

function daysBetween(a: string | null, b: string | null): number | undefined {
  if (!a || !b || !/^\d{8}$/.test(a) || !/^\d{8}$/.test(b)) return undefined;
  const d = (s: string) => Date.UTC(Number(s.slice(0, 4)), Number(s.slice(4, 6)) - 1, Number(s.slice(6, 8)));
  return Math.round((d(a) - d(b)) / 86_400_000);
}

export interface PriorStudy {
  studyInstanceUid: string;
  summary: string;
  findings?: string;
  impression?: string;
}

/**
 * The patient's most relevant earlier study: same modality, same body part preferred, most
 * recent first; with the findings and impression of its latest finished analysis if any.
 */
export async function findPrior(
  db: Db,
  current: StudyFacts,
  modality: string,
  bodyPart: string | undefined,
): Promise<PriorStudy | undefined> {
  const rows = await otherStudiesOfPatient(db, current.patient_pk, current.id);
  const candidates = [];
  for (const r of rows) {
    const mods = (r.modalities_in_study ?? '').split('\\');
    if (!mods.includes(modality)) continue;
    // Earlier only: by StudyDate when both have one, else by arrival.
    const days = daysBetween(current.study_date, r.study_date);
    if (days !== undefined && days < 0) continue;
    const parts = await seriesBodyParts(db, r.id);
    const sameBody = bodyPart ? parts.some((p) => (p.body_part_examined ?? '').toUpperCase() === bodyPart.toUpperCase()) : false;
    candidates.push({ r, days, sameBody });
  }
  candidates.sort(
    (a, b) =>
      Number(b.sameBody) - Number(a.sameBody) ||
      (a.days ?? Infinity) - (b.days ?? Infinity) ||
      String(b.r.study_date ?? '').localeCompare(String(a.r.study_date ?? '')),
  );
  const best = candidates[0];
  if (!best) return undefined;
  const when = best.days !== undefined ? `${best.days} day(s) earlier` : 'date unknown';
  // No StudyDescription: free text from the scanner or RIS, which may carry identifiers.
  const summary = `${modality}${best.sameBody && bodyPart ? ` of the ${bodyPart.toLowerCase()}` : ''}, ${when}`;
  const prior: PriorStudy = { studyInstanceUid: best.r.study_instance_uid, summary };
  const done = await latestAnalysisRow(db, best.r.study_instance_uid, 'succeeded');
  if (done) {
    const f = await findingRows(db, done.id);
    if (f.length)
      prior.findings = f
        .map((x) => `${x.description} (confidence ${Number(x.confidence).toFixed(2)})`)
        .join('; ')
        .slice(0, 2000);
    if (done.impression) prior.impression = done.impression.slice(0, 1000);
  }
  return prior;
}

function acquisition(vol: AssembledVolume, series: SeriesCandidate, imageCount: number, h: Header | undefined): string {
  const parts: string[] = [];
  const n = vol.dimensions.slices;
  parts.push(vol.kind === 'projection' ? `${n} projection image(s)` : `${n} ${vol.kind === 'volume' ? 'slices' : 'image(s)'}`);
  parts.push(`matrix ${vol.dimensions.rows}×${vol.dimensions.columns}`);
  if (vol.spacing.slice) parts.push(`slice spacing ${vol.spacing.slice.toFixed(2)} mm`);
  if (vol.spacing.row && vol.spacing.column) parts.push(`pixel spacing ${vol.spacing.row.toFixed(2)}×${vol.spacing.column.toFixed(2)} mm`);
  if (series.seriesDescription) parts.push(`series "${series.seriesDescription}"`);
  const contrast = text(h, tag('ContrastBolusAgent'));
  if (contrast) parts.push('contrast given');
  if (imageCount < n) parts.push(`${imageCount} of them sampled evenly for this reading`);
  if (vol.problems.length) parts.push(`geometry notes: ${vol.problems.map((p) => p.code).join(', ')}`);
  return parts.join('; ');
}

/** The clinical indication of the order standing for this Accession Number, if any. */
async function orderIndication(db: Db, accessionNumber: string | null): Promise<string | undefined> {
  const acc = accessionNumber?.trim();
  if (!acc) return undefined;
  return (await orderForAccession(db, acc))?.clinicalIndication?.trim() || undefined;
}

export interface BuiltContext {
  context: PromptContext;
  priorStudyInstanceUid: string | null;
  /** The study and patient row read for the context: the pipeline's PHI check reuses it (never sent). */
  facts: StudyFactsRow;
}

export async function promptContext(
  db: Db,
  storage: BlobStorage,
  analysis: Analysis,
  vol: AssembledVolume,
  series: SeriesCandidate,
  imageCount: number,
): Promise<BuiltContext> {
  const facts = await studyFacts(db, analysis.studyInstanceUid);
  if (!facts) throw new Error(`study ${analysis.studyInstanceUid} is not in the index`);
  let header: Header | undefined;
  const first = vol.slices[0] ? await findInstance(db, vol.slices[0].sopInstanceUid) : undefined;
  if (first) {
    try {
      header = await readStoredHeader(storage, first);
    } catch (err) {
      // The header only adds age, body part and contrast; the analysis can go on without them.
      void errorMessage(err);
    }
  }
  const modality = vol.modality ?? series.modality ?? 'unknown modality';
  const bodyPart = series.bodyPartExamined ?? text(header, tag('BodyPartExamined'));
  // What a person typed with the request, else the indication of the order the RIS sent for this
  // Accession Number (HL7 listener): the study's own texts (StudyDescription, Reason for the
  // Requested Procedure…) are free text that may name the patient, and never went through either.
  const indication = analysis.clinicalIndication?.trim() || (await orderIndication(db, facts.accession_number));
  const context: PromptContext = {
    modality,
    bodyPart: bodyPart?.toLowerCase(),
    patientAge: describeAge(text(header, tag('PatientAge')), facts.patient_birth_date ?? undefined, facts.study_date ?? undefined),
    patientSex: describeSex(facts.patient_sex ?? text(header, tag('PatientSex'))),
    indication,
    acquisition: acquisition(vol, series, imageCount, header),
    imageCount,
    focus: analysis.focus ?? undefined,
  };
  let priorStudyInstanceUid: string | null = null;
  if (analysis.analysisType === 'comparison') {
    const prior = await findPrior(db, facts, modality, bodyPart);
    if (prior) {
      context.priorSummary = prior.summary;
      context.priorFindings = prior.findings;
      context.priorImpression = prior.impression;
      priorStudyInstanceUid = prior.studyInstanceUid;
    }
  }
  return { context, priorStudyInstanceUid, facts };
}
