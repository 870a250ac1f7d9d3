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
