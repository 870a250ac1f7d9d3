import type { Db } from '../db/connection.js';
import { findUserRow } from '../catalog/users.js';
import { userDisplayName } from '../auth/users.js';
import type { Analysis } from '../analysis/analyses.js';
import type { SafetyFlag } from '../medgemma/engine.js';
import { BLOCKING_SAFETY_RULES } from './auto-publish.js';
import type { BodyFinding, ReportBody } from './body.js';
import type { ReportState } from './content.js';
import type { Report, ReportVersion } from './report-store.js';

/**
 * What the review screen reads about reports (src/http/routes/reports.ts answers it): a study's
 * reports in short, a version's content with each finding's safety flags, the difference between
 * two versions, and the radiologist's per-finding decisions as ground truth for `radiant eval`.
 */

/** The three states a reader knows: a draft (AI or edited), signed, amended after signing. */
export type ReviewStatus = 'draft' | 'signed' | 'amended';

export function reviewStatus(state: ReportState): ReviewStatus {
  return state === 'final' ? 'signed' : state === 'amended' ? 'amended' : 'draft';
}

export interface FlagView {
  rule: string;
  target: SafetyFlag['target'];
  /** Blocks auto-publishing (BLOCKING_SAFETY_RULES): a reader must look at it before signing. */
  blocking: boolean;
}

const flagView = (f: SafetyFlag): FlagView => ({ rule: f.rule, target: f.target, blocking: BLOCKING_SAFETY_RULES.includes(f.rule) });

/** Display names of users by username ("Jane Doe, MD"); the username itself for one that is gone. */
export async function displayNames(db: Db, usernames: Iterable<string | null>): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const u of usernames) {
    if (!u || out.has(u)) continue;
    const row = await findUserRow(db, { username: u });
    out.set(u, userDisplayName({ username: u, fullName: row?.full_name ?? null, credentials: row?.credentials ?? null }));
  }
  return out;
}

/** One report of a study as the review screen lists it. */
export function reportSummary(r: Report, analysis: Analysis | undefined, names: Map<string, string>) {
  const flags = (analysis?.safetyFlags ?? []).map(flagView);
  return {
    id: r.id,
    study_instance_uid: r.studyInstanceUid,
    analysis_id: r.analysisId,
    status: reviewStatus(r.state),
    state: r.state,
    version: r.version,
    ai_draft: r.state === 'draft' || r.state === 'preliminary',
    author: r.createdBy && { username: r.createdBy, display_name: names.get(r.createdBy) ?? r.createdBy },
    created_at: r.createdAt,
    signer: r.signedBy && { username: r.signedBy, display_name: names.get(r.signedBy) ?? r.signedBy, signed_at: r.signedAt },
    updated_at: r.updatedAt,
    findings: r.body.findings.length,
    safety_flags: flags,
    blocking: flags.some((f) => f.blocking),
    model: analysis?.model ? { name: analysis.model.name, sha256: analysis.model.sha256, validated: analysis.model.validated } : null,
  };
}

function findingView(f: BodyFinding, flags: SafetyFlag[]) {
  return {
    number: f.number,
    tracking_uid: f.trackingUid,
    description: f.description,
    anatomical_location: f.anatomicalLocation,
    laterality: f.laterality,
    category: f.category,
    severity: f.severity,
    confidence: f.confidence,
    author: f.author,
    image_indices: f.imageIndices,
    region: f.region && { image_index: f.region.imageIndex, box: f.region.box, space: f.region.space ?? 'prepared' },
    recommendation: f.recommendation,
    decision: f.decision ?? null,
    decision_reason: f.decisionReason ?? null,
    analysis_index: f.analysisIndex ?? null,
    // The model's flags follow a finding while its words are the model's.
    flags: f.author === 'ai' && f.analysisIndex !== undefined ? flags.filter((x) => x.target === f.analysisIndex).map(flagView) : [],
  };
}

/** A body as JSON, each finding with its flags. */
function bodyView(b: ReportBody, analysis: Analysis | undefined) {
  const flags = analysis?.safetyFlags ?? [];
  return {
    clinical_indication: b.clinicalIndication,
    technique: b.technique,
    findings: b.findings.map((f) => findingView(f, flags)),
    measurements: b.measurements.map((m) => ({ finding_number: m.findingNumber, quantity: m.quantity, value: m.value, unit: m.unit })),
    impression: b.impression,
    impression_flags: flags.filter((x) => x.target === 'impression').map(flagView),
    comparison: b.comparison,
    limitations: b.limitations,
  };
}

/** A version's record and content. */
export function versionView(v: ReportVersion, analysis: Analysis | undefined, names: Map<string, string>) {
  return {
    version: v.version,
    state: v.state,
    status: reviewStatus(v.state),
    action: v.action,
    changed_by: v.changedBy,
    changed_by_name: v.changedBy ? (names.get(v.changedBy) ?? v.changedBy) : null,
    changed_at: v.changedAt,
    reason: v.reason,
    changes: v.changes,
    sr_sop_instance_uid: v.srSopInstanceUid,
    pdf_sop_instance_uid: v.pdfSopInstanceUid,
    content: bodyView(v.body, analysis),
  };
}

