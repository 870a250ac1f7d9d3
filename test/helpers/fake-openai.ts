/** A local stand-in for an OpenAI-compatible chat endpoint (the remote MedGemma backend's tests). */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export async function fakeEndpoint(
  handler: http.RequestListener,
): Promise<{ url: string; close: () => Promise<void>; server: http.Server }> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    server,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/** A chat completion whose message content is `content`. */
export const okReply = (content: string) =>
  JSON.stringify({
    model: 'fake-medgemma',
    choices: [{ finish_reason: 'stop', message: { role: 'assistant', content } }],
    usage: { completion_tokens: 5 },
  });

/**
 * fetch's process-wide dispatcher (undici's Agent: 300 s headersTimeout and bodyTimeout) swapped
 * for one of the same class whose limits are `ms`: the 300 s limit, short enough for a test.
 * undici is no dependency of ours, hence the class taken from the default dispatcher. Returns the
 * function that puts the previous dispatcher back.
 */
export async function shortenFetchLimits(ms: number): Promise<() => void> {
  const key = Symbol.for('undici.globalDispatcher.1');
  const g = globalThis as unknown as Record<symbol, object | undefined>;
  if (!g[key]) await fetch('data:,').catch(() => undefined); // creates the default dispatcher
  const before = g[key];
  if (!before) throw new Error("fetch's global dispatcher not found (undici.globalDispatcher.1)");
  const Agent = before.constructor as new (o: { headersTimeout: number; bodyTimeout: number }) => object;
  g[key] = new Agent({ headersTimeout: ms, bodyTimeout: ms });
  return () => {
    g[key] = before;
  };
}
