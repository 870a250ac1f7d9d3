import { AsyncLocalStorage } from 'node:async_hooks';
import {
  context,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type ContextManager,
  type Span,
} from '@opentelemetry/api';
import { errorMessage } from '../errors.js';
import { runWithLogContext } from './log-context.js';

/**
 * OpenTelemetry spans of the node: HTTP requests, DICOM associations and their operations,
 * database queries and model calls. Written against @opentelemetry/api only: without a tracer
 * provider registered (the default) every call is a no-op costing next to nothing. A provider
 * with an exporter (an OTLP one, from OTEL_EXPORTER_OTLP_ENDPOINT) makes them real; the async
 * context they nest by is this module's (AsyncLocalStorage), registered with it.
 * Attributes are kinds, routes, statuses and UIDs' absence: never names, paths with UIDs or SQL values.
 */

export { SpanKind, SpanStatusCode };
export type { Span };

const tracer = () => trace.getTracer('radiant');

/** The OTel context carried across awaits (what @opentelemetry/context-async-hooks does, in 20 lines). */
class AlsContextManager implements ContextManager {
  private readonly als = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.als.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return this.als.run(ctx, () => fn.call(thisArg, ...args) as ReturnType<F>);
  }
  bind<T>(ctx: Context, target: T): T {
    if (typeof target !== 'function') return target;
    const fn = target as (...args: unknown[]) => unknown;
    return ((...args: unknown[]) => this.with(ctx, fn, undefined, ...args)) as T;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.als.disable();
    return this;
  }
}

/**
 * Runs fn outside the request or association that happens to be current (no requestId/assocId in
 * its log lines, its spans roots): for background work a request only woke, such as a job.
 */
export function detached<T>(fn: () => T): T {
  return runWithLogContext({}, () => context.with(ROOT_CONTEXT, fn));
}

/** Registers the node's async context for spans; called by whoever registers a tracer provider. */
export function enableTraceContext(): void {
  context.setGlobalContextManager(new AlsContextManager().enable());
}

/** A span started under the active one (or under `parent`), not made active. */
export function startSpan(name: string, attributes: Attributes, opts: { kind?: SpanKind; parent?: Span } = {}): Span {
  const ctx = opts.parent ? trace.setSpan(context.active(), opts.parent) : context.active();
  return tracer().startSpan(name, { kind: opts.kind ?? SpanKind.INTERNAL, attributes }, ctx);
}

/** Runs fn with `span` active (the spans it starts are its children). */
export function withSpan<T>(span: Span, fn: () => T): T {
  return context.with(trace.setSpan(context.active(), span), fn);
}

/** Ends the span as failed with the error's message. */
export function endWithError(span: Span, err: unknown): void {
  span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(err) });
  span.end();
}

/** Runs fn in a new active span, ended (as failed when fn throws) when fn settles. */
export async function traced<T>(
  name: string,
  attributes: Attributes,
  fn: (span: Span) => Promise<T>,
  kind = SpanKind.INTERNAL,
): Promise<T> {
  const span = startSpan(name, attributes, { kind });
  try {
    const result = await withSpan(span, () => fn(span));
    span.end();
    return result;
  } catch (err) {
    endWithError(span, err);
    throw err;
  }
}
