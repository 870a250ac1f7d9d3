import http from 'node:http';
import type net from 'node:net';
import type { Db } from '../db/connection.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { Metrics } from './metrics.js';

/** The listener of `radiant worker` (WORKER_HTTP_PORT). */
export interface WorkerHttp {
  port: number;
  close(): Promise<void>;
}

/**
 * `radiant worker`'s small HTTP listener: GET /metrics (the process's job and model figures, the
 * pool and the cluster's queue depths, the same series as serve's) and GET /healthz, nothing else:
 * no API, no authentication to configure, like serve's own /metrics and /healthz (restrict the
 * port at the network). Its counters are this process's, which only it can answer for.
 */
export async function startWorkerHttp(db: Db, log: Logger, port: number): Promise<WorkerHttp> {
  const metrics = new Metrics(db);
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('Method Not Allowed\n');
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok', role: 'worker' }));
      return;
    }
    if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (err: unknown) => {
          log.warn({ err: errorMessage(err) }, 'worker metrics not collected');
          res.writeHead(503, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
        },
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found\n');
  });
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => resolve());
  });
  const bound = (server.address() as net.AddressInfo).port;
  log.info({ port: bound }, 'worker HTTP listener started');
  return {
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
