/**
 * Lists the device code inside an object nvcc compiled: the fat binaries in its `.nv_fatbin`
 * (or `__nv_relfatbin`) ELF section, one entry per PTX or SASS (cubin) image with its SM
 * architecture. This is what `cuobjdump --list-elf` / `--list-ptx` print; nvcc-only toolkits
 * (the pip wheels CI uses) ship no cuobjdump, so the check reads the container itself.
 *
 * Layout (little-endian): a container header { magic 0xBA55ED50 u32, version u16, headerSize u16,
 * payloadSize u64 } followed by entries { kind u16 (1 PTX, 2 ELF), version u16, headerSize u32,
 * payloadSize u64, …, arch u32 at +28, …, flags u64 at +40 }.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const FATBIN_MAGIC = 0xba55ed50;
const FATBIN_SECTIONS = new Set(['.nv_fatbin', '__nv_relfatbin']);

export interface FatbinEntry {
  kind: 'ptx' | 'elf' | 'unknown';
  /** SM number, e.g. 90. */
  arch: number;
  /** "sm_90", as cuobjdump names it. */
  sm: string;
  payloadBytes: number;
  /** The image is compressed inside the fat binary (nvcc's default for large images). */
  compressed: boolean;
}

export class FatbinFormatError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = 'FatbinFormatError';
  }
}

interface Section {
  name: string;
  offset: number;
  size: number;
}

function elfSections(file: string, buf: Buffer): Section[] {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46) throw new FatbinFormatError(file, 'not an ELF file');
  if (buf[4] !== 2 || buf[5] !== 1) throw new FatbinFormatError(file, 'not a 64-bit little-endian ELF file');
  const shoff = Number(buf.readBigUInt64LE(0x28));
  const shentsize = buf.readUInt16LE(0x3a);
  const shnum = buf.readUInt16LE(0x3c);
  const shstrndx = buf.readUInt16LE(0x3e);
  if (shoff + shnum * shentsize > buf.length || shstrndx >= shnum) throw new FatbinFormatError(file, 'truncated section header table');
  const raw = Array.from({ length: shnum }, (_, i) => {
    const at = shoff + i * shentsize;
    return { nameOff: buf.readUInt32LE(at), offset: Number(buf.readBigUInt64LE(at + 24)), size: Number(buf.readBigUInt64LE(at + 32)) };
  });
  const strtab = raw[shstrndx]!;
  return raw.map((s) => {
    const start = strtab.offset + s.nameOff;
    const end = buf.indexOf(0, start);
    return { name: buf.toString('latin1', start, end < 0 ? start : end), offset: s.offset, size: s.size };
  });
}

/** The device images in an nvcc object file (empty: a host-only object). */
export function readFatbinEntries(file: string): FatbinEntry[] {
  const buf = fs.readFileSync(file);
  const entries: FatbinEntry[] = [];
  for (const sec of elfSections(file, buf)) {
    if (!FATBIN_SECTIONS.has(sec.name)) continue;
    const end = Math.min(sec.offset + sec.size, buf.length);
    let p = sec.offset;
    while (p + 16 <= end) {
      if (buf.readUInt32LE(p) !== FATBIN_MAGIC) {
        p += 8; // containers are 8-byte aligned; skip padding between them
        continue;
      }
      const headerSize = buf.readUInt16LE(p + 6);
      const fatSize = Number(buf.readBigUInt64LE(p + 8));
      let q = p + headerSize;
      const stop = Math.min(q + fatSize, end);
      while (q + 48 <= stop) {
        const kindCode = buf.readUInt16LE(q);
        const entryHeader = buf.readUInt32LE(q + 4);
        const payloadBytes = Number(buf.readBigUInt64LE(q + 8));
        if (entryHeader < 48) throw new FatbinFormatError(file, `fat binary entry at ${q} has a ${entryHeader}-byte header`);
        const arch = buf.readUInt32LE(q + 28);
        const flags = buf.readBigUInt64LE(q + 40);
        entries.push({
          kind: kindCode === 1 ? 'ptx' : kindCode === 2 ? 'elf' : 'unknown',
          arch,
          sm: `sm_${arch}`,
          payloadBytes,
          compressed: (flags & 0xa000n) !== 0n, // 0x2000 LZ4 (older nvcc), 0x8000 zstd (CUDA 13)
        });
        q += entryHeader + payloadBytes;
      }
      p += headerSize + fatSize;
    }
  }
  return entries;
}

/** cuobjdump next to nvcc or on PATH, when the toolkit has it (full installers do; the wheels don't). */
export function findCuobjdump(toolkitRoot?: string): string | undefined {
  const candidates = [toolkitRoot ? path.join(toolkitRoot, 'bin', 'cuobjdump') : undefined, 'cuobjdump'].filter((x): x is string => !!x);
  for (const c of candidates) {
    const r = spawnSync(c, ['--version'], { encoding: 'utf8' });
    if (r.status === 0) return c;
  }
  return undefined;
}

/** The SASS architectures `cuobjdump --list-elf` names for an object ("sm_90", …). */
export function cuobjdumpElfArchs(cuobjdump: string, file: string): string[] {
  const r = spawnSync(cuobjdump, ['--list-elf', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new FatbinFormatError(file, `cuobjdump --list-elf failed: ${r.stderr || r.error?.message}`);
  return [...new Set([...r.stdout.matchAll(/\.(sm_\d+[a-z]?)\.cubin/g)].map((m) => m[1]!))];
}
