/** Runs a command, forwarding its output and keeping the tail for error messages. */
import { spawn } from 'node:child_process';

export interface CommandResult {
  /** Exit code, or null when killed by a signal or never started. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the command could not be started at all (ENOENT: not installed). */
  spawnError?: NodeJS.ErrnoException;
  /** The last 20,000 characters of stdout and stderr together. */
  tail: string;
}

export function runCommand(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; onOutput?: (s: string) => void } = {},
): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    let spawnError: NodeJS.ErrnoException | undefined;
    const take = (b: Buffer) => {
      const s = b.toString('utf8');
      tail = (tail + s).slice(-20000);
      opts.onOutput?.(s);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    let done = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (done) return;
      done = true;
      resolve({ code, signal, spawnError, tail });
    };
    // A command that cannot start emits 'error' and, depending on the Node version, no 'close'.
    child.on('error', (err) => {
      spawnError = err;
      finish(null, null);
    });
    child.on('close', finish);
  });
}

/** "exit 2" / "SIGKILL" / "not found" for messages. */
export function describeFailure(r: CommandResult): string {
  if (r.spawnError) return r.spawnError.code === 'ENOENT' ? 'command not found' : r.spawnError.message;
  return r.signal ?? `exit ${r.code}`;
}
