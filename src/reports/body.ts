import { RadiantError } from '../errors.js';
import { z } from 'zod';
import { newUid } from '../dicom/new-uid.js';
import type { Analysis } from '../analysis/analyses.js';
import { CATEGORIES, LATERALITIES, SEVERITIES } from '../analysis/findings-schema.js';

/**
 * The part of a report a radiologist edits, kept as JSON on the report and in every version.
 * Findings keep their tracking UID across edits (the SR's TrackingUniqueIdentifier), and the
 * model's confidence only while the finding's text is still the model's.
 */

export interface BodyFinding {
  number: number;
  trackingUid: string;
  description: string;
  anatomicalLocation: string | null;
  laterality: (typeof LATERALITIES)[number] | null;
  category: (typeof CATEGORIES)[number] | null;
  severity: (typeof SEVERITIES)[number] | null;
  confidence: number | null;
  /** Indices into the analysis' image list. */
  imageIndices: number[];
  /**
   * A box on image `imageIndex`: in the prepared image's pixels as the model gave it, or (space
   * 'source', a radiologist's) in the source image's own pixel columns and rows, as the viewer shows them.
   */
  region: { imageIndex: number; box: [number, number, number, number]; space?: 'source' } | null;
  recommendation: string | null;
  /** Who wrote the finding's current text. */
  author: 'ai' | 'radiologist';
  /**
   * The radiologist's call on a model's finding: accepted as it is, edited, or rejected (kept in
   * the versions and the audit, left out of the published report). Absent: not reviewed yet.
   */
  decision?: FindingDecision;
  /** Why (a rejection must say). */
  decisionReason?: string | null;
  /** The analysis finding it came from (its safety flags follow it while the words are the model's). */
  analysisIndex?: number;
}

export const FINDING_DECISIONS = ['accepted', 'rejected', 'edited'] as const;
export type FindingDecision = (typeof FINDING_DECISIONS)[number];

export interface BodyMeasurement {
  findingNumber: number | null;
  quantity: string;
  value: number;
  unit: string;
}

export interface ReportBody {
  clinicalIndication: string | null;
  technique: string;
  findings: BodyFinding[];
  measurements: BodyMeasurement[];
  impression: string;
  comparison: string | null;
  limitations: string | null;
}

export function bodyFromAnalysis(a: Analysis, technique: string): ReportBody {
  const findings = (a.findings ?? []).map(
    (f, i): BodyFinding => ({
      number: i + 1,
      trackingUid: newUid(),
      description: f.description,
      anatomicalLocation: f.anatomicalLocation,
      laterality: (LATERALITIES as readonly string[]).includes(f.laterality ?? '') ? (f.laterality as BodyFinding['laterality']) : null,
      category: (CATEGORIES as readonly string[]).includes(f.category ?? '') ? (f.category as BodyFinding['category']) : null,
      severity: (SEVERITIES as readonly string[]).includes(f.severity ?? '') ? (f.severity as BodyFinding['severity']) : null,
      confidence: f.confidence,
      imageIndices: f.imageIndices,
      region: f.region,
      recommendation: f.recommendation,
      author: 'ai',
      analysisIndex: f.index,
    }),
  );
  // Measurements name their finding in words; link them when the words match a finding's.
  const measurements = (a.measurements ?? []).map((m) => {
    const match = findings.find((f) => m.finding && f.description.toLowerCase().includes(m.finding.toLowerCase()));
    return { findingNumber: match?.number ?? null, quantity: m.quantity, value: m.value, unit: m.unit };
  });
  return {
    clinicalIndication: a.clinicalIndication,
    technique,
    findings,
    measurements,
    impression: a.impression ?? '',
    comparison: a.comparison || null,
    limitations: a.technicalLimitations || null,
  };
}

const text = (max: number) => z.string().max(max);

const findingEdit = z
  .object({
    /** An existing finding's number; absent for a new finding. */
    number: z.number().int().positive().optional(),
    description: text(4000).min(1),
    anatomical_location: text(256).nullable().optional(),
    laterality: z.enum(LATERALITIES).nullable().optional(),
    category: z.enum(CATEGORIES).nullable().optional(),
    severity: z.enum(SEVERITIES).nullable().optional(),
    recommendation: text(4000).nullable().optional(),
    /** The radiologist's call on a model's finding; a rejection needs decision_reason. */
    decision: z.enum(FINDING_DECISIONS).optional(),
    decision_reason: text(2000).nullable().optional(),
    /** Indices into the analysis' image list (0-based; image i is the viewer's slice i+1 of the analysed series). */
    image_indices: z.array(z.number().int().nonnegative()).max(100).optional(),
    /** A box [x0, y0, x1, y1] on analysis image `image_index`, in that DICOM image's pixel columns/rows. */
    region: z
      .object({
        image_index: z.number().int().nonnegative(),
        box: z.tuple([z.number().finite(), z.number().finite(), z.number().finite(), z.number().finite()]),
      })
      .strict()
      .nullable()
      .optional(),
    /** The reader's confidence, 0–1. */
    confidence: z.number().min(0).max(1).nullable().optional(),
  })
  .strict();

