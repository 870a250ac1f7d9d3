import { spawn } from 'node:child_process';

export interface ToolResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout + stderr, for assertions on what a peer printed. */
  output: string;
}

/** Run a DCMTK (or any) tool as a real peer; never throws on a non-zero exit. */
export function runTool(cmd: string, args: string[], timeoutMs = 120_000, env?: NodeJS.ProcessEnv): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} could not be started (is DCMTK installed? .ci/run installs it): ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, output: stdout + stderr });
    });
  });
}

export function storescu(port: number, files: string[], extra: string[] = [], aec = 'RADIANT'): Promise<ToolResult> {
  return runTool('storescu', ['-aet', 'TESTSCU', '-aec', aec, ...extra, '127.0.0.1', String(port), ...files]);
}

export function echoscu(port: number, aec = 'RADIANT'): Promise<ToolResult> {
  return runTool('echoscu', ['-aet', 'TESTSCU', '-aec', aec, '127.0.0.1', String(port)]);
}

/** movescu (debug output) moving a whole study from the node at `port` to the AE `destination`. */
export function movescuStudy(port: number, studyInstanceUid: string, destination: string): Promise<ToolResult> {
  const keys = ['-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${studyInstanceUid}`];
  return runTool('movescu', ['-d', '-S', '-aet', 'MOVESCU', '-aec', 'RADIANT', '-aem', destination, ...keys, '127.0.0.1', String(port)]);
}

/** getscu (verbose) retrieving a whole study from the node at `port` into `outDir`. */
export function getscuStudy(port: number, studyInstanceUid: string, outDir: string): Promise<ToolResult> {
  const keys = ['-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${studyInstanceUid}`];
  return runTool('getscu', ['-v', '-S', '-aet', 'GETSCU', '-aec', 'RADIANT', '-od', outDir, ...keys, '127.0.0.1', String(port)]);
}

/** storescu's option that proposes (first) the transfer syntax a file is encoded in. */
export function storescuOptionFor(transferSyntaxName: string): string[] | undefined {
  const map: Array<[RegExp, string[]]> = [
    [/^Explicit VR Little Endian$/, ['-xe']],
    [/^Implicit VR Little Endian$/, ['-xi']],
    [/^Explicit VR Big Endian$/, ['-xb']],
    [/^Deflated Explicit VR Little Endian$/, ['-xd']],
    [/^JPEG Baseline/, ['-xy']],
    [/^JPEG Extended/, ['-xx']],
    [/^JPEG Lossless, Non-Hierarchical, First-Order/, ['-xs']],
    [/^JPEG 2000 Image Compression \(Lossless Only\)$/, ['-xv']],
    [/^JPEG 2000 Image Compression$/, ['-xw']],
    [/^JPEG-LS Lossless/, ['-xt']],
    [/^JPEG-LS Lossy/, ['-xu']],
    [/^RLE Lossless$/, ['-xr']],
  ];
  return map.find(([re]) => re.test(transferSyntaxName))?.[1];
}

export interface ReferenceScp {
  port: number;
  dir: string;
  stop(): Promise<void>;
}

/** DCMTK's storescp on a port, writing what it receives into `dir`; ready when it answers C-ECHO. */
export async function startStorescp(port: number, dir: string, opts: { aeTitle?: string; args?: string[] } = {}): Promise<ReferenceScp> {
  const { spawn } = await import('node:child_process');
  const ae = opts.aeTitle ?? 'REFSCP';
  const child = spawn('storescp', [...(opts.args ?? []), '-od', dir, '-aet', ae, String(port)], { stdio: 'ignore' });
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = await runTool('echoscu', ['-aec', ae, '127.0.0.1', String(port)], 5_000);
    if (r.code === 0) break;
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error('storescp did not start');
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  return {
    port,
    dir,
    async stop() {
      const exited = new Promise((res) => child.once('exit', res));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * DCMTK's storescp in bit-preserving mode: a reference receiver that writes each data set
 * exactly as it came off the wire, so "what was sent" can be compared byte for byte.
 */
export function startReferenceStorescp(port: number, dir: string): Promise<ReferenceScp> {
  return startStorescp(port, dir, { args: ['-B'] });
}
