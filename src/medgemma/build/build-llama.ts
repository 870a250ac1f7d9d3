/**
 * Builds llama.cpp's `llama-server` (which, unlike node-llama-cpp 3.22, takes image input through
 * `--mmproj`) from the llama.cpp source that node-llama-cpp ships as a git bundle, so the server
 * and node-llama-cpp always run the same llama.cpp commit.
 *
 * The build lives in a cache directory outside the repository, keyed by the llama.cpp commit and
 * the build flavour:
 *   ${LLAMA_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/radiant/llama}/<commit>-<cpu|cuda-sm90>/
 *     src/     the cloned source
 *     build/   the cmake build tree (build/bin/llama-server)
 *     BUILD.json  written last: its presence means the build is complete and reusable
 * A lock file (<key>.lock, created with O_EXCL, holding the owner's pid) keeps two processes from
 * building the same variant at once; a lock whose pid is dead is taken over.
 *
 * Flavour: CUDA when asked for (LLAMA_CUDA=on, --cuda, `cuda: true`), or automatically when
 * `nvcc` is found AND a GPU is visible (`nvidia-smi -L`): a machine with nvcc but no GPU (CI)
 * builds the CPU variant unless asked. LLAMA_CUDA=off forces CPU. LLAMA_CUDA_ARCH picks the
 * architectures (default 90, H100/H200). cuBLAS comes from cublas.ts (LLAMA_CUBLAS_DIR, the
 * toolkit, or a copy installed into the cache from the nvidia-cublas wheel). LLAMA_CMAKE_ARGS adds
 * cmake flags; they are recorded in BUILD.json but are not part of the cache key.
 * llamaCmakeFlags() is the one list of flags; the CUDA compile check (cuda-compile-check.ts)
 * configures with it too.
 *
 *   npm run build:llama            builds (or reuses) and prints the binary's path
 *   ensureLlamaServer()            the same, from code ("built on demand")
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { acquireLock, BuildLockTimeoutError } from './build-lock.js';
import { CublasError, ensureCublas, locateCublas, type CublasLocation } from './cublas.js';
import { findNvcc, hasDriverLibrary, hasVisibleGpu, type Nvcc } from './cuda-toolkit.js';
import { describeFailure, runCommand } from './run-command.js';

export interface LlamaBuildOptions {
  /** Force the flavour; default from LLAMA_CUDA, else CUDA only with nvcc and a visible GPU. */
  cuda?: boolean;
  /** CUDA architectures (cmake CMAKE_CUDA_ARCHITECTURES); default LLAMA_CUDA_ARCH or "90". */
  cudaArch?: string;
  /** Parallel build jobs; default LLAMA_BUILD_JOBS or the CPU count. */
  jobs?: number;
  /** Cache root; default LLAMA_CACHE_DIR or ${XDG_CACHE_HOME:-~/.cache}/radiant/llama. */
  cacheDir?: string;
  /** Where progress goes (one line per step); default stderr. */
  log?: (line: string) => void;
  /** Build output (cmake/compiler/pip) is forwarded here; default: discarded except on failure. */
  onOutput?: (chunk: string) => void;
  /** Run the compiler at a lower priority (nice 10); default true. */
  nice?: boolean;
  /** How long to wait for another process's lock, ms; default 2 h. */
  lockTimeoutMs?: number;
}

export interface LlamaBuild {
  serverPath: string;
  commit: string;
  variant: string;
  dir: string;
  /** True when an existing build was reused. */
  cached: boolean;
  /** Seconds the build took (the recorded time when reused). */
  buildSeconds: number;
}

export class LlamaBuildError extends Error {
  constructor(
    message: string,
    readonly output?: string,
  ) {
    super(message);
    this.name = 'LlamaBuildError';
  }
}

/** A CUDA build was asked for on a machine without nvcc. */
export class NvccNotFoundError extends LlamaBuildError {
  constructor(how: string) {
    super(
      `CUDA build requested (${how}) but nvcc was not found (CUDACXX or PATH): install the CUDA toolkit's nvcc, ` +
        'or build the CPU variant (LLAMA_CUDA=off / --cpu)',
    );
    this.name = 'NvccNotFoundError';
  }
}