export const bodyPatch = z
  .object({
    impression: text(20_000).optional(),
    comparison: text(20_000).nullable().optional(),
    limitations: text(20_000).nullable().optional(),
    clinical_indication: text(4000).nullable().optional(),
    /** The whole list after the edit: findings left out are removed. */
    findings: z.array(findingEdit).max(200).optional(),
    measurements: z
      .array(
        z
          .object({
            finding_number: z.number().int().positive().nullable().optional(),
            quantity: text(128).min(1),
            value: z.number().finite(),
            unit: text(32).min(1),
          })
          .strict(),
      )
      .max(500)
      .optional(),
  })
  .strict()
  .refine((p) => Object.keys(p).length > 0, 'nothing to change');

export type BodyPatch = z.infer<typeof bodyPatch>;

export interface Change {
  field: string;
  from: unknown;
  to: unknown;
}

/** What a patch is checked against: how many images the analysis has (image indices and regions name them). */
export interface PatchLimits {
  images: number;
}

type FindingEdit = z.infer<typeof findingEdit>;

/** The image fields of an edit (indices, region, confidence) onto a finding; checked against the analysis' images. */
function imageFields(f: BodyFinding, e: FindingEdit, limits: PatchLimits | undefined): BodyFinding {
  const inRange = (i: number) => {
    if (limits && i >= limits.images)
      throw new BodyPatchError(`image index ${i} does not exist: the analysis has ${limits.images} image(s)`);
    return i;
  };
  const out = { ...f };
  if (e.image_indices !== undefined) out.imageIndices = [...new Set(e.image_indices.map(inRange))];
  if (e.region !== undefined) {
    if (e.region === null) out.region = null;
    else {
      const [x0, y0, x1, y1] = e.region.box;
      if (x1 < x0 || y1 < y0) throw new BodyPatchError('region box must be [x0, y0, x1, y1] with x0 <= x1 and y0 <= y1');
      out.region = { imageIndex: inRange(e.region.image_index), box: [x0, y0, x1, y1], space: 'source' };
      if (!out.imageIndices.includes(e.region.image_index)) out.imageIndices = [e.region.image_index, ...out.imageIndices];
    }
  }
  if (e.confidence !== undefined) out.confidence = e.confidence;
  return out;
}

