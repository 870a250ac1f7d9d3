/**
 * Model identity recorded with every result: file name, GGUF architecture/name/size/parameters,
 * SHA-256 (computed once per path+mtime+size, cached in memory and in
 * ${XDG_CACHE_HOME:-~/.cache}/radiant/model-sha256.json), the quantization (general.file_type),
 * the mmproj pairing and whether the model is validated (known-models.ts decides).
 * Also resolves MEDGEMMA_MODEL_PATH: a .gguf file, or a folder with the model and its mmproj*.gguf.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ModelIdentity } from './engine.js';
import { EngineError } from './engine.js';
import { type GgufGeometry, validateModel } from './known-models.js';

const memo = new Map<string, Promise<string>>();

function cacheFile(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'radiant', 'model-sha256.json');
}

function readDiskCache(): Record<string, string> {
  try {
    return JSON.parse(fs.readFileSync(cacheFile(), 'utf8')) as Record<string, string>;
  } catch {
    return {};
  }
}

/** SHA-256 of a file, cached by absolute path + mtime + size. */
export function fileSha256(file: string): Promise<string> {
  const abs = path.resolve(file);
  const st = fs.statSync(abs);
  const key = `${abs}|${st.mtimeMs}|${st.size}`;
  let p = memo.get(key);
  if (!p) {
    p = (async () => {
      const disk = readDiskCache();
      if (disk[key]) return disk[key];
      const hash = createHash('sha256');
      for await (const chunk of fs.createReadStream(abs, { highWaterMark: 4 << 20 })) hash.update(chunk as Buffer);
      const digest = hash.digest('hex');
      try {
        const now = readDiskCache();
        now[key] = digest;
        fs.mkdirSync(path.dirname(cacheFile()), { recursive: true });
        const tmp = `${cacheFile()}.${process.pid}.tmp`;
        fs.writeFileSync(tmp, JSON.stringify(now, null, 1));
        fs.renameSync(tmp, cacheFile());
      } catch {
        /* the cache is an optimisation */
      }
      return digest;
    })();
    memo.set(key, p);
    p.catch(() => memo.delete(key));
  }
  return p;
}

/**
 * node-llama-cpp (its GGUF reader and file type names), loaded when a GGUF header is first read:
 * a node without a local model never pays for the library and everything it brings.
 */
const llamaLib = () => import('node-llama-cpp');

/** "MOSTLY_Q4_K_M" style name of a GGUF general.file_type, or null. */
export async function fileTypeName(fileType: unknown): Promise<string | null> {
  if (typeof fileType !== 'number') return null;
  const { GgufFileType } = await llamaLib();
  return (GgufFileType as unknown as Record<number, string>)[fileType] ?? `file_type ${fileType}`;
}

/** What a GGUF header says: identity, text-model geometry, or for a projector (clip) its vision keys. */
export interface GgufHeader {
  geometry: GgufGeometry;
  quantization: string | null;
  /** Sum of the tensors' element counts. */
  parameters: number;
  contextLength?: number;
  projector?: { type?: string; imageSize?: number; patchSize?: number; projectionDim?: number; imageTokens?: number };
}

/**
 * Tokens one image becomes with a Gemma 3 projector, as llama.cpp's clip.cpp computes them: the
 * (image_size / patch_size)² SigLIP patches average-pooled by the scale factor per side (default
 * 4): MedGemma's 896 px, 14 px patches → 64² / 4² = 256. Undefined for other projectors.
 */
export function projectorImageTokens(type: string | undefined, imageSize?: number, patchSize?: number, scale = 4): number | undefined {
  if (type !== 'gemma3' || !imageSize || !patchSize || scale <= 0) return undefined;
  const side = Math.floor(imageSize / patchSize / scale);
  return side > 0 ? side * side : undefined;
}

type Meta = Record<string, Record<string, unknown> | undefined> & { general?: Record<string, unknown> };
const num = (v: unknown) => (typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined);