/** The git bundle of llama.cpp inside the installed node-llama-cpp package. */
export function llamaBundlePath(): string {
  const require = createRequire(import.meta.url);
  let pkgDir: string;
  try {
    pkgDir = path.dirname(require.resolve('node-llama-cpp/package.json'));
  } catch {
    // node-llama-cpp's "exports" may hide package.json: resolve the entry and walk up.
    let dir = path.dirname(require.resolve('node-llama-cpp'));
    while (!fs.existsSync(path.join(dir, 'package.json')) || !fs.existsSync(path.join(dir, 'llama'))) {
      const up = path.dirname(dir);
      if (up === dir) throw new LlamaBuildError('cannot locate the node-llama-cpp package');
      dir = up;
    }
    pkgDir = dir;
  }
  const bundle = path.join(pkgDir, 'llama', 'gitRelease.bundle');
  if (!fs.existsSync(bundle)) throw new LlamaBuildError(`llama.cpp source bundle not found: ${bundle}`);
  return bundle;
}

async function run(cmd: string, args: string[], opts: { cwd?: string; onOutput?: (s: string) => void } = {}): Promise<void> {
  const r = await runCommand(cmd, args, opts);
  if (r.code !== 0) throw new LlamaBuildError(`${cmd} ${args.join(' ')} failed (${describeFailure(r)})`, r.tail);
}

/** The llama.cpp commit of the bundle node-llama-cpp ships. */
export function llamaBundleCommit(bundle: string = llamaBundlePath()): string {
  const r = spawnSync('git', ['bundle', 'list-heads', bundle], { encoding: 'utf8' });
  if (r.status !== 0) throw new LlamaBuildError(`git bundle list-heads ${bundle} failed: ${r.error?.message ?? r.stderr}`);
  const m = /^([0-9a-f]{40})\s/m.exec(r.stdout);
  if (!m) throw new LlamaBuildError(`no head in ${bundle}`);
  return m[1]!;
}

export function hasNvcc(): boolean {
  return findNvcc() !== undefined;
}

/** Extra cmake flags from LLAMA_CMAKE_ARGS (whitespace-separated; not part of the cache key). */
function extraCmakeArgs(): string[] {
  return (process.env.LLAMA_CMAKE_ARGS ?? '').split(/\s+/).filter(Boolean);
}

/** LLAMA_CMAKE_ARGS already tell cmake where cuBLAS is: the user manages it. */
function cublasFromCmakeArgs(): boolean {
  return extraCmakeArgs().some((a) => /^-DCUDA_cublas(Lt)?_LIBRARY=/i.test(a));
}

/**
 * Whether a CUDA build would find cuBLAS without downloading it (LLAMA_CUBLAS_DIR, the toolkit
 * next to nvcc, the cache copy, or LLAMA_CMAKE_ARGS naming it). ensureLlamaServer() no longer
 * needs this: it installs cuBLAS into the cache when missing.
 */
export function hasCublas(): boolean {
  if (cublasFromCmakeArgs()) return true;
  try {
    return locateCublas({ cacheDir: defaultCacheDir() }) !== undefined;
  } catch (err) {
    if (err instanceof CublasError) return false;
    throw err;
  }
}

export function defaultCacheDir(): string {
  if (process.env.LLAMA_CACHE_DIR) return path.resolve(process.env.LLAMA_CACHE_DIR);
  const xdg = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(xdg, 'radiant', 'llama');
}

export interface ResolvedBuild {
  cuda: boolean;
  /** Why: "cuda: true", "LLAMA_CUDA=on", "nvcc and a visible GPU", "no nvcc", "nvcc but no visible GPU", … */
  reason: string;
  cudaArch: string;
  jobs: number;
  variant: string;
}

