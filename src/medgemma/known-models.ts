/**
 * Which MedGemma release a GGUF file claims to be, and whether its weights are trusted.
 *
 * The table names Google's MedGemma releases by the Gemma 3 geometry their GGUF conversions carry
 * (llama.cpp keys `gemma3.embedding_length`, `block_count`, `feed_forward_length`,
 * `attention.head_count(_kv)`, the vocabulary from token_embd) and by general.name. Geometry only
 * identifies WHICH release a file claims to be: random weights in the right shapes match it too.
 * A model is validated only when its SHA-256 (and its projector's) is one the admin listed in
 * MEDGEMMA_TRUSTED_SHA256 or one of the built-in hashes of published files.
 * Pure functions: the file reading is model-identity.ts.
 */

/** What the GGUF header says about a text model (undefined: key absent). */
export interface GgufGeometry {
  architecture: string;
  name?: string;
  embeddingLength?: number;
  blockCount?: number;
  feedForwardLength?: number;
  headCount?: number;
  headCountKv?: number;
  vocabSize?: number;
}

export interface ModelValidation {
  /** What decided: a listed SHA-256, the geometry of a known release only (not trusted), or nothing. */
  basis: 'sha256-allowlist' | 'known-release-shapes' | 'none';
  /** The release the file claims to be, when the geometry matches one. */
  release?: string;
  reason: string;
}

interface Geometry {
  embeddingLength: number;
  blockCount: number;
  feedForwardLength: number;
  headCount: number;
  headCountKv: number;
  /** Converters write 262144 (the SentencePiece vocabulary) or 262208 (with the image tokens). */
  vocabSizes: readonly number[];
}

interface KnownRelease {
  release: string;
  /** Hugging Face repository of the original weights. */
  source: string;
  geometry: Geometry;
  /** Takes images through an mmproj (false: the text-only 27B). */
  multimodal: boolean;
  /** Tells releases of one geometry apart by general.name / the file name. */
  name: RegExp;
  /** Quantisations commonly published (informative: any quantisation of the release matches). */
  quantizations: readonly string[];
  /**
   * SHA-256 of published GGUF files (model and mmproj), lowercase hex. Empty: no hash has been
   * checked against a published file yet; add only hashes read from the hub's LFS pointer.
   */
  sha256: readonly string[];
}

// Gemma 3 hyperparameters (Hugging Face config.json text_config; llama.cpp sizes gemma3 by block_count: 34 = 4B, 62 = 27B).
const GEMMA3_4B: Geometry = {
  embeddingLength: 2560,
  blockCount: 34,
  feedForwardLength: 10240,
  headCount: 8,
  headCountKv: 4,
  vocabSizes: [262144, 262208],
};
const GEMMA3_27B: Geometry = {
  embeddingLength: 5376,
  blockCount: 62,
  feedForwardLength: 21504,
  headCount: 32,
  headCountKv: 16,
  vocabSizes: [262144, 262208],
};
const QUANTS = ['Q4_K_M', 'Q4_K_S', 'Q5_K_M', 'Q6_K', 'Q8_0', 'F16', 'BF16'] as const;

/** Most specific first: the first whose geometry and name match is the release. */
const KNOWN_RELEASES: readonly KnownRelease[] = [
  {
    release: 'MedGemma 1.5 4B-it',
    source: 'google/medgemma-1.5-4b-it',
    geometry: GEMMA3_4B,
    multimodal: true,
    name: /medgemma[\s_-]*1[._]5/i,
    quantizations: QUANTS,
    sha256: [],
  },
  {
    release: 'MedGemma 4B-it',
    source: 'google/medgemma-4b-it',
    geometry: GEMMA3_4B,
    multimodal: true,
    name: /medgemma/i,
    quantizations: QUANTS,
    sha256: [],
  },
  {
    release: 'MedGemma 27B-it (text only)',
    source: 'google/medgemma-27b-text-it',
    geometry: GEMMA3_27B,
    multimodal: false,
    name: /medgemma.*text/i,
    quantizations: QUANTS,
    sha256: [],
  },
  {
    release: 'MedGemma 27B-it (multimodal)',
    source: 'google/medgemma-27b-it',
    geometry: GEMMA3_27B,
    multimodal: true,
    name: /medgemma(?!.*text)/i,
    quantizations: QUANTS,
    sha256: [],
  },
];

