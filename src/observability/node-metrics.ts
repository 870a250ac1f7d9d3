import client from 'prom-client';
import { StorageError } from '../errors.js';
import type { BlobStorage } from '../../storage/types.js';

/**
 * The node's own Prometheus series that the layers below HTTP feed (jobs, the engine, storage,
 * DIMSE). They belong to the process, in no registry of their own: src/http/metrics.ts registers
 * them into the registry /metrics answers. Labels are kinds and statuses, never UIDs or names.
 */
export const nodeMetrics = {
  jobDuration: new client.Histogram({
    name: 'radiant_job_duration_seconds',
    help: 'Job run time from claim to result, by kind and outcome (succeeded, failed, aborted)',
    labelNames: ['kind', 'outcome'] as const,
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 900],
    registers: [],
  }),
  modelDuration: new client.Histogram({
    name: 'radiant_model_request_duration_seconds',
    help: 'Model (llama-server or remote engine) request latency, by backend and outcome',
    labelNames: ['backend', 'outcome'] as const,
    buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
    registers: [],
  }),
  storageErrors: new client.Counter({
    name: 'radiant_storage_errors_total',
    help: 'Blob storage operations that failed (a read of a missing object is not counted), by backend and operation',
    labelNames: ['backend', 'op'] as const,
    registers: [],
  }),
  dimseOperations: new client.Counter({
    name: 'radiant_dimse_operations_total',
    help: 'DIMSE requests answered, by operation (C-STORE, C-FIND, ...) and final status (hex)',
    labelNames: ['operation', 'status'] as const,
    registers: [],
  }),
};

/** The final status of a DIMSE operation, counted. */
export function countDimse(operation: string, status: number): void {
  nodeMetrics.dimseOperations.inc({ operation, status: `0x${status.toString(16).padStart(4, '0')}` });
}

const STORAGE_OPS = ['put', 'putFile', 'get', 'readRange', 'stat', 'exists', 'delete', 'check'] as const;

/**
 * Counts the failures of a storage back end's operations in place (the object stays the same
 * instance: callers test `instanceof LocalStorage`). A missing object is an answer, not an error.
 */
export function countStorageErrors<S extends BlobStorage>(storage: S, backend: string): S {
  const target = storage as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  for (const op of STORAGE_OPS) {
    const original = target[op];
    if (typeof original !== 'function') continue;
    target[op] = async (...args: unknown[]) => {
      try {
        return await original.apply(storage, args);
      } catch (err) {
        if (!(err instanceof StorageError && err.kind === 'not-found')) nodeMetrics.storageErrors.inc({ backend, op });
        throw err;
      }
    };
  }
  return storage;
}
