/**
 * What the machine has for CUDA: the `nvcc` cmake would use, the toolkit it belongs to, and
 * whether a GPU is visible. Kept apart from the build so the CUDA/CPU decision and the cuBLAS
 * lookup read the same facts.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface Nvcc {
  /** The command as cmake will find it (CUDACXX, else the first `nvcc` on PATH). */
  path: string;
  /** "13.0.88" from `nvcc --version`. */
  version: string;
  /** The toolkit root nvcc runs from (its TOP), e.g. /usr/local/cuda-13.0; undefined if nvcc hides it. */
  toolkitRoot?: string;
}

/** First executable `name` on PATH (what spawn would run), or undefined. */
export function whichOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/**
 * The nvcc cmake's CUDA language support would pick (CUDACXX wins, as in cmake), or undefined
 * when there is none or it does not run.
 */
export function findNvcc(): Nvcc | undefined {
  const cmd = process.env.CUDACXX || whichOnPath('nvcc');
  if (!cmd) return undefined;
  const v = spawnSync(cmd, ['--version'], { encoding: 'utf8' });
  if (v.status !== 0) return undefined;
  const m = /release [\d.]+, V([\d.]+)/.exec(v.stdout);
  // nvcc may be a wrapper script (as /usr/local/bin/nvcc is here): ask nvcc itself where its TOP is.
  const dry = spawnSync(cmd, ['--dryrun', '-E', '-x', 'cu', '/dev/null'], { encoding: 'utf8' });
  const top = /^#\$ TOP=(.+)$/m.exec(`${dry.stdout}${dry.stderr}`);
  return { path: cmd, version: m?.[1] ?? 'unknown', toolkitRoot: top ? path.resolve(top[1]!.trim()) : undefined };
}

/** A GPU the driver can see (`nvidia-smi -L` succeeds and lists one). */
export function hasVisibleGpu(): boolean {
  const r = spawnSync('nvidia-smi', ['-L'], { encoding: 'utf8' });
  return r.status === 0 && /GPU \d+/.test(r.stdout);
}

/** Library folders of a toolkit root, in the order cmake's FindCUDAToolkit looks. */
export function toolkitLibDirs(root: string): string[] {
  const dirs = [path.join(root, 'lib64'), path.join(root, 'lib')];
  const targets = path.join(root, 'targets');
  if (fs.existsSync(targets)) for (const t of fs.readdirSync(targets)) dirs.push(path.join(targets, t, 'lib'));
  return dirs.filter((d) => fs.existsSync(d));
}

/** Include folders of a toolkit root. */
export function toolkitIncludeDirs(root: string): string[] {
  const dirs = [path.join(root, 'include')];
  const targets = path.join(root, 'targets');
  if (fs.existsSync(targets)) for (const t of fs.readdirSync(targets)) dirs.push(path.join(targets, t, 'include'));
  return dirs.filter((d) => fs.existsSync(d));
}

/**
 * Whether a `libcuda.so` (the driver, or the toolkit's link stub) can be linked against. ggml's
 * VMM memory pool calls the driver API directly, so without one the build must use
 * GGML_CUDA_NO_VMM (the legacy pool; the binary still runs on a GPU).
 */
export function hasDriverLibrary(toolkitRoot: string | undefined): boolean {
  const dirs = toolkitRoot ? toolkitLibDirs(toolkitRoot).flatMap((d) => [d, path.join(d, 'stubs')]) : [];
  dirs.push('/usr/lib/x86_64-linux-gnu', '/usr/lib64', '/usr/lib');
  return dirs.some((d) => fs.existsSync(path.join(d, 'libcuda.so')));
}
