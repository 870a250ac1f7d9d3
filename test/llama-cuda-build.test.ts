/**
 * The CUDA side of the llama-server build, for machines without a GPU (CI):
 * - the cuBLAS locator (LLAMA_CUBLAS_DIR, the toolkit, the cache copy) and its installer, with a
 *   stand-in pip that hands over a small wheel of the real layout;
 * - CUDA/CPU selection: automatic CUDA needs nvcc and a visible GPU; asking for CUDA without nvcc
 *   fails naming nvcc (checked with nvcc hidden from PATH, and for real where nvcc is absent);
 * - where nvcc is installed, the real compile check: llama.cpp's CUDA units compiled with the
 *   build's own flags, each object holding sm_90 SASS (the first run fetches cuBLAS and compiles,
 *   minutes; later runs reuse CHECK.json).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import {
  ensureLlamaServer,
  hasNvcc,
  llamaBuildLocation,
  llamaCmakeFlags,
  NvccNotFoundError,
  prepareLlamaCmake,
  resolveLlamaBuild,
} from '../src/medgemma/build/build-llama.js';
import {
  CUBLAS_WHEEL_VERSION,
  CublasError,
  cublasCacheDir,
  ensureCublas,
  locateCublas,
  type CublasLocation,
} from '../src/medgemma/build/cublas.js';
import { CUDA_CHECK_UNITS, describeCheck, runCudaCompileCheck, sassArchs } from '../src/medgemma/build/cuda-compile-check.js';
import { cuobjdumpElfArchs, findCuobjdump, readFatbinEntries } from '../src/medgemma/build/cuda-fatbin.js';
import { findNvcc, hasVisibleGpu, whichOnPath } from '../src/medgemma/build/cuda-toolkit.js';

function touch(file: string, content = 'x'): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  return file;
}

/** A folder laid out as cuBLAS: include/cublas_v2.h and the two libraries. */
function fakeCublas(root: string, libSub = 'lib', names = ['libcublas.so', 'libcublasLt.so']): string {
  touch(path.join(root, 'include', 'cublas_v2.h'), '/* cublas */\n');
  for (const n of names) touch(path.join(root, libSub, n));
  return root;
}

