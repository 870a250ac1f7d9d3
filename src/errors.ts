/**
 * Typed errors for the node. Every error that can reach a caller carries the DICOM status
 * (PS3.4 / PS3.7 Annex C) and the HTTP status it maps to, so C-STORE, STOW-RS and the REST
 * API answer the same failure the same way.
 */

import { DimseStatus } from './dicom/dimse-status.js';

/** The kernel's one DIMSE status table, re-exported for the modules that map errors with it. */
export { DimseStatus };

export type ErrorKind =
  | 'invalid-input'
  | 'unparseable'
  | 'mismatch'
  | 'unsupported'
  | 'duplicate'
  | 'too-large'
  | 'out-of-resources'
  | 'not-found'
  | 'config';

const mapping: Record<ErrorKind, { dimse: number; http: number }> = {
  'invalid-input': { dimse: DimseStatus.DataSetDoesNotMatchSopClass, http: 400 },
  unparseable: { dimse: DimseStatus.CannotUnderstand, http: 400 },
  mismatch: { dimse: DimseStatus.DataSetDoesNotMatchSopClass, http: 409 },
  unsupported: { dimse: DimseStatus.SopClassNotSupported, http: 415 },
  duplicate: { dimse: DimseStatus.DuplicateSopInstance, http: 409 },
  'too-large': { dimse: DimseStatus.OutOfResources, http: 413 },
  'out-of-resources': { dimse: DimseStatus.OutOfResources, http: 503 },
  'not-found': { dimse: DimseStatus.UnableToProcess, http: 404 },
  config: { dimse: DimseStatus.OutOfResources, http: 500 },
};

/** Finer than the kind, where a protocol answers the cases differently (STOW-RS FailureReason). */
export type ErrorReason = 'study-mismatch' | 'transfer-syntax' | 'sop-class';

export class RadiantError extends Error {
  readonly kind: ErrorKind;
  readonly reason?: ErrorReason;
  readonly dimseStatus: number;
  readonly httpStatus: number;

  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown; reason?: ErrorReason }) {
    super(message, options);
    this.name = 'RadiantError';
    this.kind = kind;
    this.reason = options?.reason;
    this.dimseStatus = mapping[kind].dimse;
    this.httpStatus = mapping[kind].http;
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
