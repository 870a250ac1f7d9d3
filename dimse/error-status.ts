import { DimseStatus, RadiantError, type ErrorKind } from '../src/errors.js';

/**
 * The DIMSE edge's one table: the status a domain error (src/errors.ts) answers with, per
 * service. C-STORE tells the kinds apart (PS3.4 B.2.3, PS3.7 C); C-FIND and C-MOVE/C-GET answer
 * every failure of the query or the retrieve with "Unable to process" (0xC000, PS3.4 C.4.1.1.4,
 * C.4.2.1.5), their identifier errors being their own (find.ts FindFailure, retrieve.ts).
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

/** Failure: Unable to process (C-FIND, C-MOVE, C-GET). */
const UNABLE_TO_PROCESS = 0xc000;

export type DimseService = 'store' | 'find' | 'retrieve';

/** The status a failure answers with; anything but a domain error is the node's own fault. */
export function dimseStatusOf(service: DimseService, err: unknown): number {
  if (service !== 'store') return UNABLE_TO_PROCESS;
  return err instanceof RadiantError ? STORE[err.kind] : DimseStatus.OutOfResources;
}
