import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import cors from '@koa/cors';
import { FirstAdminBootstrap } from '../auth/bootstrap.js';
import { FailureLimiter } from '../auth/rate-limit.js';
import { TokenVerifier } from '../auth/tokens.js';
import { findActiveUser } from '../auth/users.js';
import { errorMiddleware } from './errors.js';
import { externalAddress } from './external-url.js';
import { Metrics } from './metrics.js';
import { runWithLogContext } from '../observability/log-context.js';
import { SpanKind, SpanStatusCode, startSpan, withSpan } from '../observability/tracing.js';
import { createSecurity } from './security.js';
import { RequestLimits } from './request-limits.js';
import { securityHeaders } from './security-headers.js';
import { routeOf, type AppRouter, type AppState } from './state.js';
import { healthRoutes } from './routes/health.js';
import { authRoutes } from './routes/auth.js';
import { auditRoutes } from './routes/audit.js';
import { apiRoutes } from './routes/api.js';
import { dicomwebRoutes } from '../../dicomweb/routes.js';
import { viewerRoutes } from './routes/viewer.js';
import { nodesRoutes } from './routes/nodes.js';
import { fhirRoutes } from './routes/fhir.js';
import { wadoUriRoutes } from '../../dicomweb/wado-uri.js';
import { UpsChannels } from '../../dicomweb/ups-channel.js';
import { webUiRoutes } from './routes/web-ui.js';
import type { HttpDeps, RouteDeps } from './deps.js';

export interface HttpApp {
  app: Koa<AppState>;
  metrics: Metrics;
  /** The routers mounted on the app (the OpenAPI test walks their routes). */
  routers: readonly AppRouter[];
  listen(port: number): Promise<number>;
  close(): Promise<void>;
}

