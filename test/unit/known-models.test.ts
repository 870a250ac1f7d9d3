import { expect } from 'chai';
import { insecureEndpoint, isLoopbackHost, loadConfig } from '../../src/config.js';
import { EngineError } from '../../src/medgemma/engine.js';
import { type GgufGeometry, matchRelease, validateModel } from '../../src/medgemma/known-models.js';
import { lfsSha256 } from '../../src/medgemma/model-pull.js';

const gemma4b = (name: string): GgufGeometry => ({
  architecture: 'gemma3',
  name,
  embeddingLength: 2560,
  blockCount: 34,
  feedForwardLength: 10240,
  headCount: 8,
  headCountKv: 4,
  vocabSize: 262208,
});
const gemma27b = (name: string): GgufGeometry => ({
  architecture: 'gemma3',
  name,
  embeddingLength: 5376,
  blockCount: 62,
  feedForwardLength: 21504,
  headCount: 32,
  headCountKv: 16,
  vocabSize: 262144,
});
// fixtures/tiny-model.ts: the random-weight test model
const tiny: GgufGeometry = {
  architecture: 'gemma3',
  name: 'radiant-tiny-gemma3 (random weights, test only)',
  embeddingLength: 64,
  blockCount: 2,
  feedForwardLength: 128,
  headCount: 2,
  headCountKv: 1,
  vocabSize: 300,
};
const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

