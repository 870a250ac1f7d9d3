import { spawn, type ChildProcess } from 'node:child_process';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { freePort, tempDir } from './node.js';

/**
 * Orthanc (Debian package `orthanc`, 1.10) as a real PACS peer on loopback ports: its own
 * storage in a temp directory, its REST API for driving C-FIND / C-MOVE / C-STORE against the
 * node, no authentication (loopback only); optionally its DICOMweb plugin, a DICOMweb client of the node.
 */
export interface TestOrthanc {
  aeTitle: string;
  dicomPort: number;
  httpPort: number;
  url: string;
  rest<T = unknown>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', p: string, body?: unknown): Promise<T>;
  stop(): Promise<void>;
}

export const ORTHANC_BIN = process.env.ORTHANC_PATH ?? '/usr/sbin/Orthanc';
/** Orthanc's DICOMweb plugin (Debian package `orthanc-dicomweb`): a DICOMweb client of the node. */
export const ORTHANC_DICOMWEB_PLUGIN = process.env.ORTHANC_DICOMWEB_PLUGIN ?? '/usr/share/orthanc/plugins/libOrthancDicomWeb.so';

export interface OrthancOptions {
  aeTitle?: string;
  /** Load the DICOMweb plugin (its servers are then added with PUT /dicom-web/servers/{id}). */
  dicomWeb?: boolean;
}

export async function startOrthanc(
  peers: Record<string, { aeTitle: string; port: number }>,
  options: OrthancOptions = {},
): Promise<TestOrthanc> {
  const aeTitle = options.aeTitle ?? 'ORTHANC';
  const dir = await tempDir('orthanc');
  const [dicomPort, httpPort] = [await freePort(), await freePort()];
  const config = {
    Name: 'radiant-test-orthanc',
    StorageDirectory: path.join(dir, 'db'),
    IndexDirectory: path.join(dir, 'db'),
    HttpPort: httpPort,
    DicomPort: dicomPort,
    DicomAet: aeTitle,
    RemoteAccessAllowed: false,
    AuthenticationEnabled: false,
    DicomCheckCalledAet: false,
    DicomAlwaysAllowEcho: true,
    DicomAlwaysAllowStore: true,
    DicomAlwaysAllowFind: true,
    DicomAlwaysAllowMove: true,
    DicomCheckModalityHost: false,
    DicomModalities: Object.fromEntries(Object.entries(peers).map(([name, p]) => [name, [p.aeTitle, '127.0.0.1', p.port]])),
    Plugins: options.dicomWeb ? [ORTHANC_DICOMWEB_PLUGIN] : [],
    ...(options.dicomWeb ? { DicomWeb: { Enable: true, Root: '/dicom-web/' } } : {}),
    StableAge: 1,
    ConcurrentJobs: 2,
    HttpTimeout: 60,
    DicomScuTimeout: 30,
  };
  const cfgPath = path.join(dir, 'orthanc.json');
  await fsp.writeFile(cfgPath, JSON.stringify(config));
  const proc: ChildProcess = spawn(ORTHANC_BIN, [cfgPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr?.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-4000);
  });
  const url = `http://127.0.0.1:${httpPort}`;
  const rest = async <T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', p: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${url}${p}`, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`Orthanc ${method} ${p}: HTTP ${res.status} ${text.slice(0, 300)}`);
    return (text ? JSON.parse(text) : undefined) as T;
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await rest('GET', '/system');
      break;
    } catch (err) {
      if (proc.exitCode !== null || Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`Orthanc did not start: ${String(err)}\n${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return {
    aeTitle,
    dicomPort,
    httpPort,
    url,
    rest,
    async stop() {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (proc.exitCode === null) proc.kill('SIGKILL');
      }
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
}
