/**
 * Finds cuBLAS for a CUDA build of llama.cpp (ggml-cuda includes cublas_v2.h and links
 * libcublas/libcublasLt), or installs a project-managed copy. A toolkit made of NVIDIA's nvcc
 * wheels (as on the CI machine) has nvcc and cudart but no cuBLAS.
 *
 * Where, in order:
 *   1. LLAMA_CUBLAS_DIR: a folder with include/cublas_v2.h and lib/libcublas.so* (or the root of
 *      an unpacked `nvidia-cublas` wheel, which has them under nvidia/cu13/); a folder without
 *      them is an error, not a fall-through, so a typo does not silently pick another copy.
 *   2. The toolkit next to nvcc (cmake finds it there itself: no extra flags).
 *   3. <llama cache root>/cublas/<version>/{include,lib}: the copy ensureCublas() installs from
 *      PyPI's `nvidia-cublas` wheel (pip download, unpack include/ and lib/ only). CUBLAS.json,
 *      written last, marks a complete copy.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { acquireLock, BuildLockTimeoutError } from './build-lock.js';
import { findNvcc, toolkitIncludeDirs, toolkitLibDirs, type Nvcc } from './cuda-toolkit.js';
import { describeFailure, runCommand } from './run-command.js';

/**
 * The `nvidia-cublas` wheel installed into the cache. 13.1.1.3 is a CUDA 13 release whose
 * headers and libraries built and linked llama.cpp with nvcc 13.0 (the 1,847 s sm90 build).
 */
export const CUBLAS_WHEEL_VERSION = '13.1.1.3';

/** The wheel keeps CUDA 13 files under this prefix. */
const WHEEL_PREFIX = 'nvidia/cu13/';

export type CublasSource = 'env' | 'toolkit' | 'cache';

export interface CublasLocation {
  source: CublasSource;
  includeDir: string;
  libDir: string;
  /** Wheel version for the cache copy (or when LLAMA_CUBLAS_DIR is an unpacked wheel); else undefined. */
  version?: string;
  /** cmake flags pointing the build at this cuBLAS; empty when cmake finds it in the toolkit. */
  cmakeFlags: string[];
}

export type CublasErrorKind = 'bad_dir' | 'not_found' | 'no_python' | 'pip_failed' | 'unpack_failed' | 'lock_timeout';

export class CublasError extends Error {
  constructor(
    readonly kind: CublasErrorKind,
    message: string,
    readonly output?: string,
  ) {
    super(message);
    this.name = 'CublasError';
  }
}

export interface CublasLookupOptions {
  /** The nvcc whose toolkit is searched; default findNvcc(). Null: search no toolkit. */
  nvcc?: Nvcc | null;
  /** Override of LLAMA_CUBLAS_DIR (an empty string disables it). */
  envDir?: string;
  /** llama cache root; the project copy lives in <cacheDir>/cublas/<version>/. */
  cacheDir: string;
  /** Wheel version of the project copy; default CUBLAS_WHEEL_VERSION. */
  version?: string;
}

export interface EnsureCublasOptions extends CublasLookupOptions {
  log?: (line: string) => void;
  /** pip's output is forwarded here. */
  onOutput?: (chunk: string) => void;
  /** Python that runs pip; default LLAMA_PYTHON or python3. */
  python?: string;
  lockTimeoutMs?: number;
}

interface CacheRecord {
  version: string;
  wheel: string;
  installedAt: string;
  seconds: number;
  files: string[];
}

/** The folder of the project-managed copy of cuBLAS `version`. */
export function cublasCacheDir(cacheDir: string, version: string = CUBLAS_WHEEL_VERSION): string {
  return path.join(cacheDir, 'cublas', version);
}

function hasHeader(includeDir: string): boolean {
  return fs.existsSync(path.join(includeDir, 'cublas_v2.h'));
}

/** libcublas.so and libcublasLt.so (or their .so.N) in libDir: [cublas, cublasLt] or undefined. */
function findLibs(libDir: string): [string, string] | undefined {
  const pick = (base: string): string | undefined => {
    if (fs.existsSync(path.join(libDir, `${base}.so`))) return path.join(libDir, `${base}.so`);
    if (!fs.existsSync(libDir)) return undefined;
    const versioned = fs
      .readdirSync(libDir)
      .filter((f) => new RegExp(`^${base}\\.so\\.\\d+$`).test(f))
      .sort();
    return versioned.length ? path.join(libDir, versioned[versioned.length - 1]!) : undefined;
  };
  const a = pick('libcublas');
  const b = pick('libcublasLt');
  return a && b ? [a, b] : undefined;
}

/** The flags that point cmake's FindCUDAToolkit and the compilers at a cuBLAS outside the toolkit. */
export function cublasCmakeFlags(includeDir: string, libDir: string): string[] {
  const libs = findLibs(libDir);
  if (!libs) throw new CublasError('bad_dir', `no libcublas.so / libcublasLt.so in ${libDir}`);
  return [
    `-DCUDA_cublas_LIBRARY=${libs[0]}`,
    `-DCUDA_cublasLt_LIBRARY=${libs[1]}`,
    `-DCMAKE_CUDA_FLAGS=-I${includeDir}`,
    `-DCMAKE_CXX_FLAGS=-I${includeDir}`,
  ];
}

