import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { envSchema, loadConfig } from '../src/config.js';
import { llamaBuildLocation } from '../src/medgemma/build/build-llama.js';
import { fetchedOhifDist } from '../src/tools/fetch-ohif.js';
import { SERVE_NODE_FLAGS } from '../bench/node-flags.js';

/**
 * The deployment files (Dockerfile, Dockerfile.cuda, docker-compose.yml, deploy/nginx, the Helm
 * chart deploy/helm/radiant) cannot be built or installed here (no registry, no docker compose, no
 * helm): this parses them and checks them against the code — ports, probe paths, environment
 * names (the config schema), volumes, non-root users and read-only root filesystems.
 */

const ROOT = process.cwd();
const read = (p: string) => fs.readFileSync(path.join(ROOT, p), 'utf8');

/** Environment variables read outside src/config.ts (the llama-server build lookup); each must be read in src/. */
const OUTSIDE_SCHEMA = ['LLAMA_CACHE_DIR', 'LLAMA_CUDA', 'LLAMA_CUDA_ARCH'];
/** Read by Node.js itself, not the node's code: the V8 flags the images run with (bench/node-flags.ts). */
const RUNTIME_NAMES = ['NODE_OPTIONS'];
const SCHEMA_NAMES = new Set(Object.keys(envSchema.shape));
const DEFAULTS = envSchema.parse({});

function srcFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? srcFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function expectKnownNames(names: Iterable<string>, where: string): void {
  for (const n of names)
    expect(
      SCHEMA_NAMES.has(n) || OUTSIDE_SCHEMA.includes(n) || RUNTIME_NAMES.includes(n),
      `${where}: ${n} is not in src/config.ts`,
    ).to.equal(true);
}

/** The node's own routes, from the source: what health checks and probes may call. */
function healthPaths(): string[] {
  return [...read('src/http/routes/health.ts').matchAll(/r\.get\('([^']+)'/g)].map((m) => m[1]!);
}

// ---- Dockerfiles ----

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name?: string;
  steps: Instruction[];
}

function parseDockerfile(text: string): { args: Record<string, string>; stages: Stage[] } {
  const lines = text
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const line of lines) {
    const m = /^([A-Z]+)\s+([\s\S]*)$/.exec(line);
    expect(m, line).to.not.equal(null);
    const [, op, rest] = m!;
    if (op === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest!)!;
      stages.push({ from: f[1]!.replace(/\$\{(\w+)\}/g, (_, a: string) => args[a] ?? `\${${a}}`), name: f[2], steps: [] });
    } else if (op === 'ARG' && stages.length === 0) {
      const [k, v] = rest!.split('=');
      args[k!] = v ?? '';
    } else if (stages.length) stages.at(-1)!.steps.push({ op: op!, args: rest! });
  }
  return { args, stages };
}

/** ENV of a stage (both `K=V K2=V2` forms with backslash continuations joined). */
function envOf(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const s of stage.steps.filter((x) => x.op === 'ENV')) for (const m of s.args.matchAll(/(\w+)=(\S+)/g)) env[m[1]!] = m[2]!;
  return env;
}

const steps = (stage: Stage, op: string) => stage.steps.filter((s) => s.op === op).map((s) => s.args);

function checkRuntimeStage(file: string, runtime: Stage): Record<string, string> {
  const env = envOf(runtime);
  expectKnownNames(Object.keys(env), file);
  const user = steps(runtime, 'USER').at(-1);
  expect(user, `${file}: USER`).to.be.a('string');
  expect(user!.split(':')[0], `${file}: runs as root`).to.not.match(/^(root|0)$/);
  expect(Number(user!.split(':')[0])).to.be.greaterThan(999);
  // The ports and data folder the image declares are the ones the node uses.
  expect(env.DATA_DIR).to.equal('/data');
  expect(JSON.parse(steps(runtime, 'VOLUME')[0]!)).to.deep.equal([env.DATA_DIR]);
  expect(Number(env.HTTP_PORT)).to.equal(DEFAULTS.HTTP_PORT);
  expect(Number(env.DICOM_PORT)).to.equal(DEFAULTS.DICOM_PORT);
  expect(steps(runtime, 'EXPOSE')[0]!.split(/\s+/).map(Number)).to.have.members([DEFAULTS.HTTP_PORT, DEFAULTS.DICOM_PORT]);
  const health = steps(runtime, 'HEALTHCHECK')[0]!;
  expect(health).to.include("path:'/healthz'").and.include('process.env.HTTP_PORT||8042');
  expect(healthPaths()).to.include('/healthz');
  const entry = JSON.parse(steps(runtime, 'ENTRYPOINT')[0]!) as string[];
  expect(entry).to.deep.equal(['node', 'dist/src/cli.js']);
  // The V8 flags the benches measure the node with (bench/node-flags.ts), as `npm start` has them.
  expect(env.NODE_OPTIONS, `${file}: NODE_OPTIONS`).to.equal(SERVE_NODE_FLAGS.join(' '));
  expect(fs.existsSync(path.join(ROOT, 'dist/src/cli.js'))).to.equal(true);
  // Only the volume and /tmp are written: the OHIF copy is baked in where the code looks for it.
  expect(steps(runtime, 'COPY')).to.include('--from=build /app/.cache/ohif ./.cache/ohif');
  expect(fetchedOhifDist('/app').startsWith('/app/.cache/ohif/')).to.equal(true);
  // Each stage's config must load as the image sets it (with what compose/Helm add for online mode).
  return env;
}