export function createHttpApp(deps: HttpDeps): HttpApp {
  const { config, log } = deps;
  const metrics = new Metrics(deps.db);
  const verifier = new TokenVerifier(
    deps.secretKey,
    async (claims) => {
      const user = await findActiveUser(deps.db, Number(claims.sub));
      return user && { userId: user.id, username: user.username, role: user.role };
    },
    config.auth.tokenExpirySeconds,
  );
  const limits = new RequestLimits(config.http.rateLimit, config.http.trustProxy, config.http.maxUploadBytes);
  const security = createSecurity({
    verifier,
    audit: deps.audit,
    disabled: config.auth.disabled,
    limits,
  });
  // The UPS-RS event channel (WebSocket upgrades of /dicom-web/subscribers/{AETitle}), same token check.
  const channels = new UpsChannels({
    db: deps.db,
    audit: deps.audit,
    log,
    authenticate: (req) =>
      config.auth.disabled
        ? Promise.resolve({ ok: true as const, principal: { userId: 0, username: 'auth-disabled', role: 'admin' as const } })
        : verifier.verify(req),
  });
  const limiter = new FailureLimiter(config.auth.loginMaxAttempts, config.auth.loginWindowSeconds * 1000);
  const routeDeps: RouteDeps = { ...deps, security, metrics };
  const bootstrap = new FirstAdminBootstrap(config.auth.bootstrap, config.auth.bootstrapToken);

  const app = new Koa<AppState>({ proxy: false });
  app.silent = true;

  app.use(async (ctx, next) => {
    const incoming = ctx.get('x-request-id');
    ctx.state.requestId = /^[\w.-]{1,64}$/.test(incoming) ? incoming : randomUUID();
    ctx.set('X-Request-Id', ctx.state.requestId);
    const external = externalAddress(ctx.headers, { protocol: ctx.protocol, host: ctx.host }, config.http.trustProxy);
    ctx.state.baseUrl = external.base;
    ctx.state.basePath = external.prefix;
    const started = process.hrtime.bigint();
    // Every log line of the request (and of the services it calls) carries its requestId.
    // The span is named for the route once routing has matched it (the path can hold UIDs).
    const span = startSpan(
      `HTTP ${ctx.method}`,
      { 'http.request.method': ctx.method, 'radiant.request_id': ctx.state.requestId },
      { kind: SpanKind.SERVER },
    );
    await runWithLogContext({ requestId: ctx.state.requestId }, async () => {
      try {
        await withSpan(span, next);
      } finally {
        const route = routeOf(ctx);
        span.updateName(`HTTP ${ctx.method} ${route}`);
        span.setAttributes({ 'http.route': route, 'http.response.status_code': ctx.status });
        if (ctx.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
        // Route templates and user names only: the path itself can hold UIDs.
        log.info(
          {
            method: ctx.method,
            route: routeOf(ctx),
            status: ctx.status,
            user: ctx.state.principal?.username,
            ms: Number(process.hrtime.bigint() - started) / 1e6,
          },
          'http',
        );
      }
    });
  });
  app.use(metrics.middleware());
  app.use(
    cors({
      origin: (ctx) => {
        const origin = ctx.get('Origin');
        if (config.http.corsOrigins.includes('*')) return '*';
        return config.http.corsOrigins.includes(origin) ? origin : '';
      },
      allowHeaders: ['Authorization', 'Content-Type', 'Accept', 'X-Request-Id'],
      exposeHeaders: ['Warning', 'Content-Location', 'X-Request-Id', 'Retry-After'],
      maxAge: 600,
    }),
  );
  app.use(errorMiddleware(log));
  app.use(securityHeaders({ hstsMaxAgeSeconds: config.http.hstsMaxAgeSeconds }));
  app.use(limits.middleware());

  const routers: AppRouter[] = [
    healthRoutes({ db: deps.db, storage: deps.storage, engine: deps.engine, metrics, log }),
    authRoutes({
      db: deps.db,
      audit: deps.audit,
      security,
      verifier,
      limiter,
      secretKey: deps.secretKey,
      tokenExpirySeconds: config.auth.tokenExpirySeconds,
      authDisabled: config.auth.disabled,
      bootstrap,
    }),
    auditRoutes({ audit: deps.audit, security, source: { sourceId: config.dicom.aeTitle, siteId: config.institutionName } }),
    apiRoutes(routeDeps),
    nodesRoutes(routeDeps),
    fhirRoutes(routeDeps),
    dicomwebRoutes(routeDeps),
    viewerRoutes(routeDeps),
    wadoUriRoutes(routeDeps),
    // Last: its fallback answers only paths no other router owns.
    webUiRoutes(log),
  ];
  for (const r of routers) app.use(r.routes()).use(r.allowedMethods());

  deps.ingestor.on('instance-stored', (e) => {
    metrics.instancesStored.inc({ source: e.source });
    metrics.bytesStored.inc({ source: e.source }, e.sizeBytes);
  });

  let server: http.Server | https.Server | undefined;
  return {
    app,
    metrics,
    routers,
    async listen(port: number) {
      const h = config.http;
      const handler = app.callback();
      const options: http.ServerOptions = {
        // Slow senders are cut off: headers first (slowloris), then the whole request, whose
        // default is long enough for a 2 GiB STOW-RS over a slow link (README, Configuration).
        headersTimeout: h.headersTimeoutMs,
        requestTimeout: h.requestTimeoutMs,
        keepAliveTimeout: h.keepAliveTimeoutMs,
        // Node enforces the two timeouts above on this tick (30 s by default): a short headers
        // timeout needs a finer one to mean what it says.
        connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(h.headersTimeoutMs / 4))),
      };
      // HTTPS directly when given a certificate (HTTP_TLS_CERT/KEY), else plain HTTP (behind a TLS proxy).
      server =
        h.tls.cert && h.tls.key
          ? https.createServer(
              { ...options, cert: fs.readFileSync(h.tls.cert), key: fs.readFileSync(h.tls.key), handshakeTimeout: h.headersTimeoutMs },
              handler,
            )
          : http.createServer(options, handler);
      // Node answers 417 to any Expect other than 100-continue unless this event is handled.
      // RFC 9110 §10.1.1 defines only 100-continue and lets a server refuse unknown expectations,
      // but an empty field (some clients send `Expect:` to turn 100-continue off) asks nothing.
      server.on('checkExpectation', (req: http.IncomingMessage, res: http.ServerResponse) => {
        if (
          String(req.headers.expect ?? '')
            .replaceAll(',', '')
            .trim() === ''
        ) {
          handler(req, res);
          return;
        }
        res.writeHead(417, { 'Content-Type': 'text/plain', Connection: 'close' }).end('Expectation Failed\n');
      });
      server.on('upgrade', (req, socket, head) => {
        if (!channels.handleUpgrade(req, socket, head))
          socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      });
      // Connections past the cap are closed on arrival; those already open go on being served.
      server.maxConnections = h.maxConnections;
      await new Promise<void>((resolve, reject) => {
        server!.once('error', reject);
        server!.listen(port, () => resolve());
      });
      await bootstrap.announce(deps.db, log);
      return (server.address() as AddressInfo).port;
    },
    async close() {
      const s = server;
      server = undefined;
      channels.close();
      if (s) {
        s.closeAllConnections();
        await new Promise<void>((resolve) => s.close(() => resolve()));
      }
    },
  };
}
