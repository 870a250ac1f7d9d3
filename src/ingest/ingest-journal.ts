import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

/**
 * The window between "blob stored" and "indexed": an instance's blob is put into storage first
 * and indexed afterwards, so a process killed in between leaves a complete blob that no index
 * row names (never acknowledged to anyone, but never found or deleted either). Each ingest marks
 * that window with a small file, removed once the index transaction has committed (or the blob
 * was removed again); at the next start, markers left by dead processes name exactly the blobs
 * to check (orphan-sweep.ts). No scan of the store, and two file operations per instance.
 *
 * Markers are not fsynced: they cover a killed process, whose page-cache writes survive; after
 * a power loss a blob can still outlive its marker.
 */

export interface JournalEntry {
  storageKey: string;
  sopInstanceUid: string;
}

export interface PendingEntry extends JournalEntry {
  marker: string;
  pid: number;
}

export class IngestJournal {
  constructor(readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  /** Marks an instance whose blob is about to be stored; returns the marker to end it with. */
  async begin(entry: JournalEntry): Promise<string> {
    const marker = path.join(this.dir, `${process.pid}-${randomUUID()}.json`);
    await fsp.writeFile(marker, JSON.stringify(entry), { mode: 0o600 });
    return marker;
  }

  /** The instance is indexed, or its blob is gone again: nothing left to sweep. */
  async end(marker: string): Promise<void> {
    await fsp.rm(marker, { force: true });
  }

  /** Markers left by processes that are no longer running (this process's pid counts as dead: a restart reuses it). */
  async leftovers(): Promise<PendingEntry[]> {
    const out: PendingEntry[] = [];
    for (const name of await fsp.readdir(this.dir).catch(() => [] as string[])) {
      const m = /^(\d+)-[0-9a-f-]+\.json$/.exec(name);
      if (!m) continue;
      const pid = Number(m[1]);
      if (pid !== process.pid && isRunning(pid)) continue;
      const marker = path.join(this.dir, name);
      const entry = await readEntry(marker);
      if (entry) out.push({ ...entry, marker, pid });
      else await this.end(marker); // cut short while being written: its blob was not stored yet
    }
    return out;
  }
}

async function readEntry(marker: string): Promise<JournalEntry | undefined> {
  try {
    const v = JSON.parse(await fsp.readFile(marker, 'utf8')) as Partial<JournalEntry>;
    return typeof v.storageKey === 'string' && typeof v.sopInstanceUid === 'string'
      ? { storageKey: v.storageKey, sopInstanceUid: v.sopInstanceUid }
      : undefined;
  } catch {
    return undefined;
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One journal beside the spool directories (the spool itself is emptied at start), shared by the
 * processes of one node (serve, worker, import): markers carry their writer's pid.
 */
export function journalDirFor(tempDir: string): string {
  return path.join(path.dirname(tempDir), 'ingest-journal');
}
