/**
 * Failed-login throttle: at most `max` failures per key (username, and separately address) in a
 * sliding window. In memory, per node: an attacker spreading over several nodes gets a few more
 * tries, which the slow password hash makes worthless.
 */
export class FailureLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(private readonly max: number, private readonly windowMs: number) {}

  /** Seconds until the key may try again, or 0; `factor` scales the allowance for this key. */
  retryAfter(key: string, factor = 1, now = Date.now()): number {
    const recent = this.recent(key, now);
    const allowed = this.max * factor;
    if (recent.length < allowed) return 0;
    return Math.ceil((recent[recent.length - allowed]! + this.windowMs - now) / 1000);
  }

  fail(key: string, now = Date.now()): void {
    const recent = this.recent(key, now);
    recent.push(now);
    this.failures.set(key, recent);
  }

  reset(key: string): void {
    this.failures.delete(key);
  }

  private recent(key: string, now: number): number[] {
    const list = (this.failures.get(key) ?? []).filter((t) => t > now - this.windowMs);
    if (list.length === 0) this.failures.delete(key);
    return list;
  }
}
