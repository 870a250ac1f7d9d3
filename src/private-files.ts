import fsp from 'node:fs/promises';
import type { Config } from './config.js';
import type { Logger } from './logger.js';

/**
 * The node's files hold patient data and password hashes: nobody but the node's own user may
 * read them. New files: the process umask (set by the CLI before anything is opened) makes them
 * 0600 and directories 0700. Existing ones (an install from before, or a restore): the roots are
 * tightened at start — a 0700 directory keeps everyone else out of all below it.
 */

export const PRIVATE_UMASK = 0o077;

/** Paths tightened at start: the data folder, the SQLite files, local storage's root and the spool. */
export function privatePaths(config: Config): string[] {
  const out = [config.dataDir, config.tempDir];
  if (config.database.client === 'sqlite' && config.database.filename !== ':memory:') {
    const f = config.database.filename;
    out.push(f, `${f}-wal`, `${f}-shm`);
  }
  if (config.storage.type === 'local') out.push(config.storage.root);
  return out;
}

/** chmod go-rwx on each existing path this user owns; returns the paths changed. */
export async function tightenModes(paths: string[], log: Logger): Promise<string[]> {
  const changed: string[] = [];
  const uid = process.getuid?.();
  for (const p of paths) {
    const st = await fsp.stat(p).catch(() => undefined);
    if (!st || (st.mode & 0o077) === 0 || (uid !== undefined && st.uid !== uid)) continue;
    await fsp.chmod(p, st.mode & 0o700);
    changed.push(p);
  }
  if (changed.length) log.warn({ paths: changed }, 'other users could read these: made private (owner only)');
  return changed;
}
