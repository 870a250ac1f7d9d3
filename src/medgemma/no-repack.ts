/**
 * Whether llama-server runs with --no-repack (LLAMA_NO_REPACK=auto|on|off). On an x86 CPU with AMX,
 * a native llama.cpp build (GGML_NATIVE, our CPU builds) repacks Q4_K weights for its AMX matmul,
 * which segfaults during warm-up on a Q4_K_M model (llama.cpp issue #20824): --no-repack keeps
 * the weights as loaded. Only AMX CPUs get it under `auto`, since elsewhere repacking (AVX2/AVX-512
 * layouts) is what makes CPU inference fast; GPU-offloaded layers are not affected either way.
 */
import fs from 'node:fs';

export type NoRepackMode = 'auto' | 'on' | 'off';

export interface HostCpu {
  /** process.arch */
  arch: string;
  /** /proc/cpuinfo's text ('' where there is none). */
  cpuinfo: string;
}

/** AMX in the `flags` lines of /proc/cpuinfo (amx_tile, amx_int8: what ggml's AMX path uses). */
export function cpuHasAmx(cpuinfo: string): boolean {
  return cpuinfo
    .split('\n')
    .some((line) => /^flags\s*:/.test(line) && /(?:^|\s)amx_(?:tile|int8)(?=\s|$)/.test(line.slice(line.indexOf(':') + 1)));
}

export function noRepackWanted(mode: NoRepackMode, cpu: HostCpu): boolean {
  if (mode !== 'auto') return mode === 'on';
  return (cpu.arch === 'x64' || cpu.arch === 'ia32') && cpuHasAmx(cpu.cpuinfo);
}

export function hostCpu(): HostCpu {
  let cpuinfo = '';
  try {
    cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    /* not Linux: no AMX detection, `auto` leaves repacking on */
  }
  return { arch: process.arch, cpuinfo };
}