describe('Deployment files: Dockerfile and Dockerfile.cuda', () => {
  it('Dockerfile: multi-stage, npm ci + build + OHIF in the build stage, Node 20 slim runtime as a non-root user', () => {
    const { args, stages } = parseDockerfile(read('Dockerfile'));
    expect(stages.map((s) => s.name)).to.deep.equal(['build', 'runtime']);
    expect(args.NODE_IMAGE).to.match(/^node:20-[a-z]+-slim$/);
    expect(stages[1]!.from).to.equal(args.NODE_IMAGE);
    const run = steps(stages[0]!, 'RUN').join('\n');
    expect(run).to.include('npm ci').and.include('npm run build').and.include('fetch-ohif.js --strict').and.include('npm prune --omit=dev');
    for (const c of steps(stages[0]!, 'COPY').filter((c) => !c.startsWith('.'))) {
      for (const src of c.split(/\s+/).slice(0, -1)) expect(fs.existsSync(path.join(ROOT, src)), src).to.equal(true);
    }
    const env = checkRuntimeStage('Dockerfile', stages[1]!);
    expect(JSON.parse(steps(stages[1]!, 'CMD')[0]!)).to.deep.equal(['serve']);
    expect(() => loadConfig(env, '/app')).to.not.throw();
  });

  it('Dockerfile.cuda: builds llama-server for CUDA into LLAMA_CACHE_DIR, where the runtime (MEDGEMMA_DEVICE=cuda) finds it', () => {
    const { args, stages } = parseDockerfile(read('Dockerfile.cuda'));
    expect(stages.map((s) => s.name)).to.deep.equal(['node', 'build', 'runtime']);
    expect(stages[1]!.from).to.match(/^nvidia\/cuda:[\d.]+-devel-/);
    expect(stages[2]!.from).to.match(/^nvidia\/cuda:[\d.]+-runtime-/);
    const buildEnv = envOf(stages[1]!);
    expectKnownNames(Object.keys(buildEnv), 'Dockerfile.cuda build stage');
    expect(buildEnv.LLAMA_CUDA).to.equal('on');
    expect(steps(stages[1]!, 'RUN').join('\n')).to.include('npm ci').and.include('node dist/src/medgemma/build/build-llama.js --cuda');
    const env = checkRuntimeStage('Dockerfile.cuda', stages[2]!);
    expect(env.MEDGEMMA_DEVICE).to.equal('cuda');
    expect(env.LLAMA_CACHE_DIR).to.equal(buildEnv.LLAMA_CACHE_DIR);
    expect(steps(stages[2]!, 'COPY')).to.include(`--from=build ${buildEnv.LLAMA_CACHE_DIR} ${env.LLAMA_CACHE_DIR}`);
    // The same variant directory at build and at run time (the arch comes from one ARG).
    expect(env.LLAMA_CUDA_ARCH).to.equal('${LLAMA_CUDA_ARCH}');
    const where = llamaBuildLocation({ cuda: true, cudaArch: args.LLAMA_CUDA_ARCH, cacheDir: env.LLAMA_CACHE_DIR });
    expect(where.variant).to.equal(`cuda-sm${args.LLAMA_CUDA_ARCH}`);
    expect(where.dir.startsWith(`${env.LLAMA_CACHE_DIR}/`)).to.equal(true);
    for (const n of OUTSIDE_SCHEMA) {
      expect(
        srcFiles(path.join(ROOT, 'src')).some((f) => fs.readFileSync(f, 'utf8').includes(`process.env.${n}`)),
        n,
      ).to.equal(true);
    }
  });

  it('npm start runs the node with the V8 flags the images set and the benches measure', () => {
    const start = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.start!;
    expect(start).to.include(`node ${SERVE_NODE_FLAGS.join(' ')} dist/src/cli.js serve`);
  });

  it('.dockerignore keeps node_modules, data, models and certificates out of the build context', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim());
    expect(ignored).to.include.members(['.git', 'node_modules', 'dist', 'data', '**/*.gguf', 'deploy/certs', '.env']);
  });
});

