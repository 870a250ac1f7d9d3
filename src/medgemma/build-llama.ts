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
 * Flavour: CUDA when LLAMA_CUDA=on, or when `nvcc` (with cuBLAS next to it) is found and
 * LLAMA_CUDA is not "off"; LLAMA_CUDA_ARCH picks the architectures (default 90, H100/H200).
 * LLAMA_CMAKE_ARGS adds cmake flags (e.g. where a separately installed cuBLAS lives); they are
 * recorded in BUILD.json but are not part of the cache key.
 *
 *   npm run build:llama            builds (or reuses) and prints the binary's path
 *   ensureLlamaServer()            the same, from code ("built on demand")
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface LlamaBuildOptions {
  /** Force the flavour; default from LLAMA_CUDA / nvcc detection. */
  cuda?: boolean;
  /** CUDA architectures (cmake CMAKE_CUDA_ARCHITECTURES); default LLAMA_CUDA_ARCH or "90". */
  cudaArch?: string;
  /** Parallel build jobs; default LLAMA_BUILD_JOBS or the CPU count. */
  jobs?: number;
  /** Cache root; default LLAMA_CACHE_DIR or ${XDG_CACHE_HOME:-~/.cache}/radiant/llama. */
  cacheDir?: string;
  /** Where progress goes (one line per step); default stderr. */
  log?: (line: string) => void;
  /** Build output (cmake/compiler) is forwarded here; default: discarded except on failure. */
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
  constructor(message: string, readonly output?: string) {
    super(message);
    this.name = 'LlamaBuildError';
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

function run(cmd: string, args: string[], opts: { cwd?: string; onOutput?: (s: string) => void } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const take = (b: Buffer) => {
      const s = b.toString('utf8');
      tail = (tail + s).slice(-20000);
      opts.onOutput?.(s);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', (err) => reject(new LlamaBuildError(`${cmd}: ${err.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new LlamaBuildError(`${cmd} ${args.join(' ')} failed (${signal ?? `exit ${code}`})`, tail));
    });
  });
}

function bundleCommit(bundle: string): string {
  const r = spawnSync('git', ['bundle', 'list-heads', bundle], { encoding: 'utf8' });
  if (r.status !== 0) throw new LlamaBuildError(`git bundle list-heads ${bundle} failed: ${r.stderr}`);
  const m = /^([0-9a-f]{40})\s/m.exec(r.stdout);
  if (!m) throw new LlamaBuildError(`no head in ${bundle}`);
  return m[1]!;
}

export function hasNvcc(): boolean {
  const r = spawnSync('nvcc', ['--version'], { encoding: 'utf8' });
  return r.status === 0;
}

/** Extra cmake flags from LLAMA_CMAKE_ARGS (whitespace-separated; not part of the cache key). */
function extraCmakeArgs(): string[] {
  return (process.env.LLAMA_CMAKE_ARGS ?? '').split(/\s+/).filter(Boolean);
}

/**
 * Whether the CUDA toolkit next to nvcc has cuBLAS headers, which ggml-cuda needs (a toolkit
 * made of the nvcc wheels alone has none). LLAMA_CMAKE_ARGS naming cublas counts as "has".
 */
