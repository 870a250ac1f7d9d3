import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const cli = path.resolve('dist/src/cli.js');

/** `radiant serve` as a child process (a real process to SIGKILL, with its own umask), ready when it says so. */
export function startNodeProcess(dataDir: string, port: number, env: Record<string, string> = {}): Promise<ChildProcess> {
  const child = spawn(process.execPath, [cli, 'serve'], {
    env: { ...process.env, DATA_DIR: dataDir, DICOM_PORT: String(port), HTTP_PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`node did not start: ${out}`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('RadiantAI node ready')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => reject(new Error(`node exited (${code}): ${out}`)));
  });
}
