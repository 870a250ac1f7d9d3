import { backoffDelay } from '../backoff.js';

/**
 * The node's one rate limiter: token buckets by key (TokenBuckets), and on top of them the
 * failed-login throttle (FailureLimiter).
 *
 * A bucket holds up to `capacity` tokens (the burst) and gains `capacity / windowMs` per
 * millisecond; each request (or failure) takes one. The request limits of the API and DICOMweb
 * (src/http/rate-limits.ts) key it by user and by address and answer 429 while a bucket is empty.
 *
 * Failed logins: after `max` failures of a key within the window the key is locked out, for the
 * window the first time and twice as long each time after (backoff, up to maxLockMs), until a
 * success resets it. The route keys it by (user, address), so a stranger who knows a username
 * cannot lock its owner out from elsewhere, and by address with a larger allowance, against one
 * address spraying many usernames. In memory, per node: an attacker spreading over several nodes
 * gets a few more tries, which the slow password hash makes worthless (and each node's request
 * limits bound them too).
 */

interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date. */
  at: number;
}

/** Buckets kept before full ones are swept (many keys, e.g. a spray of addresses, must not grow memory forever). */
const SWEEP_ABOVE = 10_000;

export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();

  /** `capacity` tokens per `windowMs`, all of them available at once (the burst). */
  constructor(
    private readonly capacity: number,
    private readonly windowMs: number,
  ) {}

  private refilled(key: string, capacity: number, now: number): Bucket {
    const b = this.buckets.get(key);
    if (!b) return { tokens: capacity, at: now };
    const gained = ((now - b.at) * capacity) / this.windowMs;
    return { tokens: Math.min(capacity, b.tokens + Math.max(0, gained)), at: now };
  }

  /**
   * Take one token; `factor` scales the key's capacity and refill. Returns 0 when taken, else the
   * seconds until one is there (the Retry-After), taking nothing.
   */
  take(key: string, factor = 1, now = Date.now()): number {
    const capacity = this.capacity * factor;
    const b = this.refilled(key, capacity, now);
    if (b.tokens < 1) {
      this.buckets.set(key, b);
      return Math.max(1, Math.ceil(((1 - b.tokens) * this.windowMs) / capacity / 1000));
    }
    b.tokens -= 1;
    this.buckets.set(key, b);
    if (this.buckets.size > SWEEP_ABOVE) this.sweep(now);
    return 0;
  }

  /** Tokens left (fractions included) after refilling: 0 means the next take() is refused. */
  left(key: string, factor = 1, now = Date.now()): number {
    return this.refilled(key, this.capacity * factor, now).tokens;
  }

  /** A full bucket again. */
  reset(key: string): void {
    this.buckets.delete(key);
  }

  /** A bucket refilled to capacity is the same as none; factor-scaled ones are swept once a window old. */
  private sweep(now: number): void {
    for (const [k, b] of this.buckets) if (b.at <= now - this.windowMs) this.buckets.delete(k);
  }
}

interface Lockout {
  lockedUntil: number;
  /** Lockouts so far: the next one lasts windowMs * 2^lockouts. */
  lockouts: number;
}

export class FailureLimiter {
  /** `max` failures per window: a bucket of `max` tokens that refills over the window. */
  private readonly failures: TokenBuckets;
  private readonly lockouts = new Map<string, Lockout>();

  constructor(
    max: number,
    private readonly windowMs: number,
    private readonly maxLockMs = 24 * 3600 * 1000,
  ) {
    this.failures = new TokenBuckets(max, windowMs);
  }

  /** Seconds until the key may try again, or 0. */
  retryAfter(key: string, now = Date.now()): number {
    const e = this.lockouts.get(key);
    return e && e.lockedUntil > now ? Math.ceil((e.lockedUntil - now) / 1000) : 0;
  }

  /**
   * Count a failure; `factor` scales the allowance for this key. Returns the lockout in seconds
   * when this failure started one (for the audit trail), else 0.
   */
  fail(key: string, factor = 1, now = Date.now()): number {
    this.failures.take(key, factor, now);
    if (this.failures.left(key, factor, now) >= 1) return 0;
    const e = this.lockouts.get(key) ?? { lockedUntil: 0, lockouts: 0 };
    const ms = backoffDelay({ baseMs: this.windowMs, maxMs: this.maxLockMs }, e.lockouts + 1);
    e.lockedUntil = now + ms;
    e.lockouts++;
    this.lockouts.set(key, e);
    // The allowance starts afresh after the lockout.
    this.failures.reset(key);
    if (this.lockouts.size > SWEEP_ABOVE) {
      for (const [k, l] of this.lockouts) if (l.lockedUntil <= now - this.windowMs) this.lockouts.delete(k);
    }
    return Math.ceil(ms / 1000);
  }

  reset(key: string): void {
    this.failures.reset(key);
    this.lockouts.delete(key);
  }
}