/** Runs `fn` with environment variables set (undefined: removed), restoring them after. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T> | T): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(vars)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

describe('cuBLAS locator', function () {
  let dir: string;
  const noToolkit = { path: 'nvcc', version: '13.0.88', toolkitRoot: undefined };

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cublas-test-'));
  });
  afterEach(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('finds cuBLAS in the toolkit next to nvcc and adds no flags (cmake finds it there)', function () {
    const tk = fakeCublas(path.join(dir, 'cuda-13.0'), 'lib64');
    const loc = locateCublas({ nvcc: { ...noToolkit, toolkitRoot: tk }, envDir: '', cacheDir: path.join(dir, 'cache') });
    expect(loc?.source).to.equal('toolkit');
    expect(loc?.includeDir).to.equal(path.join(tk, 'include'));
    expect(loc?.libDir).to.equal(path.join(tk, 'lib64'));
    expect(loc?.cmakeFlags).to.deep.equal([]);
  });

  it('a toolkit without cuBLAS and an empty cache find nothing', function () {
    const tk = path.join(dir, 'cuda-nvcc-only');
    touch(path.join(tk, 'include', 'cuda_runtime.h'));
    touch(path.join(tk, 'lib', 'libcudart.so'));
    expect(locateCublas({ nvcc: { ...noToolkit, toolkitRoot: tk }, envDir: '', cacheDir: path.join(dir, 'cache') })).to.equal(undefined);
  });

  it('LLAMA_CUBLAS_DIR wins over the toolkit, in plain and in unpacked-wheel layout', async function () {
    const tk = fakeCublas(path.join(dir, 'toolkit'), 'lib64');
    const plain = fakeCublas(path.join(dir, 'plain'), 'lib', ['libcublas.so.13', 'libcublasLt.so.13']);
    const loc = await withEnv({ LLAMA_CUBLAS_DIR: plain }, () => locateCublas({ nvcc: { ...noToolkit, toolkitRoot: tk }, cacheDir: dir }));
    expect(loc?.source).to.equal('env');
    expect(loc?.cmakeFlags).to.deep.equal([
      `-DCUDA_cublas_LIBRARY=${path.join(plain, 'lib', 'libcublas.so.13')}`,
      `-DCUDA_cublasLt_LIBRARY=${path.join(plain, 'lib', 'libcublasLt.so.13')}`,
      `-DCMAKE_CUDA_FLAGS=-I${path.join(plain, 'include')}`,
      `-DCMAKE_CXX_FLAGS=-I${path.join(plain, 'include')}`,
    ]);

    const wheelRoot = path.join(dir, 'unpacked-wheel');
    fakeCublas(path.join(wheelRoot, 'nvidia', 'cu13'));
    fs.mkdirSync(path.join(wheelRoot, 'nvidia_cublas-13.1.1.3.dist-info'));
    const w = locateCublas({ nvcc: null, envDir: wheelRoot, cacheDir: dir });
    expect(w?.source).to.equal('env');
    expect(w?.version).to.equal('13.1.1.3');
    expect(w?.includeDir).to.equal(path.join(wheelRoot, 'nvidia', 'cu13', 'include'));
    expect(w?.cmakeFlags[0]).to.equal(`-DCUDA_cublas_LIBRARY=${path.join(wheelRoot, 'nvidia', 'cu13', 'lib', 'libcublas.so')}`);
  });

  it('a bad LLAMA_CUBLAS_DIR is an error that says what is wrong, not a silent fall-through', async function () {
    const tk = fakeCublas(path.join(dir, 'toolkit'), 'lib64');
    const missing = path.join(dir, 'nope');
    const err1 = await withEnv({ LLAMA_CUBLAS_DIR: missing }, () => {
      try {
        locateCublas({ nvcc: { ...noToolkit, toolkitRoot: tk }, cacheDir: dir });
        return undefined;
      } catch (e) {
        return e;
      }
    });
    expect(err1).to.be.instanceOf(CublasError);
    expect((err1 as CublasError).kind).to.equal('bad_dir');
    expect((err1 as Error).message)
      .to.contain(`LLAMA_CUBLAS_DIR=${missing}`)
      .and.to.contain('no such directory');

    const empty = path.join(dir, 'empty');
    fs.mkdirSync(empty);
    expect(() => locateCublas({ nvcc: null, envDir: empty, cacheDir: dir })).to.throw(
      CublasError,
      /LLAMA_CUBLAS_DIR=.*empty has no cuBLAS: expected include\/cublas_v2\.h/,
    );

    const headersOnly = path.join(dir, 'headers-only');
    touch(path.join(headersOnly, 'include', 'cublas_v2.h'));
    expect(() => locateCublas({ nvcc: null, envDir: headersOnly, cacheDir: dir })).to.throw(
      CublasError,
      /no libcublas\.so and libcublasLt\.so/,
    );
  });

  it('uses a complete cache copy and ignores an incomplete one', function () {
    const cache = path.join(dir, 'cache');
    const copy = cublasCacheDir(cache);
    expect(copy).to.equal(path.join(cache, 'cublas', CUBLAS_WHEEL_VERSION));
    fakeCublas(copy);
    expect(locateCublas({ nvcc: null, envDir: '', cacheDir: cache }), 'no CUBLAS.json yet').to.equal(undefined);
    fs.writeFileSync(path.join(copy, 'CUBLAS.json'), JSON.stringify({ version: CUBLAS_WHEEL_VERSION }));
    const loc = locateCublas({ nvcc: null, envDir: '', cacheDir: cache });
    expect(loc?.source).to.equal('cache');
    expect(loc?.version).to.equal(CUBLAS_WHEEL_VERSION);
    expect(loc?.cmakeFlags).to.include(`-DCMAKE_CUDA_FLAGS=-I${path.join(copy, 'include')}`);
    fs.rmSync(path.join(copy, 'lib'), { recursive: true });
    expect(locateCublas({ nvcc: null, envDir: '', cacheDir: cache }), 'libraries gone').to.equal(undefined);
  });

  describe('ensureCublas installing the cache copy', function () {
    /** A python3 stand-in: `-m pip download … --dest D` copies `wheel` into D (or fails); anything else runs python3. */
    function fakePython(wheel: string | undefined, log: string): string {
      const script = path.join(dir, 'python3');
      const pip = wheel
        ? `while [ "$1" != "--dest" ]; do shift; done; cp "${wheel}" "$2"/`
        : 'echo "ERROR: Could not find a version that satisfies the requirement nvidia-cublas" >&2; exit 1';
      fs.writeFileSync(script, `#!/bin/sh\necho "$@" >> "${log}"\nif [ "$1" = "-m" ]; then ${pip}; exit 0; fi\nexec python3 "$@"\n`, {
        mode: 0o755,
      });
      return script;
    }

    /** A wheel with the real one's layout (and a file outside it that must not be unpacked). */
    function makeWheel(): string {
      const wheel = path.join(dir, `nvidia_cublas-${CUBLAS_WHEEL_VERSION}-py3-none-manylinux_2_27_x86_64.whl`);
      const py = `
import zipfile, sys
with zipfile.ZipFile(sys.argv[1], 'w') as z:
    z.writestr('nvidia/cu13/include/cublas_v2.h', '/* v2 */')
    z.writestr('nvidia/cu13/include/cublasLt.h', '/* lt */')
    z.writestr('nvidia/cu13/lib/libcublas.so.13', 'ELF-ish')
    z.writestr('nvidia/cu13/lib/libcublasLt.so.13', 'ELF-ish')
    z.writestr('nvidia_cublas-${CUBLAS_WHEEL_VERSION}.dist-info/licenses/License.txt', 'licence')
    z.writestr('nvidia_cublas-${CUBLAS_WHEEL_VERSION}.dist-info/RECORD', '')
`;
      const r = spawnSync('python3', ['-c', py, wheel], { encoding: 'utf8' });
      expect(r.status, r.stderr).to.equal(0);
      return wheel;
    }

    it('downloads the pinned wheel with pip, unpacks include/ and lib/ only, and reuses it after', async function () {
      const cache = path.join(dir, 'cache');
      const calls = path.join(dir, 'calls.log');
      const logs: string[] = [];
      const loc = await ensureCublas({
        cacheDir: cache,
        nvcc: null,
        envDir: '',
        python: fakePython(makeWheel(), calls),
        log: (l) => logs.push(l),
      });
      expect(loc.source).to.equal('cache');
      expect(loc.version).to.equal(CUBLAS_WHEEL_VERSION);
      const copy = cublasCacheDir(cache);
      expect(fs.readFileSync(path.join(copy, 'include', 'cublas_v2.h'), 'utf8')).to.equal('/* v2 */');
      expect(fs.readlinkSync(path.join(copy, 'lib', 'libcublas.so'))).to.equal('libcublas.so.13');
      expect(fs.readlinkSync(path.join(copy, 'lib', 'libcublasLt.so'))).to.equal('libcublasLt.so.13');
      expect(fs.readdirSync(copy).sort()).to.deep.equal(['CUBLAS.json', 'LICENSE.txt', 'include', 'lib']);
      expect(loc.cmakeFlags[0]).to.equal(`-DCUDA_cublas_LIBRARY=${path.join(copy, 'lib', 'libcublas.so')}`);
      const pipCall = fs.readFileSync(calls, 'utf8').split('\n')[0]!;
      expect(pipCall).to.contain(`-m pip download --no-deps --only-binary=:all:`).and.to.contain(`nvidia-cublas==${CUBLAS_WHEEL_VERSION}`);
      expect(logs.join('\n')).to.match(/downloading nvidia-cublas==/);
      expect(fs.existsSync(`${copy}.lock`), 'lock released').to.equal(false);

      // Installed: a second call neither runs pip nor needs it.
      const again = await ensureCublas({ cacheDir: cache, nvcc: null, envDir: '', python: path.join(dir, 'no-such-python') });
      expect(again).to.deep.equal(loc);
    });

    it('says so clearly when python or pip cannot fetch it, leaving no partial copy', async function () {
      const cache = path.join(dir, 'cache');
      const noPython = await ensureCublas({
        cacheDir: cache,
        nvcc: null,
        envDir: '',
        python: path.join(dir, 'no-such-python'),
        log: () => {},
      }).catch((e: unknown) => e);
      expect(noPython).to.be.instanceOf(CublasError);
      expect((noPython as CublasError).kind).to.equal('no_python');
      expect((noPython as Error).message).to.match(/cannot run .*no-such-python.*LLAMA_CUBLAS_DIR/);

      const offline = await ensureCublas({
        cacheDir: cache,
        nvcc: null,
        envDir: '',
        python: fakePython(undefined, path.join(dir, 'c.log')),
        log: () => {},
      }).catch((e: unknown) => e);
      expect(offline).to.be.instanceOf(CublasError);
      expect((offline as CublasError).kind).to.equal('pip_failed');
      expect((offline as Error).message)
        .to.contain(`pip download nvidia-cublas==${CUBLAS_WHEEL_VERSION} failed`)
        .and.to.contain('package index reachable');
      expect((offline as CublasError).output).to.contain('Could not find a version');
      expect(fs.existsSync(cublasCacheDir(cache))).to.equal(false);
      expect(fs.existsSync(`${cublasCacheDir(cache)}.partial`)).to.equal(false);
    });
  });
});