// ---- docker-compose.yml ----

interface ComposeService {
  image?: string;
  command?: string[];
  user?: string;
  read_only?: boolean;
  tmpfs?: string[];
  ports?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  healthcheck?: { test?: string[]; disable?: boolean };
  deploy?: { resources?: { reservations?: { devices?: Array<{ driver: string; capabilities: string[] }> } } };
}

/** ${VAR:?msg} and ${VAR:-default} as compose would substitute them, with test values for the secrets. */
function substitute(value: string): string {
  const given: Record<string, string> = {
    POSTGRES_PASSWORD: 'pg-secret',
    MINIO_ROOT_USER: 'minio',
    MINIO_ROOT_PASSWORD: 'minio-secret',
    SECRET_KEY: 'x'.repeat(40),
  };
  return value.replace(/\$\{(\w+)(?::([?-])([^}]*))?\}/g, (_, name: string, kind?: string, rest?: string) =>
    name in given ? given[name]! : kind === '-' ? (rest ?? '') : '',
  );
}

describe('Deployment files: docker-compose.yml and the reverse proxy', () => {
  const compose = YAML.parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, ComposeService> };
  const s = compose.services;
  const radiant = Object.entries(s).filter(([, v]) => v.image?.startsWith('radiant'));

  it('has PostgreSQL, MinIO, a migration, two serve replicas, one GPU worker and a TLS proxy', () => {
    expect(Object.keys(s)).to.include.members(['postgres', 'minio', 'minio-bucket', 'migrate', 'node1', 'node2', 'worker', 'proxy']);
    expect(s.node1!.command).to.deep.equal(['serve']);
    expect(s.node2!.command).to.deep.equal(['serve']);
    expect(s.migrate!.command).to.deep.equal(['migrate']);
    expect(s.worker!.command).to.deep.equal(['worker']);
    expect(s.worker!.image).to.match(/^radiant-cuda/);
    const gpu = s.worker!.deploy?.resources?.reservations?.devices ?? [];
    expect(gpu.some((d) => d.driver === 'nvidia' && d.capabilities.includes('gpu'))).to.equal(true);
    expect(s.worker!.healthcheck?.disable, 'radiant worker has no HTTP listener').to.equal(true);
  });

  it('runs every RadiantAI container as non-root on a read-only root filesystem, writing only to its volume and /tmp', () => {
    expect(radiant.map(([k]) => k)).to.have.members(['migrate', 'node1', 'node2', 'worker']);
    for (const [name, svc] of radiant) {
      expect(svc.user, name).to.equal('10001:10001');
      expect(svc.read_only, name).to.equal(true);
      expect(svc.tmpfs, name).to.include('/tmp');
      const env = svc.environment!;
      const mounts = (svc.volumes ?? []).map((v) => substitute(v).split(':')[1]);
      if (name !== 'migrate') expect(mounts, name).to.include(env.DATA_DIR);
      if (name !== 'migrate') expect(env.TEMP_PATH!.startsWith(`${env.DATA_DIR}/`), name).to.equal(true);
      if (env.MEDGEMMA_MODEL_PATH) expect(mounts.some((m) => env.MEDGEMMA_MODEL_PATH!.startsWith(`${m}/`))).to.equal(true);
    }
  });

  it('gives the containers only environment names the config schema knows, and a configuration that loads', () => {
    for (const [name, svc] of radiant) {
      const env = Object.fromEntries(Object.entries(svc.environment!).map(([k, v]) => [k, substitute(String(v))]));
      expectKnownNames(Object.keys(env), `docker-compose.yml ${name}`);
      const config = loadConfig(env, '/app');
      expect(config.mode, name).to.equal('online');
      expect(config.http.trustProxy, name).to.equal(true);
      expect(config.storage.type, name).to.equal('s3');
      if (name !== 'migrate' && name !== 'worker') {
        expect(svc.healthcheck!.test!.join(' ')).to.include(`http://127.0.0.1:${config.httpPort}/healthz`);
        expect(config.jobs.inServe, 'the worker runs the jobs').to.equal(false);
      }
    }
    expect(
      loadConfig(Object.fromEntries(Object.entries(s.worker!.environment!).map(([k, v]) => [k, substitute(String(v))])), '/app').medgemma,
    ).to.include({ backend: 'llama-server', device: 'cuda' });
  });

  it('nginx terminates TLS for both nodes on their HTTP port, says https to them, and balances DICOM to their DICOM port', () => {
    const proxy = s.proxy!;
    const conf = proxy.volumes!.find((v) => v.endsWith(':/etc/nginx/nginx.conf:ro'))!.split(':')[0]!;
    const text = read(conf);
    const env = s.node1!.environment!;
    for (const n of ['node1', 'node2']) {
      expect(text).to.include(`server ${n}:${env.HTTP_PORT}`);
      expect(text).to.include(`server ${n}:${env.DICOM_PORT};`);
    }
    expect(text).to.match(/listen 443 ssl;/);
    expect(text).to.include('proxy_set_header X-Forwarded-Proto https;');
    expect(text).to.include('proxy_set_header X-Forwarded-For $remote_addr;');
    expect(text).to.include('client_max_body_size 0;');
    expect(proxy.ports).to.include.members(['443:443', `${env.DICOM_PORT}:${env.DICOM_PORT}`]);
  });
});

