import { expect } from 'chai';
import { personDisplayName, userDisplayName, userPersonName } from '../../src/auth/users.js';
import { acceptUndecided, applyPatch, bodyPatch, rejectedFindings, type BodyFinding, type ReportBody } from '../../src/reports/body.js';
import { reportSeriesDescription, reportSeriesNumber } from '../../src/reports/series.js';

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

const body = (): ReportBody => ({
  clinicalIndication: null,
  technique: 'CT',
  findings: [finding(1), finding(2), finding(3)],
  measurements: [{ findingNumber: 2, quantity: 'Length', value: 3, unit: 'mm' }],
  impression: 'x',
  comparison: null,
  limitations: null,
});

const keep = (b: ReportBody) => b.findings.map((f) => ({ number: f.number, description: f.description }));

describe('report review (issue 16)', () => {
  describe('signatures: display name and credentials', () => {
    it('PN with credentials as the suffix, shown given names first', () => {
      expect(userPersonName({ username: 'jd', fullName: 'Jane Doe', credentials: 'MD' })).to.equal('Doe^Jane^^^MD');
      expect(userDisplayName({ username: 'jd', fullName: 'Jane Doe', credentials: 'MD' })).to.equal('Jane Doe, MD');
      expect(userPersonName({ username: 'zm', fullName: 'Müller^Zoë', credentials: 'MD, PhD' })).to.equal('Müller^Zoë^^^MD, PhD');
      expect(userDisplayName({ username: 'zm', fullName: 'Müller^Zoë', credentials: null })).to.equal('Zoë Müller');
      expect(userDisplayName({ username: 'rad', fullName: null, credentials: null })).to.equal('rad');
      // PN delimiters in the words cannot split the name.
      expect(userPersonName({ username: 'x', fullName: 'A B', credentials: 'M^D' })).to.equal('B^A^^^M D');
      expect(personDisplayName('Šimić^Ana^^Dr.^MD')).to.equal('Dr. Ana Šimić, MD');
    });
  });

  describe('series per report and version', () => {
    it('numbers and descriptions differ between reports, versions, SR and PDF', () => {
      const n = new Set([
        reportSeriesNumber(1, 1, 'SR'),
        reportSeriesNumber(1, 1, 'PDF'),
        reportSeriesNumber(1, 3, 'SR'),
        reportSeriesNumber(2, 1, 'SR'),
        reportSeriesNumber(2, 1, 'PDF'),
      ]);
      expect(n.size).to.equal(5);
      expect(reportSeriesNumber(3, 1, 'SR')).to.equal(100301);
      const at = '2026-01-02T03:04:05Z';
      expect(reportSeriesDescription({ state: 'draft', reportId: 3, version: 1, createdAt: at }, 'SR')).to.equal(
        'AI DRAFT - not reviewed - R3 v1 2026-01-02',
      );
      expect(reportSeriesDescription({ state: 'final', reportId: 3, version: 3, createdAt: at }, 'PDF')).to.equal(
        'Signed report - R3 v3 2026-01-02 (PDF)',
      );
    });

    it("an SR's text rendition has its own number, apart from every SR and PDF number, and says (text)", () => {
      expect(reportSeriesNumber(3, 1, 'TEXT')).to.equal(2000301);
      const sr = new Set<number>();
      for (const r of [0, 1, 9999])
        for (let v = 1; v <= 49; v++) for (const k of ['SR', 'PDF'] as const) sr.add(reportSeriesNumber(r, v, k));
      const text = [0, 1, 9999].flatMap((r) => [1, 2, 49].map((v) => reportSeriesNumber(r, v, 'TEXT')));
      expect(new Set(text).size).to.equal(text.length);
      for (const t of text) expect(sr.has(t), String(t)).to.equal(false);
      expect(reportSeriesDescription({ state: 'final', reportId: 3, version: 3, createdAt: '2026-01-02T03:04:05Z' }, 'TEXT')).to.equal(
        'Signed report - R3 v3 2026-01-02 (text)',
      );
    });
  });

  describe('per-finding decisions in PATCH', () => {
    it('a rejection needs its reason; it is kept in the body and listed as rejected', () => {
      const without = bodyPatch.parse({ findings: keep(body()).map((f) => (f.number === 2 ? { ...f, decision: 'rejected' } : f)) });
      expect(() => applyPatch(body(), without)).to.throw(/needs decision_reason/);
      const p = bodyPatch.parse({
        findings: keep(body()).map((f) => (f.number === 2 ? { ...f, decision: 'rejected', decision_reason: 'artefact' } : f)),
      });
      const { body: b, changes } = applyPatch(body(), p);
      expect(b.findings[1]).to.include({ decision: 'rejected', decisionReason: 'artefact' });
      expect(changes).to.deep.include({ field: 'finding 2 decision', from: null, to: 'rejected: artefact' });
      expect(rejectedFindings(b)).to.deep.equal([{ number: 2, trackingUid: '2.25.2', description: 'finding 2', reason: 'artefact' }]);
    });

    it("rewording makes the finding the radiologist's and edited; signing accepts what was left as it was", () => {
      const p = bodyPatch.parse({ findings: keep(body()).map((f) => (f.number === 1 ? { ...f, description: 'mine' } : f)) });
      const { body: b } = applyPatch(body(), p);
      expect(b.findings[0]).to.include({ author: 'radiologist', decision: 'edited', confidence: null });
      const signed = acceptUndecided(b).body;
      expect(signed.findings.map((f) => f.decision)).to.deep.equal(['edited', 'accepted', 'accepted']);
    });

    it('a radiologist gives a finding an image, a region (source pixels) and a confidence; indices are checked', () => {
      const p = bodyPatch.parse({
        findings: [
          ...keep(body()),
          { description: 'new', image_indices: [4], region: { image_index: 5, box: [1, 2, 30, 40] }, confidence: 0.8 },
        ],
      });
      const { body: b } = applyPatch(body(), p, { images: 10 });
      expect(b.findings[3]).to.deep.include({
        author: 'radiologist',
        confidence: 0.8,
        imageIndices: [5, 4],
        region: { imageIndex: 5, box: [1, 2, 30, 40], space: 'source' },
      });
      expect(() => applyPatch(body(), p, { images: 5 })).to.throw(/image index 5 does not exist/);
      const inverted = bodyPatch.parse({ findings: [{ description: 'x', region: { image_index: 0, box: [9, 9, 1, 1] } }] });
      expect(() => applyPatch(body(), inverted)).to.throw(/x0 <= x1/);
    });

    it("the radiologist's own finding cannot be accepted or rejected", () => {
      const b = { ...body(), findings: [finding(1, { author: 'radiologist', analysisIndex: undefined })] };
      const p = bodyPatch.parse({ findings: [{ number: 1, description: 'finding 1', decision: 'accepted' }] });
      expect(() => applyPatch(b, p)).to.throw(/radiologist's own/);
    });
  });
});
