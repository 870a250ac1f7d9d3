import { context, trace } from '@opentelemetry/api';
import type { Config } from '../config.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { enableTraceContext } from './tracing.js';

/** What `startTraceExport` started: shutdown() flushes the spans still batched and unregisters the provider. */
export interface TraceExport {
  shutdown(): Promise<void>;
}

/**
 * The OTLP/HTTP trace export (OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT):
 * a tracer provider with a batch span processor, so a slow or absent collector costs the
 * request nothing (spans wait in a bounded buffer and are dropped when it is full). The exporter
 * sends OTLP JSON. Undefined when no endpoint is configured: tracing.ts's spans stay no-ops.
 */
export async function startTraceExport(
  config: Pick<Config, 'otel'>,
  log: Logger,
  role: 'serve' | 'worker',
): Promise<TraceExport | undefined> {
  const url = config.otel.tracesUrl;
  if (!url) return undefined;
  // The SDK and exporter are loaded only when spans are exported (most nodes never do).
  const [{ OTLPTraceExporter }, { Resource }, { BasicTracerProvider, BatchSpanProcessor }] = await Promise.all([
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/sdk-trace-base'),
  ]);
  const resource = new Resource({ 'service.name': config.otel.serviceName, 'radiant.role': role });
  const processor = new BatchSpanProcessor(new OTLPTraceExporter({ url }), { scheduledDelayMillis: 1000 });
  const provider = new BasicTracerProvider({ resource, spanProcessors: [processor] });
  enableTraceContext();
  trace.setGlobalTracerProvider(provider);
  log.info({ url: redactedUrl(url), serviceName: config.otel.serviceName }, 'OpenTelemetry trace export on');
  return {
    async shutdown() {
      try {
        await provider.shutdown();
      } catch (err) {
        log.warn({ err: errorMessage(err) }, 'OpenTelemetry spans not flushed at shutdown');
      }
      trace.disable();
      context.disable();
    },
  };
}

/** A collector URL may carry credentials in its user info: never logged. */
function redactedUrl(url: string): string {
  const u = new URL(url);
  u.username = '';
  u.password = '';
  return u.toString();
}
