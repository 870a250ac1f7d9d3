/**
 * The one back-off policy of the node: a delay that starts at baseMs and grows by `factor`
 * (default 2) with each further attempt, capped at maxMs. Used by the job queue, forwarding,
 * the remote MedGemma client, llama-server restarts and login lockouts, each with its own numbers.
 * No jitter: every caller retries one peer or one row, not a herd.
 */
export interface Backoff {
  /** Delay after the first failed attempt. */
  baseMs: number;
  /** Upper bound of the delay. */
  maxMs: number;
  /** Growth per attempt (default 2: doubling). */
  factor?: number;
}

/** The delay before retry number `attempt` (1 = after the first failure). */
export function backoffDelay(b: Backoff, attempt: number): number {
  return Math.min(b.maxMs, b.baseMs * (b.factor ?? 2) ** Math.max(0, attempt - 1));
}
