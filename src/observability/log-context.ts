import { AsyncLocalStorage } from 'node:async_hooks';
import type { EventEmitter } from 'node:events';

/**
 * What every log line of one HTTP request or one DICOM association carries: its request ID or
 * association ID. Kept in AsyncLocalStorage so that the services a request calls (ingest, query,
 * jobs it queues) log with it without being handed a logger; src/logger.ts mixes it in.
 */
export interface LogContext {
  requestId?: string;
  assocId?: string;
}

const storage = new AsyncLocalStorage<LogContext>();

/** The context of the code running now (undefined outside a request or association). */
export function currentLogContext(): LogContext | undefined {
  return storage.getStore();
}

export function runWithLogContext<T>(ctx: LogContext, fn: () => T): T {
  return storage.run(ctx, fn);
}

/**
 * Every event the emitter emits runs in `ctx`, and so does what its listeners start. For a socket
 * whose listeners a library adds itself (dcmjs-dimse's PDU parser): they cannot be wrapped one by one.
 */
export function emitInLogContext(emitter: EventEmitter, ctx: LogContext): void {
  const emit = emitter.emit.bind(emitter);
  emitter.emit = (event: string | symbol, ...args: unknown[]) => storage.run(ctx, () => emit(event, ...args));
}
