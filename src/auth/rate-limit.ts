import { backoffDelay } from '../backoff.js';

/**
 * Failed-login throttle: after `max` failures of a key within the window the key is locked out,
 * for the window the first time and twice as long each time after (backoff, up to maxLockMs),
 * until a success resets it. The route keys it by (user, address), so a stranger who knows a
 * username cannot lock its owner out from elsewhere, and by address with a larger allowance,
 * against one address spraying many usernames. In memory, per node: an attacker spreading over
 * several nodes gets a few more tries, which the slow password hash makes worthless.
 */

interface Entry {
  failures: number[];
  lockedUntil: number;
  /** Lockouts so far: the next one lasts windowMs * 2^lockouts. */
  lockouts: number;
  last: number;
}

/** Entries kept before idle ones are swept (spraying many keys must not grow memory forever). */
const SWEEP_ABOVE = 10_000;

export class FailureLimiter {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly max: number,
    private readonly windowMs: number,
    private readonly maxLockMs = 24 * 3600 * 1000,
  ) {}

  /** Seconds until the key may try again, or 0. */
  retryAfter(key: string, now = Date.now()): number {
    const e = this.entries.get(key);
    return e && e.lockedUntil > now ? Math.ceil((e.lockedUntil - now) / 1000) : 0;
  }

  /**
   * Count a failure; `factor` scales the allowance for this key. Returns the lockout in seconds
   * when this failure started one (for the audit trail), else 0.
   */
  fail(key: string, factor = 1, now = Date.now()): number {
    const e = this.entries.get(key) ?? { failures: [], lockedUntil: 0, lockouts: 0, last: now };
    e.failures = e.failures.filter((t) => t > now - this.windowMs);
    e.failures.push(now);
    e.last = now;
    let locked = 0;
    if (e.failures.length >= this.max * factor) {
      const ms = backoffDelay({ baseMs: this.windowMs, maxMs: this.maxLockMs }, e.lockouts + 1);
      e.lockedUntil = now + ms;
      e.lockouts++;
      e.failures = [];
      locked = Math.ceil(ms / 1000);
    }
    this.entries.set(key, e);
    if (this.entries.size > SWEEP_ABOVE) this.sweep(now);
    return locked;
  }

  reset(key: string): void {
    this.entries.delete(key);
  }

  /** Forget keys neither locked nor failing lately (their backoff history goes with them). */
  private sweep(now: number): void {
    for (const [k, e] of this.entries) {
      if (e.lockedUntil <= now && e.last <= now - this.windowMs) this.entries.delete(k);
    }
  }
}
