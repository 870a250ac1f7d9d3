import { expect } from 'chai';
import { hasRepetitionLoop, jsonCandidate, MAX_ANSWER_CHARS, stripThinking } from '../../src/medgemma/answer-text.js';
import { EngineError, type JsonSchema } from '../../src/medgemma/engine.js';
import { finishResult } from '../../src/medgemma/finish.js';
import { dateSpellings, findPhi, redact } from '../../src/medgemma/phi-echo.js';
import { flagAnswer, safetyGate } from '../../src/medgemma/safety-gate.js';
import { scanPhrasing } from '../../src/medgemma/safety-lexicon.js';

const schema: JsonSchema = {
  type: 'object',
  required: ['findings', 'impression'],
  properties: {
    findings: { type: 'array', items: { type: 'object', required: ['description'], properties: { description: { type: 'string' } } } },
    impression: { type: 'string' },
  },
};
const answer = (description: string, impression = 'See findings.') => JSON.stringify({ findings: [{ description }], impression });
const timings = { promptMs: 1, predictedMs: 1, tokens: 1, tokensPerSecond: 1, totalMs: 2 };
const model = {
  name: 'm.gguf',
  sha256: null,
  quantization: null,
  validated: false,
  validation: { basis: 'none' as const, reason: 'test' },
};

function failure(r: ReturnType<typeof safetyGate>): string {
  expect(r.verdict.status).to.equal('failed');
  expect(r.answer).to.equal(null);
  return r.verdict.status === 'failed' ? r.verdict.reason : '';
}