// ---- Helm chart ----

type Values = Record<string, unknown>;

/**
 * The subset of Helm templating the chart keeps to (so that this test can render it): comments,
 * define/include … | nindent N from _helpers.tpl, and {{ .Values.x.y }}, {{ .Release.Name }}, with
 * `| quote`. Anything else throws: the chart must stay checkable.
 */
function renderChart(dir: string, values: Values, release = 'rad'): Map<string, string> {
  const lookup = (expr: string): unknown => {
    if (expr === '.Release.Name') return release;
    if (!expr.startsWith('.Values.')) throw new Error(`template expression not supported by the test renderer: ${expr}`);
    let v: unknown = values;
    for (const k of expr.slice('.Values.'.length).split('.')) v = (v as Values | undefined)?.[k];
    if (v === undefined) throw new Error(`${expr} is not in values.yaml`);
    return v;
  };
  const defines = new Map<string, string>();
  const strip = (t: string) => t.replace(/\{\{-?\s*\/\*[\s\S]*?\*\/\s*-?\}\}\n?/g, '');
  const helpers = strip(fs.readFileSync(path.join(dir, 'templates/_helpers.tpl'), 'utf8'));
  for (const m of helpers.matchAll(/\{\{-?\s*define\s+"([^"]+)"\s*-?\}\}([\s\S]*?)\{\{-?\s*end\s*-?\}\}/g))
    defines.set(m[1]!, m[2]!.trim());
  const expand = (t: string): string =>
    t
      .replace(/\s*\{\{-\s*include\s+"([^"]+)"\s+\.\s*\|\s*nindent\s+(\d+)\s*\}\}/g, (_, name: string, n: string) => {
        const body = defines.get(name);
        if (body === undefined) throw new Error(`no define "${name}"`);
        return `\n${expand(body)
          .split('\n')
          .map((l) => ' '.repeat(Number(n)) + l)
          .join('\n')}`;
      })
      .replace(/\{\{\s*([.\w]+)\s*(\|\s*quote\s*)?\}\}/g, (_, expr: string, quote?: string) => {
        const v = lookup(expr);
        return quote ? JSON.stringify(String(v)) : String(v);
      });
  const out = new Map<string, string>();
  for (const f of fs.readdirSync(path.join(dir, 'templates')).filter((f) => f.endsWith('.yaml'))) {
    const text = expand(strip(fs.readFileSync(path.join(dir, 'templates', f), 'utf8')));
    if (text.includes('{{')) throw new Error(`${f}: template syntax the test renderer does not know: ${/\{\{[^}]*\}\}/.exec(text)?.[0]}`);
    out.set(f, text);
  }
  return out;
}

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}
interface Container {
  name: string;
  image: string;
  args: string[];
  env: EnvVar[];
  ports?: Array<{ name: string; containerPort: number }>;
  securityContext: Record<string, unknown>;
  readinessProbe?: { httpGet: { path: string; port: string } };
  livenessProbe?: { httpGet: { path: string; port: string } };
  resources?: { limits?: Record<string, unknown> };
  volumeMounts: Array<{ name: string; mountPath: string }>;
}
interface PodSpec {
  containers: Container[];
  volumes: Array<{ name: string; emptyDir?: object; persistentVolumeClaim?: object }>;
}
interface Manifest {
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
  spec: { template: { spec: PodSpec } } & { ports?: Array<{ name: string; port: number; targetPort: string }> };
}

