/**
 * Domain errors of the node. A RadiantError carries a domain code (`kind`: what went wrong, in
 * the node's terms) and no protocol status: each edge maps the kind with its one table, so
 * C-STORE, STOW-RS and the REST API answer the same failure the same way. The HTTP table is in
 * src/http/errors.ts, the DIMSE tables in dimse/error-status.ts. A protocol may still answer a
 * finer `reason` its own way (a frame past the end is 404 in WADO-RS, 400 in WADO-URI), but every
 * error that can reach an edge (an HTTP or DIMSE response, a job failure recorded for a user, the
 * CLI) is a RadiantError, so an unforeseen path still maps by kind.
 *
 * Plain Error on purpose (an edge's own answer, or translated where it is caught):
 * - HttpError (src/http/errors.ts): the HTTP edge's own answer, already a status and a code.
 * - JobAbortedError (src/jobs/errors.ts): the reason on a job's AbortSignal; the runner records the
 *   job as cancelled/requeued from it, never as a failure.
 * - EngineError (src/medgemma/engine.ts): the engine's own failure vocabulary (its `kind`: timeout,
 *   bad_output, …) for the analysis job, which records it as a JobError (analysis/pipeline.ts); the CLI prints it.
 * - StructureError (src/dicom/structure.ts): the structure walk's refusal; header.ts turns it into
 *   the parse result's 'corrupt DICOM' error, which ingest answers as an 'unparseable' RadiantError.
 * - Bail (analysis/pixels-native.ts), TimeoutReason (medgemma/call-control.ts): control flow.
 * - The llama.cpp build toolchain's errors (src/medgemma/build/): a build step's, printed by its
 *   own program; at the engine's start the llama-server backend reports them as EngineError.
 */

import { DimseStatus } from './dicom/dimse-status.js';

/** The kernel's one DIMSE status table, re-exported for the modules that map errors with it. */
export { DimseStatus };

/** The domain codes (a list, so the edges' tables can be checked to cover every one). */
export const ERROR_KINDS = [
  'invalid-input',
  'unparseable',
  'mismatch',
  'unsupported',
  'duplicate',
  'too-large',
  'out-of-resources',
  'not-found',
  'config',
  /** The request contradicts the current state (an existing record, a finished workflow step). */
  'conflict',
  /** The caller may not do this to this resource (beyond its role's permissions). */
  'forbidden',
  /** Well-formed but not applicable (a change naming something that does not exist). */
  'unprocessable',
  /** The node failed at its own work (a bug, a store that refused its own object, a corrupt row). */
  'internal',
] as const;

export type ErrorKind = (typeof ERROR_KINDS)[number];

/**
 * Finer than the kind, where a protocol answers the cases differently: ingest's, for STOW-RS
 * FailureReason. Error classes with their own finer vocabulary (RenderError's RenderErrorKind,
 * MultipartError's MultipartFailure, …) narrow `reason` to it.
 */
export type ErrorReason = 'study-mismatch' | 'transfer-syntax' | 'sop-class';

export interface RadiantErrorOptions {
  cause?: unknown;
  reason?: ErrorReason;
  /** The machine-readable code clients see (`error.code` of the REST API), where finer than the kind. */
  code?: string;
  /** Facts for the client (`error.details`): counts, not secrets. */
  details?: unknown;
}

export class RadiantError extends Error {
  readonly kind: ErrorKind;
  /** An ErrorReason, or a subclass's own finer vocabulary (declared there). */
  readonly reason?: string;
  readonly code?: string;
  readonly details?: unknown;

  constructor(kind: ErrorKind, message: string, options?: RadiantErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RadiantError';
    this.kind = kind;
    this.reason = options?.reason;
    this.code = options?.code;
    this.details = options?.details;
  }
}

export class ConfigError extends RadiantError {
  constructor(message: string) {
    super('config', message);
    this.name = 'ConfigError';
  }
}

export class StorageError extends RadiantError {
  constructor(kind: 'not-found' | 'out-of-resources' | 'invalid-input', message: string, options?: { cause?: unknown }) {
    super(kind, message, options);
    this.name = 'StorageError';
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
