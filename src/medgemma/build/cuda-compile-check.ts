/**
 * Proves, without a GPU and in minutes instead of the full build's half hour, that this machine's
 * nvcc, cuBLAS and the build's cmake flags compile llama.cpp's CUDA code for the target
 * architecture: configures the CUDA build with exactly ensureLlamaServer()'s flags
 * (prepareLlamaCmake) in its own cache folder, then compiles a representative handful of CUDA
 * translation units through the Makefile generator's per-object targets and checks each object
 * holds SASS for the architecture. Linking and running need the full build on a GPU machine
 * (`npm run build:llama -- --cuda`).
 *
 * Cache: <llama cache root>/<commit>-<variant>-check/{src,build,CHECK.json}. CHECK.json carries a
 * key over the commit, flags, units and nvcc version: a second run with the same key is instant.
 *
 *   npm run check:cuda [-- --verbose]
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  defaultCacheDir,
  llamaBundleCommit,
  llamaBundlePath,
  LlamaBuildError,
  lockBuild,
  prepareLlamaCmake,
  prepareLlamaSource,
  resolveLlamaBuild,
  type LlamaBuildOptions,
} from './build-llama.js';
import { readFatbinEntries, type FatbinEntry } from './cuda-fatbin.js';
import { describeFailure, runCommand } from './run-command.js';

/**
 * The translation units compiled, relative to ggml/src/ggml-cuda/: together they exercise the
 * backend and its cuBLAS calls, the quantized matmul MedGemma's Q4_K_M weights take, tensor-core
 * flash attention, and the token-generation mat-vec path with its activation quantization.
 * (In the full sm90 build these took 17, 58, 44, 49 and 4 s of compiler time.)
 */
export const CUDA_CHECK_UNITS: readonly string[] = [
  'ggml-cuda.cu',
  'template-instances/mmq-instance-q4_k.cu',
  'template-instances/fattn-mma-f16-instance-ncols1_8-ncols2_1.cu',
  'mmvq.cu',
  'quantize.cu',
];

/** The build's own options (architecture, jobs, cache, logging, priority, lock wait), plus which units. */
export interface CudaCompileCheckOptions
  extends Pick<LlamaBuildOptions, 'cudaArch' | 'jobs' | 'cacheDir' | 'log' | 'onOutput' | 'nice' | 'lockTimeoutMs'> {
  /** Units to compile (relative to ggml/src/ggml-cuda/); default CUDA_CHECK_UNITS. */
  units?: readonly string[];
}

export interface CheckedObject {
  unit: string;
  /** The Makefile target that built it (make -C <build>/ggml/src/ggml-cuda <target>). */
  target: string;
  object: string;
  bytes: number;
  /** The device images in the object (see cuda-fatbin.ts). */
  images: FatbinEntry[];
}

export interface CudaCompileCheck {
  commit: string;
  variant: string;
  cudaArch: string;
  /** Hash of commit + flags + units + nvcc version: the CHECK.json it was compared with. */
  key: string;
  dir: string;
  buildDir: string;
  nvccVersion: string;
  cmakeFlags: string[];
  cublas?: { source: string; version?: string; includeDir: string; libDir: string };
  objects: CheckedObject[];
  /** Seconds per step of the run that did the work (the recorded ones when cached). */
  seconds: { cublas: number; source: number; configure: number; compile: number; total: number };
  checkedAt: string;
  /** True when CHECK.json already held this key and its objects were still there. */
  cached: boolean;
}

export type CudaCheckErrorKind = 'unit_missing' | 'target_missing' | 'compile_failed' | 'no_device_code';

export class CudaCheckError extends LlamaBuildError {
  constructor(
    readonly kind: CudaCheckErrorKind,
    message: string,
    output?: string,
  ) {
    super(message, output);
    this.name = 'CudaCheckError';
  }
}

const CUDA_DIR = path.join('ggml', 'src', 'ggml-cuda');
const OBJECT_DIR = path.join(CUDA_DIR, 'CMakeFiles', 'ggml-cuda.dir');

/** The SM numbers CMAKE_CUDA_ARCHITECTURES asks SASS for ("90" → [90], "86;90a" → [86, 90]). */
export function sassArchs(cudaArch: string): number[] {
  return cudaArch
    .split(/[;,\s]+/)
    .filter((a) => a && !/-virtual$/.test(a))
    .map((a) => Number.parseInt(a, 10))
    .filter((n) => Number.isInteger(n));
}

function checkKey(parts: { commit: string; flags: string[]; units: readonly string[]; nvccVersion: string; cudaArch: string }): string {
  return crypto.createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);
}

