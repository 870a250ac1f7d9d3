import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { canonicalJson, requestProvenance } from '../../src/medgemma/request-provenance.js';
import { forwardingHold } from '../../src/reports/publish.js';
import { ruleMatches } from '../../src/forwarding/rules.js';
import type { Analysis } from '../../src/analysis/analyses.js';
import type { InstanceRecord } from '../../src/catalog/catalog.js';

const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');

describe('analysis provenance (request digests) and the unvalidated-model forwarding hold', () => {
  const png = Buffer.from('png-bytes-0');
  const jpeg = Buffer.from('jpeg-bytes-1');
  const schema = { type: 'object', properties: { b: { type: 'string' }, a: { type: 'integer' } } };
  const body = {
    model: 'medgemma',
    messages: [
      { role: 'system', content: 'You are careful.' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Describe.' },
          { type: 'image_url', image_url: { url: 'file://call/0.png' } },
          { type: 'text', text: 'SLICE 1' },
          { type: 'image_url', image_url: { url: `data:image/jpeg;base64,${jpeg.toString('base64')}` } },
        ],
      },
    ],
    max_tokens: 2048,
    temperature: 0,
    top_k: 1,
    seed: 7,
    response_format: { type: 'json_schema', json_schema: { name: 'findings', strict: true, schema } },
  };

  it('hashes what was sent: system and user prompt, schema, sampling, every image (file media and data URLs) in order', () => {
    const p = requestProvenance(body, { images: [png], llamaBuild: 'b1-de3ff81' });
    expect(p.systemPromptSha256).to.equal(sha('You are careful.'));
    expect(p.imageSha256).to.deep.equal([sha(png), sha(jpeg)]);
    expect(p.userPromptSha256).to.equal(
      sha(
        canonicalJson([
          { type: 'text', text: 'Describe.' },
          { type: 'image', index: 0 },
          { type: 'text', text: 'SLICE 1' },
          { type: 'image', index: 1 },
        ]),
      ),
    );
    // Key order does not change the schema's digest.
    expect(p.schemaSha256).to.equal(sha(canonicalJson({ properties: { a: { type: 'integer' }, b: { type: 'string' } }, type: 'object' })));
    expect(p.sampling).to.deep.equal({ temperature: 0, top_k: 1, seed: 7, max_tokens: 2048 });
    expect(p.samplingSha256).to.equal(sha(canonicalJson(p.sampling)));
    expect(p.llamaBuild).to.equal('b1-de3ff81');
  });

  it('no system message: null; another prompt, temperature or image: another digest', () => {
    const plain = { messages: [{ role: 'user', content: 'Describe.' }], temperature: 0 };
    const p = requestProvenance(plain, { schema });
    expect(p.systemPromptSha256).to.equal(null);
    expect(p.imageSha256).to.deep.equal([]);
    expect(p.llamaBuild).to.equal(null);
    expect(p.schemaSha256).to.equal(requestProvenance(body).schemaSha256);
    expect(requestProvenance({ ...plain, temperature: 0.7 }).samplingSha256).to.not.equal(p.samplingSha256);
    expect(requestProvenance({ ...plain, messages: [{ role: 'user', content: 'Describe!' }] }).userPromptSha256).to.not.equal(
      p.userPromptSha256,
    );
    expect(requestProvenance(body, { images: [Buffer.from('other')] }).imageSha256[0]).to.not.equal(sha(png));
  });

  const analysis = (validated: boolean | null): Analysis =>
    ({
      model:
        validated === null
          ? null
          : { name: 'm.gguf', validated, validation: { basis: validated ? 'sha256-allowlist' : 'none', reason: 'why' } },
    }) as unknown as Analysis;

  it('an unvalidated (or unknown) model is held from forwarding rules unless MEDGEMMA_ALLOW_UNVALIDATED_MODEL', () => {
    expect(forwardingHold(analysis(true), false)).to.equal(undefined);
    expect(forwardingHold(analysis(false), false)).to.match(/unvalidated model \(why\)/);
    expect(forwardingHold(analysis(null), false)).to.match(/unvalidated model/);
    expect(forwardingHold(analysis(false), true)).to.equal(undefined);
  });

  it('a held instance matches no forwarding rule, not even aiResults or a catch-all', () => {
    const rec = (holdForwarding?: string) =>
      ({
        patient: { patientId: 'P', issuerOfPatientId: '' },
        study: { studyInstanceUid: '1.2.3' },
        series: { seriesInstanceUid: '1.2.3.4', modality: 'SR' },
        instance: { sopInstanceUid: '1.2.3.4.5', sopClassUid: '1.2.840.10008.5.1.4.1.1.88.34', source: 'ai', holdForwarding },
      }) as unknown as InstanceRecord;
    expect(ruleMatches({ aiResults: true }, rec())).to.equal(true);
    expect(ruleMatches({}, rec())).to.equal(true);
    expect(ruleMatches({ aiResults: true }, rec('unvalidated model'))).to.equal(false);
    expect(ruleMatches({}, rec('unvalidated model'))).to.equal(false);
  });
});