/** The fields a diff compares, by the names the API shows them. */
const DIFF_FIELDS = {
  description: (f: BodyFinding) => f.description,
  anatomical_location: (f: BodyFinding) => f.anatomicalLocation,
  laterality: (f: BodyFinding) => f.laterality,
  category: (f: BodyFinding) => f.category,
  severity: (f: BodyFinding) => f.severity,
  confidence: (f: BodyFinding) => f.confidence,
  recommendation: (f: BodyFinding) => f.recommendation,
  image_indices: (f: BodyFinding) => f.imageIndices,
  region: (f: BodyFinding) => f.region,
  decision: (f: BodyFinding) => f.decision ?? null,
  decision_reason: (f: BodyFinding) => f.decisionReason ?? null,
} as const;

export interface VersionDiff {
  added: Array<{ tracking_uid: string; number: number; description: string }>;
  removed: Array<{ tracking_uid: string; number: number; description: string }>;
  changed: Array<{ tracking_uid: string; from_number: number; to_number: number; fields: Record<string, { from: unknown; to: unknown }> }>;
  impression: { from: string; to: string } | null;
}

/** Findings matched by tracking UID (it stays with a finding across edits and renumbering). */
export function diffBodies(a: ReportBody, b: ReportBody): VersionDiff {
  const before = new Map(a.findings.map((f) => [f.trackingUid, f]));
  const after = new Map(b.findings.map((f) => [f.trackingUid, f]));
  const brief = (f: BodyFinding) => ({ tracking_uid: f.trackingUid, number: f.number, description: f.description });
  const changed: VersionDiff['changed'] = [];
  for (const f of b.findings) {
    const old = before.get(f.trackingUid);
    if (!old) continue;
    const fields: Record<string, { from: unknown; to: unknown }> = {};
    for (const [name, get] of Object.entries(DIFF_FIELDS)) {
      const [x, y] = [get(old), get(f)];
      if (JSON.stringify(x) !== JSON.stringify(y)) fields[name] = { from: x, to: y };
    }
    if (Object.keys(fields).length || old.number !== f.number)
      changed.push({ tracking_uid: f.trackingUid, from_number: old.number, to_number: f.number, fields });
  }
  return {
    added: b.findings.filter((f) => !before.has(f.trackingUid)).map(brief),
    removed: a.findings.filter((f) => !after.has(f.trackingUid)).map(brief),
    changed,
    impression: a.impression === b.impression ? null : { from: a.impression, to: b.impression },
  };
}

/** One radiologist's call on one model finding: the ground truth `radiant eval` and quality review read. */
export interface DecisionRecord {
  report_id: number;
  report_version: number;
  study_instance_uid: string;
  analysis_id: number;
  model_name: string | null;
  model_sha256: string | null;
  /** The finding's index in the analysis (0-based), and the model's words verbatim. */
  finding_index: number | null;
  finding_number: number;
  tracking_uid: string;
  model_text: string | null;
  /** The finding's text in the report (the radiologist's when edited). */
  report_text: string;
  confidence: number | null;
  decision: string;
  reason: string | null;
  decided_by: string | null;
  decided_at: string;
}

/**
 * The decisions on a report's findings as its current version holds them, each with the version
 * that made it (who, when): the oldest version since which the finding has had this decision.
 */
export function decisionsOf(r: Report, versions: ReportVersion[], analysis: Analysis | undefined): DecisionRecord[] {
  const out: DecisionRecord[] = [];
  for (const f of r.body.findings) {
    if (!f.decision) continue;
    const same = (v: ReportVersion) => {
      const g = v.body.findings.find((x) => x.trackingUid === f.trackingUid);
      return g?.decision === f.decision && (g?.decisionReason ?? null) === (f.decisionReason ?? null);
    };
    let made = versions.at(-1);
    for (let i = versions.length - 1; i >= 0 && same(versions[i]!); i--) made = versions[i];
    const model = f.analysisIndex !== undefined ? analysis?.findings?.find((x) => x.index === f.analysisIndex) : undefined;
    out.push({
      report_id: r.id,
      report_version: r.version,
      study_instance_uid: r.studyInstanceUid,
      analysis_id: r.analysisId,
      model_name: analysis?.model?.name ?? null,
      model_sha256: analysis?.model?.sha256 ?? null,
      finding_index: f.analysisIndex ?? null,
      finding_number: f.number,
      tracking_uid: f.trackingUid,
      model_text: model?.description ?? null,
      report_text: f.description,
      confidence: model?.confidence ?? f.confidence,
      decision: f.decision,
      reason: f.decisionReason ?? null,
      decided_by: made?.changedBy ?? null,
      decided_at: made?.changedAt ?? r.updatedAt,
    });
  }
  return out;
}

export const DECISION_COLUMNS: ReadonlyArray<keyof DecisionRecord> = [
  'study_instance_uid',
  'analysis_id',
  'model_name',
  'model_sha256',
  'report_id',
  'report_version',
  'finding_index',
  'finding_number',
  'tracking_uid',
  'model_text',
  'report_text',
  'confidence',
  'decision',
  'reason',
  'decided_by',
  'decided_at',
];