function wheelVersionIn(dir: string): string | undefined {
  const rec = readCacheRecord(dir);
  if (rec) return rec.version;
  if (!fs.existsSync(dir)) return undefined;
  const info = fs.readdirSync(dir).find((f) => /^nvidia_cublas-[\d.]+\.dist-info$/.test(f));
  return info ? /^nvidia_cublas-([\d.]+)\.dist-info$/.exec(info)![1] : undefined;
}

/** LLAMA_CUBLAS_DIR, read strictly: it must hold cuBLAS or the caller hears why not. */
function fromEnvDir(dir: string): CublasLocation {
  const root = path.resolve(dir);
  if (!fs.existsSync(root)) throw new CublasError('bad_dir', `LLAMA_CUBLAS_DIR=${dir}: no such directory`);
  for (const base of [root, path.join(root, WHEEL_PREFIX)]) {
    const includeDir = path.join(base, 'include');
    if (!hasHeader(includeDir)) continue;
    for (const libDir of [path.join(base, 'lib64'), path.join(base, 'lib')]) {
      if (!findLibs(libDir)) continue;
      return { source: 'env', includeDir, libDir, version: wheelVersionIn(root), cmakeFlags: cublasCmakeFlags(includeDir, libDir) };
    }
    throw new CublasError(
      'bad_dir',
      `LLAMA_CUBLAS_DIR=${dir}: ${includeDir}/cublas_v2.h is there but no libcublas.so and libcublasLt.so in ${base}/lib or ${base}/lib64`,
    );
  }
  throw new CublasError(
    'bad_dir',
    `LLAMA_CUBLAS_DIR=${dir} has no cuBLAS: expected include/cublas_v2.h and lib/libcublas.so (or ${WHEEL_PREFIX}include and ${WHEEL_PREFIX}lib of an unpacked nvidia-cublas wheel)`,
  );
}

function fromToolkit(nvcc: Nvcc): CublasLocation | undefined {
  if (!nvcc.toolkitRoot) return undefined;
  const includeDir = toolkitIncludeDirs(nvcc.toolkitRoot).find(hasHeader);
  const libDir = toolkitLibDirs(nvcc.toolkitRoot).find((d) => findLibs(d));
  if (!includeDir || !libDir) return undefined;
  return { source: 'toolkit', includeDir, libDir, cmakeFlags: [] };
}

function readCacheRecord(dir: string): CacheRecord | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'CUBLAS.json'), 'utf8')) as CacheRecord;
  } catch {
    return undefined;
  }
}

function fromCache(cacheDir: string, version: string): CublasLocation | undefined {
  const dir = cublasCacheDir(cacheDir, version);
  const rec = readCacheRecord(dir);
  if (!rec || rec.version !== version) return undefined;
  const includeDir = path.join(dir, 'include');
  const libDir = path.join(dir, 'lib');
  if (!hasHeader(includeDir) || !findLibs(libDir)) return undefined; // damaged: reinstall
  return { source: 'cache', includeDir, libDir, version, cmakeFlags: cublasCmakeFlags(includeDir, libDir) };
}

/**
 * cuBLAS for a CUDA build, without installing anything: LLAMA_CUBLAS_DIR, the toolkit, or the
 * cache copy; undefined when none has it. A LLAMA_CUBLAS_DIR without cuBLAS throws CublasError.
 */
export function locateCublas(opts: CublasLookupOptions): CublasLocation | undefined {
  const envDir = opts.envDir ?? process.env.LLAMA_CUBLAS_DIR ?? '';
  if (envDir) return fromEnvDir(envDir);
  const nvcc = opts.nvcc === undefined ? findNvcc() : opts.nvcc;
  const tk = nvcc ? fromToolkit(nvcc) : undefined;
  if (tk) return tk;
  return fromCache(opts.cacheDir, opts.version ?? CUBLAS_WHEEL_VERSION);
}

/** locateCublas(), installing the cache copy from the `nvidia-cublas` wheel when nothing has cuBLAS. */
export async function ensureCublas(opts: EnsureCublasOptions): Promise<CublasLocation> {
  const found = locateCublas(opts);
  if (found) return found;
  const log = opts.log ?? ((s: string) => process.stderr.write(`[cublas] ${s}\n`));
  const version = opts.version ?? CUBLAS_WHEEL_VERSION;
  const dir = cublasCacheDir(opts.cacheDir, version);
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  let release: () => void;
  try {
    release = await acquireLock(`${dir}.lock`, opts.lockTimeoutMs ?? 3600_000, log, `installing cuBLAS ${version}`);
  } catch (err) {
    if (err instanceof BuildLockTimeoutError) throw new CublasError('lock_timeout', err.message);
    throw err;
  }
  try {
    const again = fromCache(opts.cacheDir, version); // installed by the process we waited for
    if (again) return again;
    await installWheel(dir, version, opts, log);
    const done = fromCache(opts.cacheDir, version);
    if (!done) throw new CublasError('unpack_failed', `cuBLAS ${version} was unpacked into ${dir} but cublas_v2.h or libcublas is missing`);
    return done;
  } finally {
    release();
  }
}

