import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Router from '@koa/router';
import Koa from 'koa';
import { errorMiddleware } from '../../src/http/errors.js';
import { resolveSecretKey } from '../../src/auth/secret.js';
import { TokenVerifier } from '../../src/auth/tokens.js';
import { findUserById } from '../../src/auth/users.js';
import { createSecurity } from '../../src/http/security.js';
import type { RouteDeps } from '../../src/http/deps.js';
import type { AppState } from '../../src/http/state.js';
import { registerBulkdataRoutes } from '../../dicomweb/bulkdata.js';
import { registerFrameRoutes } from '../../dicomweb/frames.js';
import { wadoUriRoutes } from '../../dicomweb/wado-uri.js';
import { Renderer } from '../../src/dicom/render/renderer.js';
import { MultipartRelatedReader, parseMediaType } from '../../dicomweb/multipart.js';
import { Readable } from 'node:stream';
import { baseUrl } from './http.js';
import type { TestNode } from './node.js';

/**
 * The base URL serving frames / bulkdata / WADO-URI for a test node. When the node's server
 * registers them (dicomweb/routes.ts, src/http/server.ts) that is the node's own URL; otherwise
 * a second Koa app on a free port mounts the same routers over the node's parts (same index,
 * storage, audit log, token secret), behind the same error envelope.
 */
export async function ensurePixelRoutes(node: TestNode): Promise<{ url: string; close(): Promise<void> }> {
  const probe = await fetch(`${baseUrl(node)}/wado?requestType=WADO`);
  await probe.arrayBuffer();
  if (probe.status !== 404) return { url: baseUrl(node), close: async () => undefined };
  const verifier = new TokenVerifier(resolveSecretKey(node.config), async (claims) => {
    const user = await findUserById(node.db, Number(claims.sub));
    return user?.active ? { userId: user.id, username: user.username, role: user.role } : undefined;
  });
  const security = createSecurity({ verifier, audit: node.audit, disabled: node.config.auth.disabled });
  const deps: RouteDeps = {
    config: node.config,
    log: node.log,
    db: node.db,
    storage: node.storage,
    ingestor: node.ingestor,
    audit: node.audit,
    transcoder: node.transcoder,
    forwardingRules: node.forwardingRules,
    forwarder: node.forwarder,
    engine: node.engine,
    analysis: node.analysis,
    queue: node.queue,
    events: node.events,
    secretKey: resolveSecretKey(node.config),
    security,
    metrics: node.http.metrics,
    renderer: new Renderer({ ...node.config.render, maxFramePixels: node.config.maxFramePixels }),
  };
  const r = new Router<AppState>({ prefix: '/dicom-web' });
  registerFrameRoutes(r, deps);
  registerBulkdataRoutes(r, deps);
  const app = new Koa<AppState>();
  app.silent = true;
  app.use(async (ctx, next) => {
    ctx.state.requestId = randomUUID();
    await next();
  });
  app.use(errorMiddleware(node.log));
  for (const router of [r, wadoUriRoutes(deps)]) app.use(router.routes()).use(router.allowedMethods());
  const server = http.createServer(app.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
      await deps.renderer.close();
    },
  };
}

export interface Part {
  headers: Record<string, string>;
  body: Buffer;
}

/** A multipart/related response, part by part. */
export async function readParts(res: Response): Promise<Part[]> {
  const mt = parseMediaType(res.headers.get('content-type') ?? undefined);
  if (!mt || mt.type !== 'multipart/related' || !mt.params.boundary)
    throw new Error(`not multipart/related: ${res.headers.get('content-type')}`);
  const reader = new MultipartRelatedReader(Readable.fromWeb(res.body! as import('node:stream/web').ReadableStream), {
    boundary: mt.params.boundary,
  });
  const out: Part[] = [];
  for (let p = await reader.next(); p; p = await reader.next()) {
    const chunks: Buffer[] = [];
    for await (const c of p.body) chunks.push(c as Buffer);
    out.push({ headers: p.headers, body: Buffer.concat(chunks) });
  }
  return out;
}
