/**
 * Model identity recorded with every result: file name, SHA-256 (computed once per
 * path+mtime+size, cached in memory and in ${XDG_CACHE_HOME:-~/.cache}/radiant/model-sha256.json)
 * and the quantization from the GGUF header (general.file_type, via node-llama-cpp).
 * Also resolves MEDGEMMA_MODEL_PATH: a .gguf file, or a folder with the model and its mmproj*.gguf.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GgufFileType, readGgufFileInfo } from 'node-llama-cpp';
import type { ModelIdentity } from './engine.js';
import { EngineError } from './engine.js';

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

/** "MOSTLY_Q4_K_M" style name of a GGUF general.file_type, or null. */
export function fileTypeName(fileType: unknown): string | null {
  if (typeof fileType !== 'number') return null;
  return (GgufFileType as unknown as Record<number, string>)[fileType] ?? `file_type ${fileType}`;
}

export async function ggufQuantization(file: string): Promise<string | null> {
  const info = await readGgufFileInfo(file, { readTensorInfo: false, logWarnings: false });
  return fileTypeName((info.metadata as { general?: { file_type?: unknown } }).general?.file_type);
}

export async function modelIdentity(model: string, mmproj?: string): Promise<ModelIdentity> {
  const [sha256, quantization, mmSha] = await Promise.all([
    fileSha256(model),
    ggufQuantization(model),
    mmproj ? fileSha256(mmproj) : undefined,
  ]);
  return {
    name: path.basename(model),
    sha256,
    quantization,
    mmproj: mmproj && mmSha ? { name: path.basename(mmproj), sha256: mmSha } : undefined,
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