export function hasCublas(): boolean {
  if (/cublas/i.test(process.env.LLAMA_CMAKE_ARGS ?? '')) return true;
  const roots = [process.env.CUDA_PATH, process.env.CUDA_HOME, '/usr/local/cuda', '/usr'].filter((x): x is string => !!x);
  const which = spawnSync('sh', ['-c', 'readlink -f "$(command -v nvcc)"'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) roots.unshift(path.dirname(path.dirname(which.stdout.trim())));
  for (const root of roots) {
    const candidates = [path.join(root, 'include', 'cublas_v2.h')];
    const targets = path.join(root, 'targets');
    if (fs.existsSync(targets)) for (const t of fs.readdirSync(targets)) candidates.push(path.join(targets, t, 'include', 'cublas_v2.h'));
    if (candidates.some((c) => fs.existsSync(c))) return true;
  }
  return false;
}

export function defaultCacheDir(): string {
  if (process.env.LLAMA_CACHE_DIR) return path.resolve(process.env.LLAMA_CACHE_DIR);
  const xdg = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(xdg, 'radiant', 'llama');
}

function resolveOptions(opts: LlamaBuildOptions) {
  const env = (process.env.LLAMA_CUDA ?? '').toLowerCase();
  let cuda: boolean;
  if (opts.cuda !== undefined) cuda = opts.cuda;
  else if (env === 'on' || env === '1' || env === 'true') cuda = true;
  else if (env === 'off' || env === '0' || env === 'false') cuda = false;
  else cuda = hasNvcc() && hasCublas();
  const cudaArch = opts.cudaArch ?? process.env.LLAMA_CUDA_ARCH ?? '90';
  const jobs = opts.jobs ?? (Number(process.env.LLAMA_BUILD_JOBS) || os.availableParallelism());
  const variant = cuda ? `cuda-sm${cudaArch.replace(/[^0-9a-z]+/gi, '_')}` : 'cpu';
  return { cuda, cudaArch, jobs, variant };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function acquireLock(lockPath: string, timeoutMs: number, log: (s: string) => void): Promise<() => void> {
  const deadline = Date.now() + timeoutMs;
  let announced = false;
  for (;;) {
    try {
      const fd = fs.openSync(lockPath, 'wx');
      fs.writeSync(fd, `${process.pid}\n`);
      fs.closeSync(fd);
      return () => {
        try {
          fs.unlinkSync(lockPath);
        } catch {
          /* already gone */
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number.parseInt(fs.readFileSync(lockPath, 'utf8').trim(), 10);
    if (!Number.isInteger(owner) || !pidAlive(owner)) {
      // Stale lock (the builder died). Remove it only if it is still the same file.
      log(`removing stale build lock ${lockPath} (pid ${Number.isNaN(owner) ? '?' : owner} is gone)`);
      try {
        fs.unlinkSync(lockPath);
      } catch {
        /* someone else took it over */
      }
      continue;
    }
    if (!announced) {
      log(`another process (pid ${owner}) is building llama-server; waiting for ${lockPath}`);
      announced = true;
    }
    if (Date.now() > deadline) throw new LlamaBuildError(`timed out waiting for build lock ${lockPath} (pid ${owner})`);
    await new Promise((r) => setTimeout(r, 2000));
  }
}

interface BuildRecord {
  commit: string;
  variant: string;
  serverPath: string;
  buildSeconds: number;
  builtAt: string;
  cmakeFlags: string[];
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
  const { variant } = resolveOptions(opts);
  const commit = bundleCommit(llamaBundlePath());
  const root = opts.cacheDir ?? defaultCacheDir();
  const key = `${commit}-${variant}`;
  return { commit, variant, dir: path.join(root, key), lockPath: path.join(root, `${key}.lock`) };
}

/** Returns the path of a built llama-server, building it first if the cache has none. */
export async function ensureLlamaServer(opts: LlamaBuildOptions = {}): Promise<LlamaBuild> {
  const log = opts.log ?? ((s: string) => process.stderr.write(`[build:llama] ${s}\n`));
  const { cuda, cudaArch, jobs, variant } = resolveOptions(opts);
  const bundle = llamaBundlePath();
  const { commit, dir, lockPath } = llamaBuildLocation(opts);
  const root = path.dirname(dir);

  const existing = readRecord(dir);
  if (existing) {
    return { serverPath: existing.serverPath, commit, variant, dir, cached: true, buildSeconds: existing.buildSeconds };
  }

  fs.mkdirSync(root, { recursive: true });
  const release = await acquireLock(lockPath, opts.lockTimeoutMs ?? 2 * 3600_000, log);
  try {
    const again = readRecord(dir); // built by the process we waited for
    if (again) return { serverPath: again.serverPath, commit, variant, dir, cached: true, buildSeconds: again.buildSeconds };

    const started = Date.now();
    const src = path.join(dir, 'src');
    const build = path.join(dir, 'build');
    const out = opts.onOutput;
    const clonedMarker = path.join(dir, '.source-ready');
    if (!fs.existsSync(clonedMarker)) {
      fs.rmSync(src, { recursive: true, force: true });
      fs.mkdirSync(dir, { recursive: true });
      log(`cloning llama.cpp ${commit.slice(0, 12)} from ${bundle}`);
      await run('git', ['clone', '--quiet', bundle, src], { onOutput: out });
      await run('git', ['-c', 'advice.detachedHead=false', 'checkout', '--quiet', commit], { cwd: src, onOutput: out });
      fs.writeFileSync(clonedMarker, `${commit}\n`);
    }
    const flags = [
      '-DCMAKE_BUILD_TYPE=Release',
      '-DLLAMA_CURL=OFF',
      '-DLLAMA_BUILD_TESTS=OFF',
      '-DLLAMA_BUILD_EXAMPLES=OFF',
      '-DBUILD_SHARED_LIBS=OFF',
      `-DGGML_CUDA=${cuda ? 'ON' : 'OFF'}`,
      ...(cuda ? [`-DCMAKE_CUDA_ARCHITECTURES=${cudaArch}`] : []),
      ...extraCmakeArgs(),
    ];
    if (cuda && !hasCublas()) {
      log('warning: nvcc found but no cuBLAS headers next to it; cmake will likely fail (install cuBLAS or point LLAMA_CMAKE_ARGS at it)');
    }
    log(`configuring ${variant} build in ${build} (${flags.join(' ')})`);
    await run('cmake', ['-S', src, '-B', build, ...flags], { onOutput: out });
    log(`compiling llama-server with ${jobs} job(s)${opts.nice === false ? '' : ' at nice 10'}; this takes minutes`);
    const buildArgs = ['--build', build, '--config', 'Release', '--target', 'llama-server', '-j', String(jobs)];
    if (opts.nice === false) await run('cmake', buildArgs, { onOutput: out });
    else await run('nice', ['-n', '10', 'cmake', ...buildArgs], { onOutput: out });

    const serverPath = path.join(build, 'bin', 'llama-server');
    if (!fs.existsSync(serverPath)) throw new LlamaBuildError(`build finished but ${serverPath} is missing`);
    const buildSeconds = Math.round((Date.now() - started) / 100) / 10;
    const record: BuildRecord = { commit, variant, serverPath, buildSeconds, builtAt: new Date().toISOString(), cmakeFlags: flags };
    fs.writeFileSync(path.join(dir, 'BUILD.json'), `${JSON.stringify(record, null, 2)}\n`);
    return { serverPath, commit, variant, dir, cached: false, buildSeconds };
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
    process.stdout.write(
      `llama-server ${b.variant} for llama.cpp ${b.commit.slice(0, 12)}: ${how}\n  ${b.serverPath}\n`,
    );
  } catch (err) {
    const e = err as LlamaBuildError;
    process.stderr.write(`[build:llama] failed: ${e.message}\n`);
    if (e.output) process.stderr.write(`--- last build output ---\n${e.output}\n`);
    process.exit(1);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) void main();