function readCheck(file: string): CudaCompileCheck | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as CudaCompileCheck;
  } catch {
    return undefined;
  }
}

/** Objects that lack SASS for one of `archs`, with what they hold instead. */
function missingArchs(objects: CheckedObject[], archs: number[]): string[] {
  const bad: string[] = [];
  for (const o of objects) {
    const have = o.images.filter((i) => i.kind === 'elf').map((i) => i.arch);
    const lacking = archs.filter((a) => !have.includes(a));
    if (lacking.length)
      bad.push(
        `${o.unit} (no SASS for ${lacking.map((a) => `sm_${a}`).join(', ')}; has ${o.images.map((i) => `${i.kind}:${i.sm}`).join(', ') || 'no device code'})`,
      );
  }
  return bad;
}

/** Runs (or recalls) the CUDA compile check. Throws NvccNotFoundError without nvcc. */
export async function runCudaCompileCheck(opts: CudaCompileCheckOptions = {}): Promise<CudaCompileCheck> {
  const log = opts.log ?? ((s: string) => process.stderr.write(`[check:cuda] ${s}\n`));
  const resolved = resolveLlamaBuild({ cuda: true, cudaArch: opts.cudaArch, jobs: opts.jobs });
  const units = opts.units ?? CUDA_CHECK_UNITS;
  const root = opts.cacheDir ?? defaultCacheDir();
  const bundle = llamaBundlePath();
  const commit = llamaBundleCommit(bundle);
  const name = `${commit}-${resolved.variant}-check`;
  const dir = path.join(root, name);
  const src = path.join(dir, 'src');
  const buildDir = path.join(dir, 'build');
  const out = opts.onOutput;
  const started = Date.now();
  const secs = (since: number) => Math.round((Date.now() - since) / 100) / 10;

  // cuBLAS first (and nvcc: NvccNotFoundError): the flags, hence the key, depend on where it is.
  let t = Date.now();
  const cmake = await prepareLlamaCmake(resolved, { cacheDir: root, log, onOutput: out, lockTimeoutMs: opts.lockTimeoutMs });
  const cublasSeconds = secs(t);
  const nvcc = cmake.nvcc!;
  const key = checkKey({ commit, flags: cmake.flags, units, nvccVersion: nvcc.version, cudaArch: resolved.cudaArch });
  const recordPath = path.join(dir, 'CHECK.json');
  const recall = (): CudaCompileCheck | undefined => {
    const rec = readCheck(recordPath);
    if (!rec || rec.key !== key || !rec.objects.every((o) => fs.existsSync(o.object))) return undefined;
    return { ...rec, cached: true };
  };
  const earlier = recall();
  if (earlier) return earlier;

  fs.mkdirSync(root, { recursive: true });
  const release = await lockBuild(
    path.join(root, `${name}.lock`),
    opts.lockTimeoutMs ?? 2 * 3600_000,
    log,
    'running the CUDA compile check',
  );
  try {
    const again = recall();
    if (again) return again;

    t = Date.now();
    await prepareLlamaSource(src, path.join(dir, '.source-ready'), { commit, bundle, log, onOutput: out });
    const sourceSeconds = secs(t);
    for (const u of units) {
      if (!fs.existsSync(path.join(src, CUDA_DIR, u))) {
        throw new CudaCheckError(
          'unit_missing',
          `llama.cpp ${commit.slice(0, 12)} has no ${CUDA_DIR}/${u}: update CUDA_CHECK_UNITS for this llama.cpp`,
        );
      }
    }

    // A build tree configured with other flags keeps their cache entries: start it afresh.
    t = Date.now();
    const configuredPath = path.join(buildDir, '.configured-key');
    const configured = fs.existsSync(configuredPath) ? fs.readFileSync(configuredPath, 'utf8').trim() : '';
    let configureSeconds = 0;
    if (configured !== key) {
      fs.rmSync(buildDir, { recursive: true, force: true });
      log(`configuring ${resolved.variant} in ${buildDir} (${cmake.flags.join(' ')})`);
      // The per-object targets below are the Makefile generator's, whatever CMAKE_GENERATOR says.
      const r = await runCommand('cmake', ['-G', 'Unix Makefiles', '-S', src, '-B', buildDir, ...cmake.flags], { onOutput: out });
      if (r.code !== 0) throw new LlamaBuildError(`cmake configure of the CUDA build failed (${describeFailure(r)})`, r.tail);
      fs.writeFileSync(configuredPath, `${key}\n`);
      configureSeconds = secs(t);
      log(`configured in ${configureSeconds} s`);
    }

    const makefile = fs.readFileSync(path.join(buildDir, CUDA_DIR, 'Makefile'), 'utf8');
    const targets = units.map((u) => `${u}.o`);
    for (const target of targets) {
      if (!makefile.includes(`\n${target}:`))
        throw new CudaCheckError('target_missing', `${path.join(buildDir, CUDA_DIR, 'Makefile')} has no target ${target}`);
    }
    const jobs = resolved.jobs;
    log(
      `compiling ${targets.length} CUDA units for sm_${resolved.cudaArch} with ${jobs} job(s)${opts.nice === false ? '' : ' at nice 10'}: ${units.join(', ')}`,
    );
    t = Date.now();
    const makeArgs = ['-C', path.join(buildDir, CUDA_DIR), `-j${jobs}`, ...targets];
    const r =
      opts.nice === false
        ? await runCommand('make', makeArgs, { onOutput: out })
        : await runCommand('nice', ['-n', '10', 'make', ...makeArgs], { onOutput: out });
    if (r.code !== 0) throw new CudaCheckError('compile_failed', `compiling llama.cpp's CUDA units failed (${describeFailure(r)})`, r.tail);
    const compileSeconds = secs(t);

    const objects: CheckedObject[] = units.map((unit, i) => {
      const object = path.join(buildDir, OBJECT_DIR, `${unit}.o`);
      if (!fs.existsSync(object)) throw new CudaCheckError('compile_failed', `make succeeded but ${object} is missing`);
      return { unit, target: targets[i]!, object, bytes: fs.statSync(object).size, images: readFatbinEntries(object) };
    });
    const bad = missingArchs(objects, sassArchs(resolved.cudaArch));
    if (bad.length) throw new CudaCheckError('no_device_code', `compiled, but without the expected device code: ${bad.join('; ')}`);

    const result: CudaCompileCheck = {
      commit,
      variant: resolved.variant,
      cudaArch: resolved.cudaArch,
      key,
      dir,
      buildDir,
      nvccVersion: nvcc.version,
      cmakeFlags: cmake.flags,
      ...(cmake.cublas
        ? {
            cublas: {
              source: cmake.cublas.source,
              version: cmake.cublas.version,
              includeDir: cmake.cublas.includeDir,
              libDir: cmake.cublas.libDir,
            },
          }
        : {}),
      objects,
      seconds: { cublas: cublasSeconds, source: sourceSeconds, configure: configureSeconds, compile: compileSeconds, total: secs(started) },
      checkedAt: new Date().toISOString(),
      cached: false,
    };
    fs.writeFileSync(recordPath, `${JSON.stringify({ ...result, cached: undefined }, null, 2)}\n`);
    return result;
  } finally {
    release();
  }
}

