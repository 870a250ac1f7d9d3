/**
 * The one table of DIMSE status codes the node sends or reads (PS3.7 Annex C, PS3.4 B.2.3, C.4,
 * J.3; PS3.18 Table I.2-1 reuses them as STOW-RS Failure/Warning Reasons). Names follow the
 * standard's wording in the service that uses them; where two services word one code differently
 * both names are kept, so each call site reads as its section of PS3.4 does.
 * The errors module maps domain errors to these; the protocol modules send them.
 */
export const DimseStatus = {
  Success: 0x0000,
  /** Warning (PS3.7 C.3): the general warning code; Bxxx are warnings too. */
  Warning0001: 0x0001,

  /** Failure: processing failure (PS3.7 C.4.2); Storage Commitment failure reason. */
  ProcessingFailure: 0x0110,
  /** Failure: duplicate SOP Instance (PS3.7 C.5.4). */
  DuplicateSopInstance: 0x0111,
  /** Failure: no such object instance (PS3.7 C.4.14; Storage Commitment failure reason). */
  NoSuchObjectInstance: 0x0112,
  /** Failure: invalid argument value (PS3.7 C.4.7). */
  InvalidArgumentValue: 0x0115,
  /** Failure: invalid object instance (PS3.7 C.4.10). */
  InvalidObjectInstance: 0x0117,
  /** Failure: no such SOP Class (PS3.7 C.4.16). */
  NoSuchSopClass: 0x0118,
  /** Failure: class-instance conflict (PS3.7 C.4.2; Storage Commitment failure reason). */
  ClassInstanceConflict: 0x0119,
  /** Refused: SOP Class not supported (PS3.7 C.5.13). */
  SopClassNotSupported: 0x0122,
  /** Failure: no such action (PS3.7 C.4.15). */
  NoSuchAction: 0x0123,

  /** Refused: Out of Resources (PS3.4 B.2.3, C.4.1.1.4). */
  OutOfResources: 0xa700,
  /** Refused: Out of Resources, unable to perform sub-operations (C-MOVE/C-GET, PS3.4 C.4.2.1.5). */
  UnableToPerformSubOperations: 0xa702,
  /** Refused: Move Destination unknown (C-MOVE only). */
  MoveDestinationUnknown: 0xa801,
  /** Error: Data Set does not match SOP Class (C-STORE, PS3.4 B.2.3). */
  DataSetDoesNotMatchSopClass: 0xa900,
  /** Error: Identifier does not match SOP Class (C-FIND/C-MOVE/C-GET): the same code as above. */
  IdentifierDoesNotMatchSopClass: 0xa900,

  /** Warning: coercion of data elements (C-STORE); sub-operations complete with failures (C-MOVE/C-GET). */
  WarningCoercion: 0xb000,
  /** Warning: sub-operations complete, one or more failures or warnings (C-MOVE/C-GET): the same code as above. */
  SubOperationsWarning: 0xb000,
  /** Warning: Data Set does not match SOP Class (C-STORE; STOW-RS Warning Reason B007). */
  WarningDataSetDoesNotMatchSopClass: 0xb007,

  /** Error: Cannot understand (C-STORE, PS3.4 B.2.3). */
  CannotUnderstand: 0xc000,
  /** Failed: Unable to process (C-FIND/C-MOVE/C-GET): the same code as above. */
  UnableToProcess: 0xc000,
  /** Referenced Transfer Syntax not supported (STOW-RS Failure Reason, PS3.18 Table I.2-1). */
  TransferSyntaxNotSupported: 0xc122,

  /** Cancel: matching or sub-operations terminated due to a Cancel indication. */
  Cancel: 0xfe00,
  /** Pending: matches are continuing. */
  Pending: 0xff00,
  /** Pending: matches are continuing, one or more optional keys were not supported. */
  PendingOptionalKeysNotSupported: 0xff01,
} as const;

/** PS3.7 C: Warning statuses are 0001 and Bxxx (B000 coercion, B006 elements discarded, B007 SOP class mismatch). */
export function isWarningStatus(status: number): boolean {
  return status === DimseStatus.Warning0001 || (status & 0xf000) === 0xb000;
}

/** Pending statuses (PS3.7 C.4.x): more responses follow. */
export function isPendingStatus(status: number): boolean {
  return status === DimseStatus.Pending || status === DimseStatus.PendingOptionalKeysNotSupported;
}
