/**
 * The study review's pure helpers (no DOM; test/unit/web-ui-lib.test.ts runs them): the PATCH
 * body that changes one finding (the API takes the whole list: a finding left out is removed),
 * and the display forms of a finding's confidence and place.
 */

export interface FindingFields {
  number: number;
  description: string;
  anatomical_location: string | null;
  laterality: string | null;
  category: string | null;
  severity: string | null;
  recommendation: string | null;
}

/** What one action changes on one finding: a decision (a rejection with its reason) or new text and fields. */
export type FindingChange =
  | { decision: 'accepted' }
  | { decision: 'rejected'; decision_reason: string }
  | { edit: Partial<Omit<FindingFields, 'number'>> & { description: string } };

export interface FindingEditBody {
  number: number;
  description: string;
  anatomical_location?: string | null;
  laterality?: string | null;
  category?: string | null;
  severity?: string | null;
  recommendation?: string | null;
  decision?: 'accepted' | 'rejected';
  decision_reason?: string | null;
}

/**
 * PATCH /api/reports/:id's `findings` for a change to finding `number`: every finding kept by its
 * number and present text (so nothing else changes), the one changed carrying the change.
 */
export function findingsPatch(findings: FindingFields[], number: number, change: FindingChange): FindingEditBody[] {
  if (!findings.some((f) => f.number === number)) throw new Error(`finding ${number} is not in the report`);
  return findings.map((f): FindingEditBody => {
    const keep: FindingEditBody = { number: f.number, description: f.description };
    if (f.number !== number) return keep;
    if ('edit' in change) {
      const e = change.edit;
      const text = (v: string | null | undefined) => (v === undefined ? undefined : v === null || v.trim() === '' ? null : v.trim());
      const out: FindingEditBody = { number, description: e.description.trim() };
      for (const k of ['anatomical_location', 'recommendation'] as const) if (e[k] !== undefined) out[k] = text(e[k]);
      for (const k of ['laterality', 'category', 'severity'] as const) if (e[k] !== undefined) out[k] = e[k] || null;
      return out;
    }
    if (change.decision === 'rejected') return { ...keep, decision: 'rejected', decision_reason: change.decision_reason.trim() };
    return { ...keep, decision: 'accepted', decision_reason: null };
  });
}

/** A model's confidence (0–1) as people read it: "60%"; none: "—". */
export function confidenceLabel(c: number | null | undefined): string {
  return typeof c === 'number' && Number.isFinite(c) ? `${Math.round(c * 100)}%` : '—';
}

/** Where a finding is: "right upper lobe (right)"; the laterality alone when there is no location. */
export function placeLabel(location: string | null | undefined, laterality: string | null | undefined): string {
  const side = laterality && laterality !== 'not_applicable' ? laterality : '';
  if (location && side && !location.toLowerCase().includes(side)) return `${location} (${side})`;
  return location || side || '—';
}
