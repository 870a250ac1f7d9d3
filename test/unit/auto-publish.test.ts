import { expect } from 'chai';
import type { Analysis, AnalysisModel } from '../../src/analysis/analyses.js';
import { BLOCKING_SAFETY_RULES, mayAutoPublish, type AutoPublishConfig } from '../../src/reports/auto-publish.js';

const SHA = 'a'.repeat(64);
const MMPROJ = 'b'.repeat(64);

/** A recorded model; unvalidated unless said otherwise. */
function model(over: Partial<AnalysisModel>): AnalysisModel {
  return {
    name: 'medgemma-4b.gguf',
    sha256: SHA,
    quantization: 'Q4_K_M',
    mmprojSha256: MMPROJ,
    backend: 'llama-server',
    validated: false,
    validation: { basis: 'none', reason: 'matches no known release; weights unverified' },
    architecture: 'gemma3',
    ggufName: null,
    bytes: null,
    parameters: null,
    mmproj: null,
    ...over,
  };
}

function analysis(over: Partial<Analysis> = {}): Analysis {
  return {
    id: 1,
    studyInstanceUid: '1.2.3',
    status: 'succeeded',
    analysisType: 'primary',
    trigger: 'auto',
    requestedBy: null,
    clinicalIndication: null,
    focus: null,
    jobId: 1,
    progress: { stage: 'done', percent: 100 },
    sourceReceivedAt: null,
    seriesInstanceUid: '1.2.3.4',
    volumeId: null,
    priorStudyInstanceUid: null,
    model: model({ validated: true, validation: { basis: 'sha256-allowlist', reason: 'model and mmproj SHA-256 trusted' } }),
    prompt: null,
    images: [],
    impression: 'No acute finding.',
    comparison: null,
    technicalLimitations: null,
    safetyFlags: [],
    rawAnswer: null,
    provenance: null,
    timings: {},
    selection: null,
    error: null,
    createdAt: '2024-01-01T00:00:00.000Z',
    startedAt: null,
    finishedAt: null,
    aiDraft: true,
    ...over,
  };
}

const config = (c: Partial<AutoPublishConfig> = {}): AutoPublishConfig => ({
  autoPublish: true,
  allowUnvalidatedModel: false,
  ...c,
});

describe('unit: auto-publish gate (mayAutoPublish)', () => {
  it('a validated model (its hashes trusted) and no blocking flag: published', () => {
    expect(mayAutoPublish(analysis(), config())).to.deep.equal({ publish: true });
  });

  it('an unvalidated model is held, unless MEDGEMMA_ALLOW_UNVALIDATED_MODEL', () => {
    const untrustedMmproj = mayAutoPublish(analysis({ model: model({}) }), config());
    expect(untrustedMmproj).to.deep.include({ publish: false });
    expect((untrustedMmproj as { reason: string }).reason).to.match(/medgemma-4b\.gguf is not validated.*MEDGEMMA_ALLOW_UNVALIDATED_MODEL/);
    const remote = analysis({
      model: model({ name: 'medgemma', sha256: null, quantization: null, mmprojSha256: null, backend: 'remote' }),
    });
    expect(mayAutoPublish(remote, config())).to.deep.include({ publish: false });
    expect(mayAutoPublish(remote, config({ allowUnvalidatedModel: true }))).to.deep.equal({ publish: true });
    expect(mayAutoPublish(analysis({ model: null }), config())).to.deep.include({ publish: false });
  });

  it('the stored model.validated decides, whatever the hashes look like', () => {
    const untrusted = { ...analysis().model!, validated: false };
    expect(mayAutoPublish(analysis({ model: untrusted }), config())).to.deep.include({ publish: false });
    const trusted = { ...analysis().model!, sha256: 'c'.repeat(64), validated: true };
    expect(mayAutoPublish(analysis({ model: trusted }), config())).to.deep.equal({ publish: true });
  });

  it('blocking safety flags hold the draft and are named; wording flags do not', () => {
    expect(BLOCKING_SAFETY_RULES).to.include.members(['phi_echo', 'truncated']);
    const wording = analysis({ safetyFlags: [{ target: 'impression', phrase: 'definitely', rule: 'certainty' }] });
    expect(mayAutoPublish(wording, config())).to.deep.equal({ publish: true });
    const held = mayAutoPublish(
      analysis({
        safetyFlags: [
          { target: 0, phrase: '[redacted name]', rule: 'phi_echo' },
          { target: 'answer', phrase: 'finish_reason: length', rule: 'truncated' },
          { target: 0, phrase: '[redacted id]', rule: 'phi_echo' },
        ],
      }),
      config({ allowUnvalidatedModel: true }),
    );
    expect(held).to.deep.equal({ publish: false, reason: 'blocking safety flags: phi_echo (finding 1), truncated (answer)' });
  });
});