function geometryMatches(g: GgufGeometry, want: Geometry): boolean {
  return (
    g.architecture === 'gemma3' &&
    g.embeddingLength === want.embeddingLength &&
    g.blockCount === want.blockCount &&
    g.feedForwardLength === want.feedForwardLength &&
    g.headCount === want.headCount &&
    g.headCountKv === want.headCountKv &&
    (g.vocabSize === undefined || want.vocabSizes.includes(g.vocabSize))
  );
}

/**
 * The known release a model claims to be: its geometry must match, and its general.name or file
 * name must say MedGemma (a plain Gemma 3 4B has the same shapes); a text-only release takes no mmproj.
 */
export function matchRelease(g: GgufGeometry, fileName: string, hasMmproj = false): string | undefined {
  const label = `${g.name ?? ''} ${fileName}`;
  return KNOWN_RELEASES.find((r) => geometryMatches(g, r.geometry) && r.name.test(label) && (r.multimodal || !hasMmproj))?.release;
}

function builtInHashes(): Set<string> {
  return new Set(KNOWN_RELEASES.flatMap((r) => r.sha256));
}

export interface ValidationInput {
  fileName: string;
  sha256: string;
  geometry: GgufGeometry;
  mmproj?: { sha256: string; projectionDim?: number };
  /** MEDGEMMA_TRUSTED_SHA256, lowercase. */
  trusted: readonly string[];
}

/** Decides `model.validated`: true only for trusted hashes of the model and its projector, paired right. */
export function validateModel(i: ValidationInput): { validated: boolean; validation: ModelValidation } {
  const release = matchRelease(i.geometry, i.fileName, i.mmproj !== undefined);
  const admin = new Set(i.trusted);
  const builtIn = builtInHashes();
  const trustedBy = (sha: string) => (admin.has(sha) ? 'MEDGEMMA_TRUSTED_SHA256' : builtIn.has(sha) ? 'the built-in list' : undefined);
  const claim = release ? `the file's shapes and name are those of ${release}` : describeGeometry(i.geometry);
  const fail = (why: string) => ({
    validated: false,
    validation: { basis: release ? ('known-release-shapes' as const) : ('none' as const), ...(release ? { release } : {}), reason: why },
  });
  const emb = i.geometry.embeddingLength;
  const proj = i.mmproj?.projectionDim;
  if (proj !== undefined && emb !== undefined && proj !== emb)
    return fail(`the mmproj projects to ${proj} dimensions but the model's embedding size is ${emb}: they do not belong together`);
  const modelBy = trustedBy(i.sha256);
  if (!modelBy)
    return fail(
      `${claim}, but its SHA-256 ${i.sha256.slice(0, 12)}… is neither in MEDGEMMA_TRUSTED_SHA256 nor a known published file: the weights are unverified`,
    );
  if (i.mmproj && !trustedBy(i.mmproj.sha256))
    return fail(
      `the model's SHA-256 is listed in ${modelBy}, but the mmproj's ${i.mmproj.sha256.slice(0, 12)}… is not: the vision weights are unverified`,
    );
  return {
    validated: true,
    validation: {
      basis: 'sha256-allowlist',
      ...(release ? { release } : {}),
      reason: `SHA-256 listed in ${modelBy}${i.mmproj ? ` (mmproj in ${trustedBy(i.mmproj.sha256)})` : ''}${release ? `; ${release}` : ''}`,
    },
  };
}

function describeGeometry(g: GgufGeometry): string {
  return `a ${g.architecture} model (embedding ${g.embeddingLength ?? '?'}, ${g.blockCount ?? '?'} blocks) that matches no known MedGemma release`;
}

/** For a remote endpoint nothing about the weights can be checked from here. */
export const REMOTE_VALIDATION: ModelValidation = {
  basis: 'none',
  reason: 'remote endpoint: the weights behind it cannot be checked from this node',
};