/** The flavour, architecture and variant name these options give on this machine. */
export function resolveLlamaBuild(opts: LlamaBuildOptions = {}): ResolvedBuild {
  const env = (process.env.LLAMA_CUDA ?? '').toLowerCase();
  let cuda: boolean;
  let reason: string;
  if (opts.cuda !== undefined) [cuda, reason] = [opts.cuda, `cuda: ${opts.cuda}`];
  else if (env === 'on' || env === '1' || env === 'true') [cuda, reason] = [true, `LLAMA_CUDA=${env}`];
  else if (env === 'off' || env === '0' || env === 'false') [cuda, reason] = [false, `LLAMA_CUDA=${env}`];
  else if (!hasNvcc()) [cuda, reason] = [false, 'no nvcc'];
  // nvcc alone (CI, this development machine) would build a binary that cannot use a GPU there.
  else if (!hasVisibleGpu()) [cuda, reason] = [false, 'nvcc but no visible GPU (nvidia-smi -L)'];
  else [cuda, reason] = [true, 'nvcc and a visible GPU'];
  const cudaArch = opts.cudaArch ?? process.env.LLAMA_CUDA_ARCH ?? '90';
  const jobs = opts.jobs ?? (Number(process.env.LLAMA_BUILD_JOBS) || os.availableParallelism());
  const variant = cuda ? `cuda-sm${cudaArch.replace(/[^0-9a-z]+/gi, '_')}` : 'cpu';
  return { cuda, reason, cudaArch, jobs, variant };
}

export interface LlamaCmakeConfig {
  flags: string[];
  /** The nvcc and cuBLAS a CUDA build uses; undefined for CPU. */
  nvcc?: Nvcc;
  cublas?: CublasLocation;
}

/**
 * The one list of cmake flags for a llama-server build (ensureLlamaServer and the CUDA compile
 * check both configure with it). Pure: the machine facts come in as arguments.
 */
export function llamaCmakeFlags(input: {
  cuda: boolean;
  cudaArch: string;
  cublas?: CublasLocation;
  driverLibrary?: boolean;
  extra?: string[];
}): string[] {
  return [
    '-DCMAKE_BUILD_TYPE=Release',
    '-DLLAMA_CURL=OFF',
    '-DLLAMA_BUILD_TESTS=OFF',
    '-DLLAMA_BUILD_EXAMPLES=OFF',
    '-DBUILD_SHARED_LIBS=OFF',
    `-DGGML_CUDA=${input.cuda ? 'ON' : 'OFF'}`,
    ...(input.cuda ? [`-DCMAKE_CUDA_ARCHITECTURES=${input.cudaArch}`] : []),
    ...(input.cuda ? (input.cublas?.cmakeFlags ?? []) : []),
    // Without libcuda (driver or toolkit stub) ggml's VMM pool cannot link; the legacy pool can.
    ...(input.cuda && input.driverLibrary === false ? ['-DGGML_CUDA_NO_VMM=ON'] : []),
    ...(input.extra ?? []),
  ];
}

/**
 * Resolves what a build with these options needs and returns its cmake flags: for CUDA, finds
 * nvcc (NvccNotFoundError without one) and cuBLAS (installing the cache copy when missing).
 */
export async function prepareLlamaCmake(
  resolved: ResolvedBuild,
  opts: { cacheDir: string; log: (line: string) => void; onOutput?: (s: string) => void; lockTimeoutMs?: number },
): Promise<LlamaCmakeConfig> {
  const extra = extraCmakeArgs();
  if (!resolved.cuda) return { flags: llamaCmakeFlags({ cuda: false, cudaArch: resolved.cudaArch, extra }) };
  const nvcc = findNvcc();
  if (!nvcc) throw new NvccNotFoundError(resolved.reason);
  let cublas: CublasLocation | undefined;
  if (!cublasFromCmakeArgs()) {
    try {
      cublas = await ensureCublas({
        cacheDir: opts.cacheDir,
        nvcc,
        log: opts.log,
        onOutput: opts.onOutput,
        lockTimeoutMs: opts.lockTimeoutMs,
      });
    } catch (err) {
      if (err instanceof CublasError) throw new LlamaBuildError(`cuBLAS for the CUDA build: ${err.message}`, err.output);
      throw err;
    }
  }
  const flags = llamaCmakeFlags({
    cuda: true,
    cudaArch: resolved.cudaArch,
    cublas,
    driverLibrary: hasDriverLibrary(nvcc.toolkitRoot),
    extra,
  });
  return { flags, nvcc, cublas };
}