export async function readGgufHeader(file: string): Promise<GgufHeader> {
  const { readGgufFileInfo } = await llamaLib();
  const info = await readGgufFileInfo(file, { readTensorInfo: true, logWarnings: false });
  const meta = info.metadata as unknown as Meta;
  const architecture = String(meta.general?.architecture ?? 'unknown');
  let parameters = 0;
  let vocabSize: number | undefined;
  for (const t of info.fullTensorInfo ?? []) {
    parameters += t.dimensions.reduce<number>((a, d) => a * Number(d), 1);
    if (t.name === 'token_embd.weight') vocabSize = Number(t.dimensions[1]);
  }
  const a = (meta[architecture] ?? {}) as Record<string, unknown> & { attention?: Record<string, unknown> };
  const h: GgufHeader = {
    geometry: {
      architecture,
      name: typeof meta.general?.name === 'string' ? meta.general.name : undefined,
      embeddingLength: num(a.embedding_length),
      blockCount: num(a.block_count),
      feedForwardLength: num(a.feed_forward_length),
      headCount: num(a.attention?.head_count),
      headCountKv: num(a.attention?.head_count_kv),
      vocabSize,
    },
    quantization: await fileTypeName(meta.general?.file_type),
    parameters,
    contextLength: num(a.context_length),
  };
  if (architecture === 'clip') {
    const clip = (meta.clip ?? {}) as {
      projector_type?: string;
      vision?: Record<string, unknown> & { projector?: Record<string, unknown> };
    };
    const imageSize = num(clip.vision?.image_size);
    const patchSize = num(clip.vision?.patch_size);
    h.projector = {
      type: clip.projector_type,
      imageSize,
      patchSize,
      projectionDim: num(clip.vision?.projection_dim),
      imageTokens: projectorImageTokens(clip.projector_type, imageSize, patchSize, num(clip.vision?.projector?.scale_factor)),
    };
  }
  return h;
}

/** trusted: MEDGEMMA_TRUSTED_SHA256 (lowercase), which with the built-in list decides `validated`. */
export async function modelIdentity(model: string, mmproj?: string, trusted: readonly string[] = []): Promise<ModelIdentity> {
  const [sha256, header, mm] = await Promise.all([
    fileSha256(model),
    readGgufHeader(model),
    mmproj ? Promise.all([fileSha256(mmproj), readGgufHeader(mmproj)]) : undefined,
  ]);
  const projectionDim = mm?.[1].projector?.projectionDim;
  const { validated, validation } = validateModel({
    fileName: path.basename(model),
    sha256,
    geometry: header.geometry,
    mmproj: mm ? { sha256: mm[0], projectionDim } : undefined,
    trusted,
  });
  const emb = header.geometry.embeddingLength;
  return {
    name: path.basename(model),
    sha256,
    quantization: header.quantization,
    architecture: header.geometry.architecture,
    ggufName: header.geometry.name ?? null,
    bytes: fs.statSync(model).size,
    parameters: header.parameters,
    mmproj:
      mmproj && mm
        ? {
            name: path.basename(mmproj),
            sha256: mm[0],
            bytes: fs.statSync(mmproj).size,
            projectionDim: projectionDim ?? null,
            matchesModel: projectionDim !== undefined && emb !== undefined ? projectionDim === emb : null,
            imageTokens: mm[1].projector?.imageTokens ?? null,
          }
        : undefined,
    validated,
    validation,
  };
}

/** MEDGEMMA_MODEL_PATH (+ MEDGEMMA_MMPROJ_PATH) -> the model and projector files. */
export function resolveModelPaths(modelPath: string, mmprojPath?: string): { model: string; mmproj?: string } {
  let st: fs.Stats;
  try {
    st = fs.statSync(modelPath);
  } catch {
    throw new EngineError('unavailable', `MEDGEMMA_MODEL_PATH ${modelPath} does not exist`);
  }
  if (!st.isDirectory()) return { model: modelPath, mmproj: mmprojPath };
  const ggufs = fs
    .readdirSync(modelPath)
    .filter((f) => f.toLowerCase().endsWith('.gguf'))
    .sort();
  const projs = ggufs.filter((f) => /mmproj/i.test(f));
  const models = ggufs.filter((f) => !/mmproj/i.test(f));
  if (models.length !== 1) {
    throw new EngineError(
      'unavailable',
      `MEDGEMMA_MODEL_PATH ${modelPath}: expected one model .gguf, found ${models.length ? models.join(', ') : 'none'}`,
    );
  }
  if (!mmprojPath && projs.length > 1)
    throw new EngineError(
      'unavailable',
      `MEDGEMMA_MODEL_PATH ${modelPath}: several mmproj files (${projs.join(', ')}); set MEDGEMMA_MMPROJ_PATH`,
    );
  return { model: path.join(modelPath, models[0]!), mmproj: mmprojPath ?? (projs[0] ? path.join(modelPath, projs[0]) : undefined) };
}