describe('Deployment files: Helm chart deploy/helm/radiant', () => {
  const dir = path.join(ROOT, 'deploy/helm/radiant');
  const values = YAML.parse(fs.readFileSync(path.join(dir, 'values.yaml'), 'utf8')) as Values;
  const docs = [...renderChart(dir, values).entries()].map(([file, text]) => ({ file, doc: YAML.parse(text) as Manifest }));
  const byKind = (kind: string, suffix: string) => docs.find((d) => d.doc.kind === kind && d.doc.metadata.name.endsWith(suffix))!.doc;
  const container = (m: Manifest) => m.spec.template.spec.containers[0]!;
  const secretName = (values.secrets as { name: string }).name;

  /** The container's environment as the node would read it, with test values for the Secret's keys. */
  function envFor(c: Container): Record<string, string> {
    const secret: Record<string, string> = {
      DATABASE_URL: 'postgres://radiant:pw@db:5432/radiant',
      SECRET_KEY: 'y'.repeat(40),
      S3_ACCESS_KEY: 'ak',
      S3_SECRET_KEY: 'sk',
    };
    return Object.fromEntries(
      c.env.map((e) => {
        if (e.valueFrom) {
          expect(e.valueFrom.secretKeyRef!.name, e.name).to.equal(secretName);
          return [e.name, secret[e.valueFrom.secretKeyRef!.key]!];
        }
        return [e.name, e.value!];
      }),
    );
  }

  it('renders a node Deployment, a GPU worker Deployment, a Service and a migration hook Job', () => {
    expect(docs.map((d) => `${d.doc.kind}/${d.doc.metadata.name}`)).to.have.members([
      'Deployment/rad-node',
      'Deployment/rad-worker',
      'Service/rad-node',
      'Job/rad-migrate',
    ]);
    expect(container(byKind('Deployment', '-node')).args).to.deep.equal(['serve']);
    expect(container(byKind('Deployment', '-worker')).args).to.deep.equal(['worker']);
    expect(container(byKind('Deployment', '-worker')).resources!.limits!['nvidia.com/gpu']).to.equal(1);
    expect(container(byKind('Deployment', '-worker')).image).to.match(/^radiant-cuda:/);
    const job = byKind('Job', '-migrate');
    expect(container(job).args).to.deep.equal(['migrate']);
    expect(job.metadata.annotations!['helm.sh/hook']!.split(',')).to.include.members(['pre-install', 'pre-upgrade']);
  });

  it('probes /readyz and /healthz on the port the node listens on; the Service exposes HTTP and DICOM', () => {
    const node = container(byKind('Deployment', '-node'));
    const env = envFor(node);
    const config = loadConfig(env, '/app');
    const http = node.ports!.find((p) => p.name === 'http')!;
    expect(http.containerPort).to.equal(config.httpPort);
    expect(node.ports!.find((p) => p.name === 'dicom')!.containerPort).to.equal(config.dicom.port);
    expect(node.readinessProbe!.httpGet).to.deep.equal({ path: '/readyz', port: 'http' });
    expect(node.livenessProbe!.httpGet).to.deep.equal({ path: '/healthz', port: 'http' });
    expect(healthPaths()).to.include.members(['/readyz', '/healthz']);
    const svc = byKind('Service', '-node');
    expect(svc.spec.ports!.map((p) => [p.port, p.targetPort])).to.deep.equal([
      [config.httpPort, 'http'],
      [config.dicom.port, 'dicom'],
    ]);
  });

  it('runs every container non-root with a read-only root filesystem, secrets from the Secret, known env names that load', () => {
    for (const { file, doc } of docs.filter((d) => d.doc.kind !== 'Service')) {
      const c = container(doc);
      expect(c.securityContext, file).to.include({ runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
      expect(Number(c.securityContext.runAsUser)).to.be.greaterThan(0);
      const env = envFor(c);
      expectKnownNames(Object.keys(env), file);
      for (const k of ['DATABASE_URL', 'SECRET_KEY', 'S3_ACCESS_KEY', 'S3_SECRET_KEY']) {
        expect(c.env.find((e) => e.name === k)?.valueFrom?.secretKeyRef, `${file}: ${k} from the Secret`).to.be.an('object');
      }
      const config = loadConfig(env, '/app');
      expect(config.mode).to.equal('online');
      const mounts = c.volumeMounts.map((m) => m.mountPath);
      expect(mounts, file).to.include.members([env.DATA_DIR!, '/tmp']);
      const volumes = new Set(doc.spec.template.spec.volumes.map((v) => v.name));
      for (const m of c.volumeMounts) expect(volumes.has(m.name), `${file}: volume ${m.name}`).to.equal(true);
    }
    const worker = envFor(container(byKind('Deployment', '-worker')));
    expect(loadConfig(worker, '/app').medgemma).to.include({ backend: 'llama-server', device: 'cuda' });
  });
});