/** Clones the bundle's commit into `src` unless `marker` says it is already there. */
export async function prepareLlamaSource(
  src: string,
  marker: string,
  opts: { commit: string; bundle: string; log: (line: string) => void; onOutput?: (s: string) => void },
): Promise<void> {
  if (fs.existsSync(marker)) return;
  fs.rmSync(src, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(src), { recursive: true });
  opts.log(`cloning llama.cpp ${opts.commit.slice(0, 12)} from ${opts.bundle}`);
  await run('git', ['clone', '--quiet', opts.bundle, src], { onOutput: opts.onOutput });
  await run('git', ['-c', 'advice.detachedHead=false', 'checkout', '--quiet', opts.commit], { cwd: src, onOutput: opts.onOutput });
  fs.writeFileSync(marker, `${opts.commit}\n`);
}

/** acquireLock with the build's error type. */
export async function lockBuild(lockPath: string, timeoutMs: number, log: (s: string) => void, doing: string): Promise<() => void> {
  try {
    return await acquireLock(lockPath, timeoutMs, log, doing);
  } catch (err) {
    if (err instanceof BuildLockTimeoutError) throw new LlamaBuildError(err.message);
    throw err;
  }
}

interface BuildRecord {
  commit: string;
  variant: string;
  serverPath: string;
  buildSeconds: number;
  builtAt: string;
  cmakeFlags: string[];
  nvccVersion?: string;
  cublas?: { source: string; version?: string; includeDir: string; libDir: string };
}

function readRecord(dir: string): BuildRecord | undefined {
  try {
    const rec = JSON.parse(fs.readFileSync(path.join(dir, 'BUILD.json'), 'utf8')) as BuildRecord;
    return fs.existsSync(rec.serverPath) ? rec : undefined;
  } catch {
    return undefined;
  }
}

/** Where a build with these options lives (and its lock file), without building anything. */
export function llamaBuildLocation(opts: LlamaBuildOptions = {}): { commit: string; variant: string; dir: string; lockPath: string } {
  const { variant } = resolveLlamaBuild(opts);
  const commit = llamaBundleCommit();
  const root = opts.cacheDir ?? defaultCacheDir();
  const key = `${commit}-${variant}`;
  return { commit, variant, dir: path.join(root, key), lockPath: path.join(root, `${key}.lock`) };
}

