import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * llama-server children left behind by a node that was SIGKILLed (its exit handlers never ran):
 * each child is recorded with its parent's pid, and the next supervisor to start stops the ones
 * whose parent is gone. Linux: a child is only killed when /proc says it still runs the binary
 * that was recorded, so a recycled pid is never hit.
 */

const DIR = process.env.RADIANT_LLAMA_PIDS_DIR ?? path.join(os.tmpdir(), 'radiant-llama-children');

interface Record {
  parent: number;
  serverPath: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function runs(pid: number, serverPath: string): boolean {
  try {
    return fs.readlinkSync(`/proc/${pid}/exe`) === fs.realpathSync(serverPath);
  } catch {
    return false;
  }
}

export function recordChild(pid: number, serverPath: string): void {
  try {
    fs.mkdirSync(DIR, { recursive: true, mode: 0o700 });
    const rec: Record = { parent: process.pid, serverPath };
    fs.writeFileSync(path.join(DIR, `${pid}.json`), JSON.stringify(rec), { mode: 0o600 });
  } catch {
    // Best effort: without the record an orphan is only not reaped.
  }
}

export function forgetChild(pid: number): void {
  fs.rmSync(path.join(DIR, `${pid}.json`), { force: true });
}

/** Stops recorded llama-server children whose parent died; returns their pids. */
export function reapOrphans(): number[] {
  let names: string[];
  try {
    names = fs.readdirSync(DIR);
  } catch {
    return [];
  }
  const reaped: number[] = [];
  for (const name of names) {
    const pid = Number.parseInt(name, 10);
    if (!Number.isInteger(pid) || !name.endsWith('.json')) continue;
    let rec: Record;
    try {
      rec = JSON.parse(fs.readFileSync(path.join(DIR, name), 'utf8')) as Record;
    } catch {
      continue;
    }
    if (alive(rec.parent)) continue;
    if (alive(pid) && runs(pid, rec.serverPath)) {
      try {
        process.kill(pid, 'SIGKILL');
        reaped.push(pid);
      } catch {
        // gone in between
      }
    }
    forgetChild(pid);
  }
  return reaped;
}
