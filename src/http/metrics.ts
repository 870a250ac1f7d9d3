import client from 'prom-client';
import type Koa from 'koa';
import { countJobsByKindAndStatus } from '../catalog/jobs.js';
import { poolFigures, type Db } from '../db/connection.js';
import { nodeMetrics } from '../observability/node-metrics.js';
import { routeOf, type AppState } from './state.js';

/** Prometheus metrics for /metrics. Labels are route templates, never UIDs. */
export class Metrics {
  readonly registry = new client.Registry();
  readonly httpRequests = new client.Counter({
    name: 'radiant_http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new client.Histogram({
    name: 'radiant_http_request_duration_seconds',
    help: 'HTTP request latency',
    labelNames: ['method', 'route'] as const,
    buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly instancesStored = new client.Counter({
    name: 'radiant_instances_stored_total',
    help: 'Instances stored, by ingest source (the door: dimse, stow, upload, import, ...)',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });
  readonly bytesStored = new client.Counter({
    name: 'radiant_stored_bytes_total',
    help: 'Bytes stored, by ingest source',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });

  constructor(db?: Db) {
    client.collectDefaultMetrics({ register: this.registry });
    for (const m of Object.values(nodeMetrics) as client.Metric[]) this.registry.registerMetric(m);
    if (!db) return;
    // Read on scrape: the queue is the database's (every node and worker shares it), not this process's.
    new client.Gauge({
      name: 'radiant_jobs',
      help: 'Jobs in the queue by kind and status (the whole cluster: read from the database on scrape)',
      labelNames: ['kind', 'status'] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const r of await countJobsByKindAndStatus(db)) this.set({ kind: r.kind, status: r.status }, r.count);
      },
    });
    new client.Gauge({
      name: 'radiant_db_pool_connections',
      help: 'Database connection pool: connections in use, free, and acquires waiting (state=used|free|pending)',
      labelNames: ['state'] as const,
      registers: [this.registry],
      collect() {
        const p = poolFigures(db);
        this.set({ state: 'used' }, p.used);
        this.set({ state: 'free' }, p.free);
        this.set({ state: 'pending' }, p.pending);
      },
    });
  }

  middleware(): Koa.Middleware<AppState> {
    return async (ctx, next) => {
      const end = this.httpDuration.startTimer();
      try {
        await next();
      } finally {
        const route = routeOf(ctx);
        end({ method: ctx.method, route });
        this.httpRequests.inc({ method: ctx.method, route, status: String(ctx.status) });
      }
    };
  }
}