describe('llama.cpp CUDA build selection and flags', function () {
  const cublas: CublasLocation = {
    source: 'cache',
    includeDir: '/c/include',
    libDir: '/c/lib',
    version: CUBLAS_WHEEL_VERSION,
    cmakeFlags: [
      '-DCUDA_cublas_LIBRARY=/c/lib/libcublas.so',
      '-DCUDA_cublasLt_LIBRARY=/c/lib/libcublasLt.so',
      '-DCMAKE_CUDA_FLAGS=-I/c/include',
      '-DCMAKE_CXX_FLAGS=-I/c/include',
    ],
  };

  it('one flag list: CUDA adds the architecture, cuBLAS and (without libcuda) NO_VMM; CPU adds none of them', function () {
    const cuda = llamaCmakeFlags({ cuda: true, cudaArch: '90', cublas, driverLibrary: false });
    expect(cuda).to.include('-DGGML_CUDA=ON').and.include('-DCMAKE_CUDA_ARCHITECTURES=90').and.include('-DGGML_CUDA_NO_VMM=ON');
    for (const f of cublas.cmakeFlags) expect(cuda).to.include(f);
    expect(llamaCmakeFlags({ cuda: true, cudaArch: '90', cublas, driverLibrary: true })).to.not.include('-DGGML_CUDA_NO_VMM=ON');
    const cpu = llamaCmakeFlags({ cuda: false, cudaArch: '90', cublas, driverLibrary: false });
    expect(cpu).to.include('-DGGML_CUDA=OFF');
    expect(cpu.filter((f) => /CUDA_|cublas|NO_VMM/.test(f))).to.deep.equal([]);
    expect(sassArchs('90')).to.deep.equal([90]);
    expect(sassArchs('86;90a;90-virtual')).to.deep.equal([86, 90]);
  });

  it('automatic selection builds CUDA only with nvcc and a visible GPU', async function () {
    await withEnv({ LLAMA_CUDA: undefined }, () => {
      const r = resolveLlamaBuild({});
      const nvcc = hasNvcc();
      const gpu = hasVisibleGpu();
      console.log(
        `    this machine: nvcc ${nvcc ? findNvcc()!.version : 'absent'}, GPU ${gpu ? 'visible' : 'none'} -> ${r.variant} (${r.reason})`,
      );
      expect(r.cuda).to.equal(nvcc && gpu);
      expect(r.variant).to.equal(nvcc && gpu ? 'cuda-sm90' : 'cpu');
      if (nvcc && !gpu) expect(r.reason).to.match(/no visible GPU/);
      if (!nvcc) expect(r.reason).to.equal('no nvcc');
    });
    await withEnv({ LLAMA_CUDA: 'on' }, () => expect(resolveLlamaBuild({}).variant).to.equal('cuda-sm90'));
    await withEnv({ LLAMA_CUDA: 'off' }, () => expect(resolveLlamaBuild({ cudaArch: '90' }).variant).to.equal('cpu'));
  });

  it('without nvcc on PATH: automatic picks CPU, and an explicit CUDA request fails naming nvcc', async function () {
    // A PATH holding git (the build reads the llama.cpp bundle with it) but no nvcc.
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'no-nvcc-'));
    const cacheDir = path.join(bin, 'cache');
    try {
      fs.symlinkSync(whichOnPath('git')!, path.join(bin, 'git'));
      await withEnv({ PATH: bin, CUDACXX: undefined, LLAMA_CUDA: undefined }, async () => {
        expect(hasNvcc()).to.equal(false);
        const auto = resolveLlamaBuild({});
        expect(auto.variant).to.equal('cpu');
        expect(auto.reason).to.equal('no nvcc');
        expect(llamaBuildLocation({ cacheDir }).variant).to.equal('cpu');
        for (const attempt of [
          () => ensureLlamaServer({ cuda: true, cacheDir, log: () => {} }),
          () => withEnv({ LLAMA_CUDA: 'on' }, () => ensureLlamaServer({ cacheDir, log: () => {} })),
          () => runCudaCompileCheck({ cacheDir, log: () => {} }),
        ]) {
          const err = await attempt().then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(err).to.be.instanceOf(NvccNotFoundError);
          expect((err as Error).message).to.match(/CUDA build requested .* but nvcc was not found/);
        }
        expect(fs.existsSync(cacheDir) ? fs.readdirSync(cacheDir) : [], 'nothing cloned or built').to.deep.equal([]);
      });
    } finally {
      fs.rmSync(bin, { recursive: true, force: true });
    }
  });
});

