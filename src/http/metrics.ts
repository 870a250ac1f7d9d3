import client from 'prom-client';
import type Koa from 'koa';
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
    help: 'Instances stored, by ingest source',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });
  readonly bytesStored = new client.Counter({
    name: 'radiant_stored_bytes_total',
    help: 'Bytes stored, by ingest source',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });

  constructor() {
    client.collectDefaultMetrics({ register: this.registry });
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