/** The body after a patch, and what changed (for the version record and the audit trail). */
export function applyPatch(body: ReportBody, p: BodyPatch, limits?: PatchLimits): { body: ReportBody; changes: Change[] } {
  const next: ReportBody = structuredClone(body);
  const changes: Change[] = [];
  const set = <K extends 'impression' | 'comparison' | 'limitations' | 'clinicalIndication'>(
    field: K,
    value: ReportBody[K] | undefined,
  ) => {
    if (value === undefined || value === next[field]) return;
    changes.push({ field, from: next[field], to: value });
    next[field] = value;
  };
  set('impression', p.impression);
  set('comparison', p.comparison);
  set('limitations', p.limitations);
  set('clinicalIndication', p.clinical_indication);
  if (p.findings) {
    const byNumber = new Map(body.findings.map((f) => [f.number, f]));
    const kept = new Set<number>();
    const out: BodyFinding[] = [];
    for (const e of p.findings) {
      const old = e.number !== undefined ? byNumber.get(e.number) : undefined;
      if (e.number !== undefined && !old) throw new BodyPatchError(`finding ${e.number} does not exist`);
      if (old) kept.add(old.number);
      const edited: BodyFinding = old
        ? {
            ...old,
            description: e.description,
            anatomicalLocation: e.anatomical_location === undefined ? old.anatomicalLocation : e.anatomical_location,
            laterality: e.laterality === undefined ? old.laterality : e.laterality,
            category: e.category === undefined ? old.category : e.category,
            severity: e.severity === undefined ? old.severity : e.severity,
            recommendation: e.recommendation === undefined ? old.recommendation : e.recommendation,
          }
        : {
            number: 0,
            trackingUid: newUid(),
            description: e.description,
            anatomicalLocation: e.anatomical_location ?? null,
            laterality: e.laterality ?? null,
            category: e.category ?? null,
            severity: e.severity ?? null,
            confidence: null,
            imageIndices: [],
            region: null,
            recommendation: e.recommendation ?? null,
            author: 'radiologist',
          };
      // The radiologist's words now: the model's confidence no longer describes them (unless one is given).
      if (old && old.description !== edited.description) Object.assign(edited, { author: 'radiologist', confidence: null });
      const f = imageFields(edited, e, limits);
      if (old) decide(old, f, e);
      if (old && JSON.stringify({ ...old, number: 0 }) !== JSON.stringify({ ...f, number: 0 })) {
        if (old.description !== f.description) changes.push({ field: `finding ${old.number}`, from: old.description, to: f.description });
        const where = (x: BodyFinding) => ({ imageIndices: x.imageIndices, region: x.region, confidence: x.confidence });
        if (JSON.stringify(where(old)) !== JSON.stringify(where(f)))
          changes.push({ field: `finding ${old.number} images`, from: where(old), to: where(f) });
        else if (old.description === f.description && old.decision === f.decision)
          changes.push({ field: `finding ${old.number}`, from: old.description, to: f.description });
        if (old.decision !== f.decision)
          changes.push({
            field: `finding ${old.number} decision`,
            from: old.decision ?? null,
            to: f.decisionReason ? `${f.decision}: ${f.decisionReason}` : (f.decision ?? null),
          });
      }
      if (!old) changes.push({ field: 'finding (new)', from: null, to: f.description });
      out.push(f);
    }
    for (const f of body.findings) if (!kept.has(f.number)) changes.push({ field: `finding ${f.number}`, from: f.description, to: null });
    // Renumber in the given order; tracking UIDs stay with their findings.
    const renumber = new Map<number, number>();
    out.forEach((f, i) => {
      if (f.number) renumber.set(f.number, i + 1);
      f.number = i + 1;
    });
    next.findings = out;
    next.measurements = next.measurements.map((m) => ({
      ...m,
      findingNumber: m.findingNumber === null ? null : (renumber.get(m.findingNumber) ?? null),
    }));
  }
  if (p.measurements) {
    const ms = p.measurements.map((m) => ({ findingNumber: m.finding_number ?? null, quantity: m.quantity, value: m.value, unit: m.unit }));
    for (const m of ms)
      if (m.findingNumber !== null && !next.findings.some((f) => f.number === m.findingNumber))
        throw new BodyPatchError(`measurement names finding ${m.findingNumber}, which does not exist`);
    if (JSON.stringify(ms) !== JSON.stringify(next.measurements))
      changes.push({ field: 'measurements', from: next.measurements.length, to: ms.length });
    next.measurements = ms;
  }
  return { body: next, changes };
}

/**
 * The decision on a model's finding after an edit: as given; 'edited' once the radiologist changed
 * what it says or where (a model finding the radiologist reworded is no longer the model's); a
 * rejection must give its reason, and only a model's finding can be accepted or rejected.
 */
function decide(old: BodyFinding, f: BodyFinding, e: FindingEdit): void {
  if (e.decision !== undefined && old.author !== 'ai' && old.analysisIndex === undefined && e.decision !== 'edited')
    throw new BodyPatchError(`finding ${old.number} is the radiologist's own: there is nothing to accept or reject`);
  const { number: _n, decision: _d, decisionReason: _r, ...was } = old;
  const { number: _n2, decision: _d2, decisionReason: _r2, ...now } = f;
  const changed = JSON.stringify(was) !== JSON.stringify(now);
  const decision = e.decision ?? (changed ? 'edited' : old.decision);
  if (decision === 'rejected' && !(e.decision_reason ?? old.decisionReason)?.trim())
    throw new BodyPatchError(`finding ${old.number}: a rejection needs decision_reason`);
  if (decision === undefined) return;
  f.decision = decision;
  f.decisionReason = e.decision_reason !== undefined ? e.decision_reason : e.decision !== undefined ? null : (old.decisionReason ?? null);
}

/** At signing, the model's findings the radiologist left as they were are accepted by signing. */
export function acceptUndecided(body: ReportBody): { body: ReportBody; changes: Change[] } {
  const changes: Change[] = [];
  const findings = body.findings.map((f) => {
    if (f.author !== 'ai' || f.decision) return f;
    changes.push({ field: `finding ${f.number} decision`, from: null, to: 'accepted' });
    return { ...f, decision: 'accepted' as const, decisionReason: null };
  });
  return { body: { ...body, findings }, changes };
}

/** The findings a published report leaves out: the ones the radiologist rejected. */
export function rejectedFindings(
  body: ReportBody,
): Array<{ number: number; trackingUid: string; description: string; reason: string | null }> {
  return body.findings
    .filter((f) => f.decision === 'rejected')
    .map((f) => ({ number: f.number, trackingUid: f.trackingUid, description: f.description, reason: f.decisionReason ?? null }));
}

export class BodyPatchError extends RadiantError {
  constructor(message: string) {
    super('unprocessable', message, { code: 'invalid_change' });
    this.name = 'BodyPatchError';
  }
}