/** The report `npm run check:cuda` prints. */
export function describeCheck(c: CudaCompileCheck): string {
  const lines = [
    `CUDA compile check for llama.cpp ${c.commit.slice(0, 12)} (${c.variant}): OK${c.cached ? ` (recorded ${c.checkedAt}, key ${c.key})` : ''}`,
    `  nvcc ${c.nvccVersion}; cuBLAS: ${c.cublas ? `${c.cublas.source}${c.cublas.version ? ` ${c.cublas.version}` : ''} (${c.cublas.includeDir})` : 'toolkit / LLAMA_CMAKE_ARGS'}`,
    `  cmake flags (the same as npm run build:llama -- --cuda): ${c.cmakeFlags.join(' ')}`,
    `  compiled ${c.objects.length} CUDA translation units:`,
    ...c.objects.map(
      (o) => `    ${o.unit}: ${(o.bytes / 1024).toFixed(0)} KiB, device code ${o.images.map((i) => `${i.kind}:${i.sm}`).join(' ')}`,
    ),
    `  seconds: cuBLAS ${c.seconds.cublas}, source ${c.seconds.source}, configure ${c.seconds.configure}, compile ${c.seconds.compile}, total ${c.seconds.total}`,
    '  Not checked here: the other CUDA units, linking, and running on a GPU. For those, build on a GPU',
    '  machine: npm run build:llama -- --cuda (about 30 min on 2 cores).',
  ];
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  const verbose = process.argv.includes('--verbose') || process.argv.includes('-v');
  try {
    const c = await runCudaCompileCheck({ onOutput: verbose ? (s) => process.stderr.write(s) : undefined });
    process.stdout.write(describeCheck(c));
  } catch (err) {
    const e = err as LlamaBuildError;
    process.stderr.write(`[check:cuda] failed: ${e.message}\n`);
    if (e.output) process.stderr.write(`--- last output ---\n${e.output}\n`);
    process.exit(1);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) void main();
