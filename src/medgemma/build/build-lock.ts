/**
 * A lock file per cache entry (created with O_EXCL, holding the owner's pid) so two processes
 * never build or install the same thing at once; a lock whose pid is dead is taken over.
 */
import fs from 'node:fs';

export class BuildLockTimeoutError extends Error {
  constructor(
    readonly lockPath: string,
    readonly ownerPid: number,
  ) {
    super(`timed out waiting for lock ${lockPath} (held by pid ${ownerPid})`);
    this.name = 'BuildLockTimeoutError';
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Waits for and takes the lock; resolves to its release function.
 * @param doing what the holder is doing, for the "waiting" line ("building llama-server")
 */
export async function acquireLock(lockPath: string, timeoutMs: number, log: (s: string) => void, doing: string): Promise<() => void> {
  const deadline = Date.now() + timeoutMs;
  let announced = false;
  for (;;) {
    try {
      const fd = fs.openSync(lockPath, 'wx');
      fs.writeSync(fd, `${process.pid}\n`);
      fs.closeSync(fd);
      return () => {
        try {
          fs.unlinkSync(lockPath);
        } catch {
          /* already gone */
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let owner = Number.NaN;
    try {
      owner = Number.parseInt(fs.readFileSync(lockPath, 'utf8').trim(), 10);
    } catch {
      continue; // released between our open and read
    }
    if (!Number.isInteger(owner) || !pidAlive(owner)) {
      // Stale lock (the holder died). Remove it only if it is still the same file.
      log(`removing stale lock ${lockPath} (pid ${Number.isNaN(owner) ? '?' : owner} is gone)`);
      try {
        fs.unlinkSync(lockPath);
      } catch {
        /* someone else took it over */
      }
      continue;
    }
    if (!announced) {
      log(`another process (pid ${owner}) is ${doing}; waiting for ${lockPath}`);
      announced = true;
    }
    if (Date.now() > deadline) throw new BuildLockTimeoutError(lockPath, owner);
    await new Promise((r) => setTimeout(r, 2000));
  }
}
