import { DimseStatus, RadiantError, type ErrorKind } from '../src/errors.js';

/**
 * The DIMSE edge's one table: the status a domain error (src/errors.ts) answers with, per
 * service. C-STORE tells the kinds apart (PS3.4 B.2.3, PS3.7 C). C-FIND, C-MOVE and C-GET answer
 * an identifier that does not fit the model with 0xA900, a FIND SOP class the node does not serve
 * with 0x0122 (C-FIND), and every other failure of the query or the retrieve with "Unable to
 * process" (0xC000, PS3.4 C.4.1.1.4, C.4.2.1.5). Storage Commitment's N-ACTION (PS3.4 J.3.2,
 * PS3.7 10.1.4.1.10) tells an unknown action, a wrong instance and a bad argument apart.
 * Anything but a domain error is the node's own fault.
 */

const STORE: Record<ErrorKind, number> = {
  'invalid-input': DimseStatus.DataSetDoesNotMatchSopClass,
  unparseable: DimseStatus.CannotUnderstand,
  mismatch: DimseStatus.DataSetDoesNotMatchSopClass,
  unsupported: DimseStatus.SopClassNotSupported,
  duplicate: DimseStatus.DuplicateSopInstance,
  'too-large': DimseStatus.OutOfResources,
  'out-of-resources': DimseStatus.OutOfResources,
  'not-found': DimseStatus.CannotUnderstand,
  config: DimseStatus.OutOfResources,
  conflict: DimseStatus.CannotUnderstand,
  forbidden: DimseStatus.CannotUnderstand,
  unprocessable: DimseStatus.CannotUnderstand,
  internal: DimseStatus.OutOfResources,
};

const FIND: Record<ErrorKind, number> = {
  /** A query value the engine refuses (QueryError): the query, not the identifier's shape. */
  'invalid-input': DimseStatus.UnableToProcess,
  unparseable: DimseStatus.UnableToProcess,
  mismatch: DimseStatus.IdentifierDoesNotMatchSopClass,
  unsupported: DimseStatus.SopClassNotSupported,
  duplicate: DimseStatus.UnableToProcess,
  'too-large': DimseStatus.UnableToProcess,
  'out-of-resources': DimseStatus.UnableToProcess,
  'not-found': DimseStatus.UnableToProcess,
  config: DimseStatus.UnableToProcess,
  conflict: DimseStatus.UnableToProcess,
  forbidden: DimseStatus.UnableToProcess,
  unprocessable: DimseStatus.UnableToProcess,
  internal: DimseStatus.UnableToProcess,
};

const RETRIEVE: Record<ErrorKind, number> = { ...FIND, unsupported: DimseStatus.UnableToProcess };

const COMMITMENT: Record<ErrorKind, number> = {
  'invalid-input': DimseStatus.InvalidArgumentValue,
  unparseable: DimseStatus.ProcessingFailure,
  mismatch: DimseStatus.ProcessingFailure,
  unsupported: DimseStatus.NoSuchAction,
  duplicate: DimseStatus.ProcessingFailure,
  'too-large': DimseStatus.ProcessingFailure,
  'out-of-resources': DimseStatus.ProcessingFailure,
  'not-found': DimseStatus.InvalidObjectInstance,
  config: DimseStatus.ProcessingFailure,
  conflict: DimseStatus.ProcessingFailure,
  forbidden: DimseStatus.ProcessingFailure,
  unprocessable: DimseStatus.ProcessingFailure,
  internal: DimseStatus.ProcessingFailure,
};

export type DimseService = 'store' | 'find' | 'retrieve' | 'commitment';

const TABLES: Record<DimseService, { table: Record<ErrorKind, number>; fallback: number }> = {
  store: { table: STORE, fallback: DimseStatus.OutOfResources },
  find: { table: FIND, fallback: DimseStatus.UnableToProcess },
  retrieve: { table: RETRIEVE, fallback: DimseStatus.UnableToProcess },
  commitment: { table: COMMITMENT, fallback: DimseStatus.ProcessingFailure },
};

/** The status a failure answers with; anything but a domain error is the node's own fault. */
export function dimseStatusOf(service: DimseService, err: unknown): number {
  const { table, fallback } = TABLES[service];
  return err instanceof RadiantError ? table[err.kind] : fallback;
}
