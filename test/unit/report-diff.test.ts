import { expect } from 'chai';
import { toCsv } from '../../src/http/csv.js';
import type { BodyFinding, ReportBody } from '../../src/reports/body.js';
import type { Report, ReportVersion } from '../../src/reports/report-store.js';
import { decisionsOf, diffBodies, reviewStatus } from '../../src/reports/review.js';

function finding(number: number, over: Partial<BodyFinding> = {}): BodyFinding {
  return {
    number,
    trackingUid: `2.25.${number}`,
    description: `finding ${number}`,
    anatomicalLocation: null,
    laterality: null,
    category: 'abnormal',
    severity: null,
    confidence: 0.5,
    imageIndices: [number],
    region: null,
    recommendation: null,
    author: 'ai',
    analysisIndex: number - 1,
    ...over,
  };
}

const body = (findings: BodyFinding[], impression = 'x'): ReportBody => ({
  clinicalIndication: null,
  technique: 'CT',
  findings,
  measurements: [],
  impression,
  comparison: null,
  limitations: null,
});

const version = (n: number, b: ReportBody, by: string): ReportVersion => ({
  version: n,
  state: n === 1 ? 'draft' : 'preliminary',
  action: n === 1 ? 'create' : 'edit',
  changedBy: by,
  changedAt: `2026-01-0${n}T00:00:00.000Z`,
  changes: [],
  body: b,
  reason: null,
  srSopInstanceUid: null,
  pdfSopInstanceUid: null,
});

describe('report review: diff, decisions, CSV', () => {
  it('diffs two bodies by tracking UID: added, removed, changed fields (renumbering alone is a change), impression', () => {
    const a = body([finding(1), finding(2), finding(3)], 'old');
    const b = body(
      [
        { ...finding(1), decision: 'accepted', decisionReason: null },
        { ...finding(3), number: 2, description: 'reworded', author: 'radiologist', confidence: null },
        finding(4, { number: 3, author: 'radiologist', analysisIndex: undefined }),
      ],
      'new',
    );
    const d = diffBodies(a, b);
    expect(d.added.map((f) => f.tracking_uid)).to.deep.equal(['2.25.4']);
    expect(d.removed.map((f) => f.tracking_uid)).to.deep.equal(['2.25.2']);
    expect(d.changed.map((c) => c.tracking_uid)).to.deep.equal(['2.25.1', '2.25.3']);
    expect(d.changed[0]!.fields).to.deep.equal({ decision: { from: null, to: 'accepted' } });
    expect(d.changed[1]).to.deep.include({ from_number: 3, to_number: 2 });
    expect(d.changed[1]!.fields).to.deep.equal({ description: { from: 'finding 3', to: 'reworded' }, confidence: { from: 0.5, to: null } });
    expect(d.impression).to.deep.equal({ from: 'old', to: 'new' });
    expect(diffBodies(a, a)).to.deep.equal({ added: [], removed: [], changed: [], impression: null });
  });

  it('a decision is credited to the version since which the finding has had it', () => {
    const v1 = body([finding(1), finding(2)]);
    const v2 = body([finding(1), { ...finding(2), decision: 'rejected', decisionReason: 'artefact' }]);
    const v3 = body([
      { ...finding(1), decision: 'accepted' },
      { ...finding(2), decision: 'rejected', decisionReason: 'artefact' },
    ]);
    const versions = [version(1, v1, 'radiant-ai'), version(2, v2, 'dr.a'), version(3, v3, 'dr.b')];
    const report = { id: 7, version: 3, studyInstanceUid: '1.2.3', analysisId: 9, body: v3, updatedAt: 'later' } as Report;
    const d = decisionsOf(report, versions, undefined);
    expect(d.map((x) => [x.finding_number, x.decision, x.reason, x.decided_by, x.decided_at])).to.deep.equal([
      [1, 'accepted', null, 'dr.b', '2026-01-03T00:00:00.000Z'],
      [2, 'rejected', 'artefact', 'dr.a', '2026-01-02T00:00:00.000Z'],
    ]);
    expect(reviewStatus('preliminary')).to.equal('draft');
    expect(reviewStatus('final')).to.equal('signed');
  });

  it('CSV: quoted where needed, formula-like text defused, numbers kept', () => {
    const rows = [
      { a: 'plain', b: 'has, comma', c: '=SUM(A1)' },
      { a: -3.5, b: 'say "hi"\nbye', c: null },
    ];
    expect(toCsv<(typeof rows)[number]>(['a', 'b', 'c'], rows)).to.equal(
      'a,b,c\r\nplain,"has, comma",\'=SUM(A1)\r\n-3.5,"say ""hi""\nbye",\r\n',
    );
  });
});
