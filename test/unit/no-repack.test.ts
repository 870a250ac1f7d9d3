import { expect } from 'chai';
import { loadConfig } from '../../src/config.js';
import { cpuHasAmx, noRepackWanted } from '../../src/medgemma/no-repack.js';

/** Two processors of a Sapphire Rapids VM (AMX) and of an AVX-512 CPU without it, as /proc/cpuinfo prints them. */
const cpuinfo = (flags: string, model = 'Intel(R) Xeon(R) Platinum 8480+') =>
  [0, 1]
    .map((n) => `processor\t: ${n}\nvendor_id\t: GenuineIntel\nmodel name\t: ${model}\nflags\t\t: ${flags}\nbugs\t\t: spectre_v1\n`)
    .join('\n');
const AMX = cpuinfo('fpu vme sse2 avx2 avx512f avx512_vnni amx_bf16 avx512_fp16 amx_tile amx_int8 arch_capabilities');
const NO_AMX = cpuinfo('fpu vme sse2 avx2 avx512f avx512_vnni avx512_bf16 arch_capabilities', 'Intel(R) Xeon(R) Gold 6338');
const ARM =
  'processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics sve\nCPU implementer\t: 0x41\n';

describe('unit: llama-server --no-repack (AMX Q4_K repack crash, llama.cpp #20824)', () => {
  it('auto: on for an x86 CPU whose flags name AMX, off otherwise', () => {
    expect(noRepackWanted('auto', { arch: 'x64', cpuinfo: AMX })).to.equal(true);
    expect(noRepackWanted('auto', { arch: 'x64', cpuinfo: cpuinfo('sse2 avx2 amx_tile') })).to.equal(true);
    expect(noRepackWanted('auto', { arch: 'x64', cpuinfo: cpuinfo('sse2 avx2 amx_int8') })).to.equal(true);
    expect(noRepackWanted('auto', { arch: 'x64', cpuinfo: NO_AMX })).to.equal(false);
    expect(noRepackWanted('auto', { arch: 'arm64', cpuinfo: ARM })).to.equal(false);
    expect(noRepackWanted('auto', { arch: 'x64', cpuinfo: '' })).to.equal(false); // no /proc/cpuinfo (macOS, Windows)
  });

  it('only the flags lines count, whole words only', () => {
    expect(cpuHasAmx(cpuinfo('avx2 amx_bf16'))).to.equal(false); // bf16 alone: not ggml's AMX path
    expect(cpuHasAmx(cpuinfo('avx2 amx_tilex notamx_int8'))).to.equal(false);
    expect(cpuHasAmx(cpuinfo('avx2', 'Fake amx_int8 CPU'))).to.equal(false);
    expect(cpuHasAmx(AMX)).to.equal(true);
  });

  it('on and off override the CPU', () => {
    expect(noRepackWanted('on', { arch: 'x64', cpuinfo: NO_AMX })).to.equal(true);
    expect(noRepackWanted('on', { arch: 'arm64', cpuinfo: ARM })).to.equal(true);
    expect(noRepackWanted('off', { arch: 'x64', cpuinfo: AMX })).to.equal(false);
  });

  it('LLAMA_NO_REPACK: auto by default, on/off taken, anything else refused', () => {
    const base = { MEDGEMMA_BACKEND: 'off' };
    expect(loadConfig(base, '/tmp').medgemma.llamaNoRepack).to.equal('auto');
    expect(loadConfig({ ...base, LLAMA_NO_REPACK: 'on' }, '/tmp').medgemma.llamaNoRepack).to.equal('on');
    expect(loadConfig({ ...base, LLAMA_NO_REPACK: 'off' }, '/tmp').medgemma.llamaNoRepack).to.equal('off');
    expect(() => loadConfig({ ...base, LLAMA_NO_REPACK: 'yes' }, '/tmp')).to.throw(/LLAMA_NO_REPACK/);
  });
});