describe('unit: safety gate (flags, never rewrites)', () => {
  describe("the issue's examples", () => {
    it('"Biopsy confirmed adenocarcinoma" is flagged on its finding and kept verbatim', () => {
      const raw = answer('Biopsy confirmed adenocarcinoma.');
      const r = safetyGate({ rawText: raw, schema });
      expect(r.verdict).to.deep.equal({ status: 'ok' });
      expect(r.answer).to.deep.equal(JSON.parse(raw));
      expect(r.flags).to.deep.equal([{ target: 0, phrase: 'Biopsy confirmed', rule: 'definitive_diagnosis' }]);
    });
    it('"Pulmonary embolism cannot be ruled out" and "not diagnostic of" are neither rewritten nor flagged', () => {
      const raw = answer('Pulmonary embolism cannot be ruled out.', 'The pattern is not diagnostic of sarcoidosis.');
      const r = safetyGate({ rawText: raw, schema });
      expect(r.answer).to.deep.equal(JSON.parse(raw));
      expect(r.flags).to.deep.equal([]);
    });
    it('"Diagnosis: …", "definite" and "rule out" are flagged', () => {
      const r = flagAnswer({
        findings: [{ description: 'Definite fracture of the left radius.' }, { description: 'These images rule out a pneumothorax.' }],
        impression: 'Diagnosis: distal radius fracture.',
      });
      expect(r.flags).to.deep.equal([
        { target: 0, phrase: 'Definite', rule: 'certainty' },
        { target: 1, phrase: 'rule out', rule: 'certainty' },
        { target: 'impression', phrase: 'Diagnosis:', rule: 'definitive_diagnosis' },
      ]);
    });
  });

  it('scans every text field of a finding, and other fields as the answer', () => {
    const r = flagAnswer({
      findings: [{ description: 'Opacity.', recommendation: 'This confirms pneumonia.' }],
      technical_limitations: 'Motion excludes assessment.',
    });
    expect(r.flags).to.deep.equal([
      { target: 0, phrase: 'confirms', rule: 'definitive_diagnosis' },
      { target: 'answer', phrase: 'excludes', rule: 'certainty' },
    ]);
  });

  it('negation and hypothetical context: NegEx-style cues before, and after adjectives and labels', () => {
    for (const t of [
      'No definite fracture.',
      'Malignancy cannot be excluded.',
      'A fracture is not excluded.',
      'Recommend CT to rule out pulmonary embolism.',
      'Rule out pulmonary embolism.',
      'This should be confirmed with MRI.',
      'The most likely diagnosis is pneumonia.',
      'Differential diagnosis: lymphoma or sarcoidosis.',
      'Definite fracture is not seen.',
      'Lung apices are excluded from the field of view.',
    ])
      expect(scanPhrasing(t), t).to.deep.equal([]);
    expect(scanPhrasing('There is no doubt that this is a tumour.').map((h) => h.phrase)).to.deep.equal(['no doubt']);
    expect(scanPhrasing('It is definitely not a fracture.').map((h) => h.rule)).to.deep.equal(['certainty']);
  });

  describe('PHI echo', () => {
    const phi = { patientName: 'DOE^JOHN^^^', patientId: 'MRN12345', birthDate: '19560312' };
    it('finds the name in any order and case, the ID, and the birth date in common formats', () => {
      for (const t of [
        'John Doe',
        'DOE, JOHN',
        'doe^john',
        'Mr Doe',
        'patient doe',
        'MRN12345',
        'mrn12345',
        '19560312',
        '1956-03-12',
        '12/03/1956',
        '03/12/1956',
        '12.03.1956',
        '12 March 1956',
        'Mar 12, 1956',
      ])
        expect(findPhi(`Seen: ${t}; no effusion.`, phi), t).to.have.length(1);
      for (const t of ['the doe-eyed', 'MRN123456', '19560313', 'john']) expect(findPhi(`Seen: ${t}.`, phi), t).to.deep.equal([]);
      expect(dateSpellings('bad')).to.deep.equal([]);
    });
    it('redacts the published copy, flags without repeating the identifier, keeps the raw text verbatim', () => {
      const raw = answer('Small nodule in John Doe (MRN12345, born 1956-03-12).', 'Nodule; likely benign.');
      const r = safetyGate({ rawText: raw, schema, phi });
      expect(r.verdict).to.deep.equal({ status: 'ok' });
      expect((r.answer as { findings: Array<{ description: string }> }).findings[0]!.description).to.equal(
        'Small nodule in [redacted] ([redacted], born [redacted]).',
      );
      expect(r.flags).to.deep.equal([
        { target: 0, phrase: '[redacted patient_name]', rule: 'phi_echo' },
        { target: 0, phrase: '[redacted patient_id]', rule: 'phi_echo' },
        { target: 0, phrase: '[redacted birth_date]', rule: 'phi_echo' },
      ]);
      expect(JSON.stringify(r.flags)).not.to.match(/doe|MRN|1956/i);
      const result = finishResult(raw, schema, 'remote', model, timings, 'stop', phi);
      expect(result.rawText).to.equal(raw);
      expect(JSON.stringify(result.json)).not.to.include('Doe');
    });
    it('a name that is also a word is only PHI when written as a name', () => {
      const white = { patientName: 'WHITE^MARY' };
      expect(findPhi('White matter changes; periventricular white matter.', white)).to.deep.equal([]);
      expect(redact('Ms White has white matter changes.', findPhi('Ms White has white matter changes.', white))).to.equal(
        'Ms [redacted] has white matter changes.',
      );
    });
  });

  describe('bounded parsing', () => {
    it('accepts a ```json fence and prose around one object', () => {
      const body = answer('Opacity.');
      for (const raw of [
        '```json\n' + body + '\n```',
        'Here is the report:\n```\n' + body + '\n```\nDone.',
        `Sure! ${body} Hope this helps.`,
      ]) {
        const r = safetyGate({ rawText: raw, schema });
        expect(r.verdict, raw).to.deep.equal({ status: 'ok' });
        expect(r.answer).to.deep.equal(JSON.parse(body));
      }
      expect(jsonCandidate('```json\n{"a":1}')).to.equal('{"a":1}');
    });
    it('a 10 MB answer is a clean failure, not a crash, in under 2 s', function () {
      this.timeout(10_000);
      const words = 'opacity nodule effusion lobe margin density contour fissure hilum apex'.split(' ');
      let varied = '';
      for (let i = 0; varied.length < 10e6; i++) varied += `${words[i % 10]}${i} `;
      const looping = '{"findings":[{"description":"' + 'abc'.repeat(3.4e6);
      const deepJson = '['.repeat(5e6) + ']'.repeat(5e6);
      for (const raw of [varied, looping, deepJson, 'x'.repeat(10e6)]) {
        const t0 = performance.now();
        const reason = failure(safetyGate({ rawText: raw, schema }));
        expect(performance.now() - t0, reason).to.be.below(2000);
        expect(reason).to.match(/over the \d+ limit/);
      }
      expect(failure(safetyGate({ rawText: looping, schema }))).to.match(/^a repetition loop/);
      expect(() => finishResult(varied, schema, 'remote', model, timings)).to.throw(EngineError, /unusable/);
    });
    it('an answer just under the cap, full of flags, is read in bounded time', function () {
      this.timeout(10_000);
      const sentences: string[] = [];
      for (let i = 0, size = 0; size < MAX_ANSWER_CHARS - 1000; i++) {
        sentences.push(`Nodule ${i} confirmed, not definitely ${i % 7} mm.`);
        size += sentences[i]!.length + 1;
      }
      const t0 = performance.now();
      const r = safetyGate({ rawText: JSON.stringify({ findings: [], impression: sentences.join(' ') }) });
      expect(performance.now() - t0).to.be.below(2000);
      expect(r.verdict).to.deep.equal({ status: 'ok' });
      expect(r.flags).to.have.length(201);
      expect(r.flags[200]).to.deep.equal({ target: 'answer', phrase: '', rule: 'flags_truncated' });
    });
    it('stripThinking is linear in the number of blocks', () => {
      const many = '<unused94>x<unused95>'.repeat(200_000) + '{"a":1}';
      const t0 = performance.now();
      expect(stripThinking(many).text).to.equal('{"a":1}');
      expect(performance.now() - t0).to.be.below(1000);
    });
  });

  describe('verdicts', () => {
    it('empty → failed: no text, blanks, punctuation, or JSON with no text in it', () => {
      for (const raw of ['', '  \n', '{}', '<unused94>thinking only<unused95>', JSON.stringify({ findings: [], impression: '  ' })])
        expect(failure(safetyGate({ rawText: raw, schema: raw.startsWith('{"') ? schema : {} })), raw).to.match(/empty answer/);
    });
    it('a repetition loop → failed, even when the text still parses', () => {
      const loop = answer('The the the the the the the the lung.');
      expect(failure(safetyGate({ rawText: loop, schema }))).to.match(/repetition loop/);
      expect(failure(safetyGate({ rawText: answer('ab'.repeat(40)), schema }))).to.match(/repetition loop/);
      expect(hasRepetitionLoop(answer('A 1111 mm reading of 11111111 is implausible.'))).to.equal(false);
    });
    it('unparseable → failed with the reason; EngineError carries the verbatim text', () => {
      expect(failure(safetyGate({ rawText: 'I cannot read these images.', schema }))).to.match(/not JSON/);
      expect(failure(safetyGate({ rawText: '{"impression":"x"}', schema }))).to.match(/does not match the schema/);
      const raw = '<unused94>hm<unused95>{"findings": [ oops';
      let err: unknown;
      try {
        finishResult(raw, schema, 'llama-server', model, timings, 'stop');
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(EngineError);
      expect((err as EngineError).kind).to.equal('bad_output');
      expect((err as EngineError).details.rawText).to.equal(raw);
    });
    it("finish_reason 'length' is flagged as truncated, and named in a failure", () => {
      const r = safetyGate({ rawText: answer('Opacity.'), schema, finishReason: 'length' });
      expect(r.verdict).to.deep.equal({ status: 'ok' });
      expect(r.flags).to.deep.equal([{ target: 'answer', phrase: 'finish_reason: length', rule: 'truncated' }]);
      const cut = safetyGate({ rawText: '{"findings":[{"description":"Opac', schema, finishReason: 'length' });
      expect(failure(cut)).to.match(/finish_reason "length"/);
      expect(cut.flags.map((f) => f.rule)).to.deep.equal(['truncated']);
      expect(safetyGate({ rawText: answer('Opacity.'), schema, finishReason: 'stop' }).flags).to.deep.equal([]);
    });
    it('finishResult keeps the raw text verbatim, with the flags and the finish reason', () => {
      const raw = '<unused94>Let me think.<unused95>' + answer('This confirms an opacity.');
      const r = finishResult<{ findings: Array<{ description: string }> }>(raw, schema, 'remote', model, timings, 'stop');
      expect(r.rawText).to.equal(raw);
      expect(r.finishReason).to.equal('stop');
      expect(r.json.findings[0]!.description).to.equal('This confirms an opacity.');
      expect(r.safetyFlags).to.deep.equal([
        { target: 'answer', phrase: '<unused94>', rule: 'thinking_stripped' },
        { target: 0, phrase: 'confirms', rule: 'definitive_diagnosis' },
      ]);
    });
  });
});
