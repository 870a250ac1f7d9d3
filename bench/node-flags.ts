/**
 * The V8 flags the node runs with in production (`npm start` in package.json, NODE_OPTIONS in
 * the Dockerfiles; test/deploy-files.test.ts checks they agree with this list), so the benches
 * measure the node as deployed: a 2 MB semi-space (young generation 6 MB instead of V8's 48 MB)
 * took the peak of 16 C-STORE associations with a WADO-RS download loop from 526 to 378 MB RSS,
 * with the same round times and DIMSE/HTTP figures (session 7).
 */
export const SERVE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];

/** Node arguments of a bench's `radiant serve`: the production flags, then BENCH_NODE_ARGS. */
export function benchNodeArgs(): string[] {
  return [...SERVE_NODE_FLAGS, ...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean)];
}