/** Python snippet: unpack the members under `prefix` of a wheel into `dest`, flattening the prefix. */
const UNPACK_PY = `
import sys, zipfile, os, shutil, json
whl, prefix, dest = sys.argv[1], sys.argv[2], sys.argv[3]
out = []
with zipfile.ZipFile(whl) as z:
    for info in z.infolist():
        name = info.filename
        lic = name.endswith('.dist-info/licenses/License.txt')
        if info.is_dir() or not (lic or (name.startswith(prefix + 'include/') or name.startswith(prefix + 'lib/'))):
            continue
        rel = 'LICENSE.txt' if lic else name[len(prefix):]
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open(info) as src, open(target, 'wb') as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        out.append(rel)
print(json.dumps(out))
`;

async function installWheel(dir: string, version: string, opts: EnsureCublasOptions, log: (s: string) => void): Promise<void> {
  const python = opts.python ?? process.env.LLAMA_PYTHON ?? 'python3';
  const started = Date.now();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'radiant-cublas-'));
  const staging = `${dir}.partial`;
  try {
    log(`no cuBLAS next to nvcc: downloading nvidia-cublas==${version} with pip (~420 MB; set LLAMA_CUBLAS_DIR to use a copy you have)`);
    const pip = await runCommand(
      python,
      ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--progress-bar', 'off', '--dest', tmp, `nvidia-cublas==${version}`],
      { onOutput: opts.onOutput },
    );
    if (pip.spawnError) {
      throw new CublasError(
        'no_python',
        `cannot run ${python} to download cuBLAS (${describeFailure(pip)}); install python3 with pip, or set LLAMA_CUBLAS_DIR to an unpacked cuBLAS`,
      );
    }
    if (pip.code !== 0) {
      const noPip = /No module named pip/.test(pip.tail);
      throw new CublasError(
        noPip ? 'no_python' : 'pip_failed',
        noPip
          ? `${python} has no pip module; install pip, or set LLAMA_CUBLAS_DIR to an unpacked cuBLAS`
          : `pip download nvidia-cublas==${version} failed (${describeFailure(pip)}): is the package index reachable? Set LLAMA_CUBLAS_DIR to use a copy you have`,
        pip.tail,
      );
    }
    const wheel = fs.readdirSync(tmp).find((f) => f.startsWith(`nvidia_cublas-${version}-`) && f.endsWith('.whl'));
    if (!wheel) throw new CublasError('pip_failed', `pip reported success but left no nvidia_cublas-${version} wheel in ${tmp}`);
    log(`downloaded ${wheel} in ${((Date.now() - started) / 1000).toFixed(1)} s; unpacking ${WHEEL_PREFIX}{include,lib} into ${dir}`);

    fs.rmSync(staging, { recursive: true, force: true });
    fs.mkdirSync(staging, { recursive: true });
    const unpack = await runCommand(python, ['-c', UNPACK_PY, path.join(tmp, wheel), WHEEL_PREFIX, staging]);
    if (unpack.code !== 0) throw new CublasError('unpack_failed', `unpacking ${wheel} failed (${describeFailure(unpack)})`, unpack.tail);
    const files = JSON.parse(unpack.tail.trim().split('\n').pop() ?? '[]') as string[];
    // The wheel ships libcublas.so.13 only (wheels have no symlinks); the linker wants libcublas.so.
    const libDir = path.join(staging, 'lib');
    for (const base of ['libcublas', 'libcublasLt']) {
      const versioned = fs.existsSync(libDir) ? fs.readdirSync(libDir).find((f) => new RegExp(`^${base}\\.so\\.\\d+$`).test(f)) : undefined;
      if (versioned && !fs.existsSync(path.join(libDir, `${base}.so`))) fs.symlinkSync(versioned, path.join(libDir, `${base}.so`));
    }
    if (!hasHeader(path.join(staging, 'include')) || !findLibs(libDir)) {
      throw new CublasError(
        'unpack_failed',
        `${wheel} has no ${WHEEL_PREFIX}include/cublas_v2.h or ${WHEEL_PREFIX}lib/libcublas*.so.N (unpacked: ${files.join(', ')})`,
      );
    }
    const record: CacheRecord = {
      version,
      wheel,
      installedAt: new Date().toISOString(),
      seconds: Math.round((Date.now() - started) / 100) / 10,
      files,
    };
    fs.writeFileSync(path.join(staging, 'CUBLAS.json'), `${JSON.stringify(record, null, 2)}\n`);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(staging, dir);
    log(`cuBLAS ${version} installed in ${record.seconds} s`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.rmSync(staging, { recursive: true, force: true });
  }
}