/** Returns the path of a built llama-server, building it first if the cache has none. */
export async function ensureLlamaServer(opts: LlamaBuildOptions = {}): Promise<LlamaBuild> {
  const log = opts.log ?? ((s: string) => process.stderr.write(`[build:llama] ${s}\n`));
  const resolved = resolveLlamaBuild(opts);
  const { cuda, jobs, variant } = resolved;
  const bundle = llamaBundlePath();
  const { commit, dir, lockPath } = llamaBuildLocation({ ...opts, cuda });
  const root = path.dirname(dir);

  const existing = readRecord(dir);
  if (existing) {
    return { serverPath: existing.serverPath, commit, variant, dir, cached: true, buildSeconds: existing.buildSeconds };
  }
  // A CUDA request without nvcc fails here, not minutes later after the clone.
  if (cuda && !hasNvcc()) throw new NvccNotFoundError(resolved.reason);

  fs.mkdirSync(root, { recursive: true });
  const release = await lockBuild(lockPath, opts.lockTimeoutMs ?? 2 * 3600_000, log, 'building llama-server');
  try {
    const again = readRecord(dir); // built by the process we waited for
    if (again) return { serverPath: again.serverPath, commit, variant, dir, cached: true, buildSeconds: again.buildSeconds };

    const started = Date.now();
    const src = path.join(dir, 'src');
    const build = path.join(dir, 'build');
    const out = opts.onOutput;
    await prepareLlamaSource(src, path.join(dir, '.source-ready'), { commit, bundle, log, onOutput: out });
    const { flags, nvcc, cublas } = await prepareLlamaCmake(resolved, {
      cacheDir: root,
      log,
      onOutput: out,
      lockTimeoutMs: opts.lockTimeoutMs,
    });
    log(`configuring ${variant} build in ${build} (${flags.join(' ')})`);
    await run('cmake', ['-S', src, '-B', build, ...flags], { onOutput: out });
    log(`compiling llama-server with ${jobs} job(s)${opts.nice === false ? '' : ' at nice 10'}; this takes minutes`);
    const buildArgs = ['--build', build, '--config', 'Release', '--target', 'llama-server', '-j', String(jobs)];
    if (opts.nice === false) await run('cmake', buildArgs, { onOutput: out });
    else await run('nice', ['-n', '10', 'cmake', ...buildArgs], { onOutput: out });

    const serverPath = path.join(build, 'bin', 'llama-server');
    if (!fs.existsSync(serverPath)) throw new LlamaBuildError(`build finished but ${serverPath} is missing`);
    const buildSeconds = Math.round((Date.now() - started) / 100) / 10;
    const record: BuildRecord = {
      commit,
      variant,
      serverPath,
      buildSeconds,
      builtAt: new Date().toISOString(),
      cmakeFlags: flags,
      ...(nvcc ? { nvccVersion: nvcc.version } : {}),
      ...(cublas
        ? { cublas: { source: cublas.source, version: cublas.version, includeDir: cublas.includeDir, libDir: cublas.libDir } }
        : {}),
    };
    fs.writeFileSync(path.join(dir, 'BUILD.json'), `${JSON.stringify(record, null, 2)}\n`);
    return { serverPath, commit, variant, dir, cached: false, buildSeconds };
  } finally {
    release();
  }
}

/**
 * Another llama.cpp tool from the same build tree as llama-server (the bench's `llama-quantize`):
 * builds llama-server first if needed, then only the tool's own target (seconds: the libraries
 * are already compiled). Under the same lock as the build, so two processes do not race.
 */
export async function ensureLlamaTool(target: 'llama-quantize', opts: LlamaBuildOptions = {}): Promise<string> {
  const log = opts.log ?? ((s: string) => process.stderr.write(`[build:llama] ${s}\n`));
  const server = await ensureLlamaServer(opts);
  const tool = path.join(path.dirname(server.serverPath), target);
  if (fs.existsSync(tool)) return tool;
  const { lockPath } = llamaBuildLocation({ ...opts, cuda: server.variant !== 'cpu' });
  const release = await lockBuild(lockPath, opts.lockTimeoutMs ?? 2 * 3600_000, log, `building ${target}`);
  try {
    if (fs.existsSync(tool)) return tool;
    const jobs = resolveLlamaBuild(opts).jobs;
    log(`compiling ${target} in ${path.join(server.dir, 'build')}`);
    await run('cmake', ['--build', path.join(server.dir, 'build'), '--config', 'Release', '--target', target, '-j', String(jobs)], {
      onOutput: opts.onOutput,
    });
    if (!fs.existsSync(tool)) throw new LlamaBuildError(`build finished but ${tool} is missing`);
    return tool;
  } finally {
    release();
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const verbose = args.includes('--verbose') || args.includes('-v');
  const cuda = args.includes('--cuda') ? true : args.includes('--cpu') ? false : undefined;
  try {
    const b = await ensureLlamaServer({
      cuda,
      onOutput: verbose ? (s) => process.stderr.write(s) : undefined,
    });
    const how = b.cached ? `reused (built earlier in ${b.buildSeconds} s)` : `built in ${b.buildSeconds} s`;
    process.stdout.write(`llama-server ${b.variant} for llama.cpp ${b.commit.slice(0, 12)}: ${how}\n  ${b.serverPath}\n`);
  } catch (err) {
    const e = err as LlamaBuildError;
    process.stderr.write(`[build:llama] failed: ${e.message}\n`);
    if (e.output) process.stderr.write(`--- last build output ---\n${e.output}\n`);
    process.exit(1);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) void main();