describe('CUDA compile check (llama.cpp CUDA units with the build flags)', function () {
  const nvcc = findNvcc();

  if (!nvcc) {
    it('this machine has no nvcc: builds stay CPU and CUDA requests fail naming nvcc', async function () {
      await withEnv({ LLAMA_CUDA: undefined }, async () => {
        expect(resolveLlamaBuild({}).variant).to.equal('cpu');
        const err = await runCudaCompileCheck({ log: () => {} }).catch((e: unknown) => e);
        expect(err).to.be.instanceOf(NvccNotFoundError);
        expect((err as Error).message).to.contain('nvcc');
        const err2 = await ensureLlamaServer({ cuda: true, log: () => {} }).catch((e: unknown) => e);
        expect(err2).to.be.instanceOf(NvccNotFoundError);
      });
    });
    return;
  }

  let tmp: string;
  before(function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fatbin-test-'));
  });
  after(function () {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('the fat-binary reader tells host-only objects and other architectures apart', function () {
    this.timeout(300_000);
    const c = path.join(tmp, 'host.c');
    fs.writeFileSync(c, 'int host_only(int x) { return x + 1; }\n');
    const cc = spawnSync('cc', ['-c', c, '-o', path.join(tmp, 'host.o')], { encoding: 'utf8' });
    expect(cc.status, cc.stderr).to.equal(0);
    expect(readFatbinEntries(path.join(tmp, 'host.o'))).to.deep.equal([]);

    const cu = path.join(tmp, 'k.cu');
    fs.writeFileSync(cu, '__global__ void k(float *x) { x[threadIdx.x] *= 2.0f; }\n');
    const r = spawnSync(
      'nice',
      ['-n', '10', nvcc.path, '-c', cu, '-o', path.join(tmp, 'k.o'), '-gencode', 'arch=compute_80,code=[sm_80,compute_80]'],
      { encoding: 'utf8' },
    );
    expect(r.status, r.stderr).to.equal(0);
    const images = readFatbinEntries(path.join(tmp, 'k.o'));
    expect(images.filter((i) => i.kind === 'elf').map((i) => i.sm)).to.deep.equal(['sm_80']);
    expect(images.filter((i) => i.kind === 'ptx').map((i) => i.sm)).to.deep.equal(['sm_80']);
  });

  it('compiles the backend, MMQ, flash-attention and MMVQ units for sm_90 with the build flags, then recalls the result', async function () {
    this.timeout(20 * 60_000); // first run: cuBLAS download + clone + configure + compile
    const started = Date.now();
    const check = await runCudaCompileCheck({ log: (l) => console.log(`    [check:cuda] ${l}`) });
    console.log(describeCheck(check).replace(/^/gm, '    '));
    console.log(`    (${((Date.now() - started) / 1000).toFixed(1)} s in this test${check.cached ? ', recalled from CHECK.json' : ''})`);

    // The flags are the build's own: what ensureLlamaServer({ cuda: true }) would configure with.
    const build = await prepareLlamaCmake(resolveLlamaBuild({ cuda: true }), { cacheDir: path.dirname(check.dir), log: () => {} });
    expect(check.cmakeFlags).to.deep.equal(build.flags);
    expect(check.cmakeFlags).to.include('-DGGML_CUDA=ON').and.include('-DCMAKE_CUDA_ARCHITECTURES=90');
    expect(check.nvccVersion).to.equal(nvcc.version);

    expect(check.objects.map((o) => o.unit)).to.deep.equal([...CUDA_CHECK_UNITS]);
    expect(CUDA_CHECK_UNITS.some((u) => /mmq-instance/.test(u)) && CUDA_CHECK_UNITS.some((u) => /fattn/.test(u))).to.equal(true);
    const cuobjdump = findCuobjdump(nvcc.toolkitRoot);
    for (const o of check.objects) {
      expect(fs.statSync(o.object).size, o.object).to.be.greaterThan(10_000);
      // Read the object again rather than trusting CHECK.json.
      const sass = readFatbinEntries(o.object)
        .filter((i) => i.kind === 'elf')
        .map((i) => i.sm);
      expect(sass, `${o.unit}: SASS images`).to.include('sm_90');
      if (cuobjdump) expect(cuobjdumpElfArchs(cuobjdump, o.object), `cuobjdump --list-elf ${o.object}`).to.include('sm_90');
    }
    if (!cuobjdump) console.log('    (no cuobjdump in this toolkit: device code read from the .nv_fatbin sections)');

    const t = Date.now();
    const again = await runCudaCompileCheck({ log: () => {} });
    expect(again.cached).to.equal(true);
    expect(again.key).to.equal(check.key);
    expect(Date.now() - t, 'a recorded check is instant').to.be.below(30_000);
  });
});