describe('unit: known MedGemma releases and model validation', () => {
  it('names the release a file claims to be by its Gemma 3 geometry and its name', () => {
    expect(matchRelease(gemma4b('Medgemma 4b It'), 'medgemma-4b-it-Q4_K_M.gguf', true)).to.equal('MedGemma 4B-it');
    expect(matchRelease(gemma4b('Medgemma 1.5 4b It'), 'x.gguf', true)).to.equal('MedGemma 1.5 4B-it');
    expect(matchRelease(gemma4b('model'), 'medgemma-1.5-4b-it-Q8_0.gguf')).to.equal('MedGemma 1.5 4B-it');
    expect(matchRelease(gemma27b('Medgemma 27b Text It'), 'medgemma-27b-text-it-Q4_K_M.gguf')).to.equal('MedGemma 27B-it (text only)');
    expect(matchRelease(gemma27b('Medgemma 27b It'), 'medgemma-27b-it-Q4_K_M.gguf', true)).to.equal('MedGemma 27B-it (multimodal)');
    // a text-only release with a projector, a plain Gemma 3 of the same shapes, other shapes: no release
    expect(matchRelease(gemma27b('Medgemma 27b Text It'), 'm.gguf', true)).to.equal(undefined);
    expect(matchRelease(gemma4b('Gemma 3 4b It'), 'gemma-3-4b-it-Q4_K_M.gguf')).to.equal(undefined);
    expect(matchRelease({ ...gemma4b('Medgemma 4b It'), blockCount: 33 }, 'medgemma.gguf')).to.equal(undefined);
    expect(matchRelease({ ...gemma4b('Medgemma 4b It'), vocabSize: 32000 }, 'medgemma.gguf')).to.equal(undefined);
    expect(matchRelease({ ...gemma4b('Medgemma 4b It'), architecture: 'llama' }, 'medgemma.gguf')).to.equal(undefined);
    expect(matchRelease(tiny, 'tiny-gemma3.gguf', true)).to.equal(undefined);
  });

  it('the tiny random-weight model is not validated, and says why', () => {
    const v = validateModel({
      fileName: 'tiny-gemma3.gguf',
      sha256: A,
      geometry: tiny,
      mmproj: { sha256: B, projectionDim: 64 },
      trusted: [],
    });
    expect(v.validated).to.equal(false);
    expect(v.validation.basis).to.equal('none');
    expect(v.validation.release).to.equal(undefined);
    expect(v.validation.reason)
      .to.match(/matches no known MedGemma release/)
      .and.match(/unverified/);
  });

  it('known shapes alone do not validate: random weights in MedGemma shapes stay unvalidated', () => {
    const v = validateModel({ fileName: 'medgemma-4b-it-Q4_K_M.gguf', sha256: A, geometry: gemma4b('Medgemma 4b It'), trusted: [] });
    expect(v).to.deep.equal({
      validated: false,
      validation: {
        basis: 'known-release-shapes',
        release: 'MedGemma 4B-it',
        reason: `the file's shapes and name are those of MedGemma 4B-it, but its SHA-256 aaaaaaaaaaaa… is neither in MEDGEMMA_TRUSTED_SHA256 nor a known published file: the weights are unverified`,
      },
    });
  });

  it('an admin-listed SHA-256 of the model and its projector validates', () => {
    const g = gemma4b('Medgemma 1.5 4b It');
    const ok = validateModel({ fileName: 'm.gguf', sha256: A, geometry: g, mmproj: { sha256: B, projectionDim: 2560 }, trusted: [A, B] });
    expect(ok.validated).to.equal(true);
    expect(ok.validation.basis).to.equal('sha256-allowlist');
    expect(ok.validation.release).to.equal('MedGemma 1.5 4B-it');
    expect(ok.validation.reason).to.match(/MEDGEMMA_TRUSTED_SHA256/);
    // the projector's hash must be trusted too
    const noProj = validateModel({ fileName: 'm.gguf', sha256: A, geometry: g, mmproj: { sha256: B }, trusted: [A] });
    expect(noProj.validated).to.equal(false);
    expect(noProj.validation.reason).to.match(/mmproj's bbbbbbbbbbbb… is not/);
    // a listed pair that does not fit together is still refused
    const wrong = validateModel({
      fileName: 'm.gguf',
      sha256: A,
      geometry: g,
      mmproj: { sha256: B, projectionDim: 5376 },
      trusted: [A, B],
    });
    expect(wrong.validated).to.equal(false);
    expect(wrong.validation.reason).to.match(/projects to 5376 dimensions but the model's embedding size is 2560/);
    // a listed file of unknown shapes (an admin's own conversion) is validated by its hash
    const own = validateModel({ fileName: 'tiny.gguf', sha256: A, geometry: tiny, trusted: [A] });
    expect(own.validated).to.equal(true);
    expect(own.validation.release).to.equal(undefined);
  });

  it('MEDGEMMA_TRUSTED_SHA256 and MEDGEMMA_ALLOW_UNVALIDATED_MODEL in the configuration', () => {
    const base = { DATA_DIR: '/tmp/x' };
    expect(loadConfig(base).medgemma.trustedSha256).to.deep.equal([]);
    expect(loadConfig(base).medgemma.allowUnvalidatedModel).to.equal(false);
    expect(loadConfig({ ...base, MEDGEMMA_ALLOW_UNVALIDATED_MODEL: 'true' }).medgemma.allowUnvalidatedModel).to.equal(true);
    const c = loadConfig({ ...base, MEDGEMMA_TRUSTED_SHA256: ` ${A.toUpperCase()} ,${B},` });
    expect(c.medgemma.trustedSha256).to.deep.equal([A, B]);
    expect(() => loadConfig({ ...base, MEDGEMMA_TRUSTED_SHA256: `${A},abc` })).to.throw(/MEDGEMMA_TRUSTED_SHA256: 'abc' is not a SHA-256/);
  });
});

describe('unit: remote endpoint hygiene', () => {
  it('loopback hosts', () => {
    for (const h of ['127.0.0.1', '127.8.9.10', 'localhost', 'LOCALHOST', 'api.localhost', '[::1]', '::1', '[::ffff:127.0.0.1]'])
      expect(isLoopbackHost(h), h).to.equal(true);
    for (const h of ['128.0.0.1', '10.0.0.1', 'example.com', 'localhost.example.com', '[::2]', '127.0.0.1.nip.io'])
      expect(isLoopbackHost(h), h).to.equal(false);
  });

  it('http:// to a non-loopback host is a configuration error unless MEDGEMMA_API_ALLOW_HTTP=true', () => {
    expect(insecureEndpoint('https://medgemma.example/v1', false)).to.equal(undefined);
    expect(insecureEndpoint('http://127.0.0.1:8080/v1', false)).to.equal(undefined);
    expect(insecureEndpoint('http://medgemma.example/v1', true)).to.equal(undefined);
    expect(insecureEndpoint('http://medgemma.example/v1', false)).to.match(/unencrypted/);
    const remote = { DATA_DIR: '/tmp/x', MEDGEMMA_BACKEND: 'remote' };
    expect(() => loadConfig({ ...remote, MEDGEMMA_API_ENDPOINT: 'http://medgemma.example/v1' })).to.throw(
      /MEDGEMMA_API_ENDPOINT=http:\/\/medgemma\.example\/v1: .*use https:\/\/, a loopback host, or set MEDGEMMA_API_ALLOW_HTTP=true/,
    );
    expect(
      loadConfig({ ...remote, MEDGEMMA_API_ENDPOINT: 'http://medgemma.example/v1', MEDGEMMA_API_ALLOW_HTTP: 'true' }).medgemma.apiAllowHttp,
    ).to.equal(true);
    expect(loadConfig({ ...remote, MEDGEMMA_API_ENDPOINT: 'http://localhost:8080' }).medgemma.backend).to.equal('remote');
    expect(loadConfig({ ...remote, MEDGEMMA_API_ENDPOINT: 'https://medgemma.example' }).medgemma.apiAllowHttp).to.equal(false);
  });

  it('only 408, 429, 5xx and network failures are worth retrying (the job layer reads this too)', () => {
    const up = (status?: number) => new EngineError('upstream', 'x', status === undefined ? {} : { status }).retryable;
    expect(up()).to.equal(true);
    expect(up(500)).to.equal(true);
    expect(up(503)).to.equal(true);
    expect(up(408)).to.equal(true);
    for (const s of [400, 404, 413, 422]) expect(up(s), String(s)).to.equal(false);
    expect(new EngineError('rate_limited', 'x', { status: 429 }).retryable).to.equal(true);
    expect(new EngineError('auth', 'x', { status: 401 }).retryable).to.equal(false);
    expect(new EngineError('too_large', 'x').retryable).to.equal(false);
  });

  it("reads the hub's LFS sha256 from an ETag", () => {
    expect(lfsSha256(`"${A}"`)).to.equal(A);
    expect(lfsSha256(`W/"${A.toUpperCase()}"`)).to.equal(A);
    expect(lfsSha256('"0123abc"')).to.equal(undefined);
    expect(lfsSha256(null)).to.equal(undefined);
  });
});
