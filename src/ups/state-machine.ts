import { RadiantError } from '../errors.js';

/**
 * The Unified Procedure Step state machine (PS3.4 CC.1.1, Table CC.1.1-2) and the rules of the
 * transactions that depend on the state (PS3.18 §11.6-11.8), as pure functions: each answers what
 * the change does, or the refusal with the DIMSE status of PS3.4 and the Warning text PS3.18
 * gives for it. No database here; src/ups/workitems.ts applies the outcome.
 *
 * SCHEDULED → IN PROGRESS (claimed with a Transaction UID) → COMPLETED or CANCELED. A SCHEDULED
 * workitem is never COMPLETED or CANCELED directly; COMPLETED and CANCELED are final.
 */

export const UPS_STATES = ['SCHEDULED', 'IN PROGRESS', 'COMPLETED', 'CANCELED'] as const;
export type UpsState = (typeof UPS_STATES)[number];

export function isUpsState(s: unknown): s is UpsState {
  return typeof s === 'string' && (UPS_STATES as readonly string[]).includes(s);
}

export const isFinal = (s: UpsState): boolean => s === 'COMPLETED' || s === 'CANCELED';

/**
 * A refused UPS request: the HTTP status PS3.18 gives it (400, 404, 409), the DIMSE status of
 * PS3.4 (C301…), and the Warning header's text.
 */
export class UpsError extends RadiantError {
  constructor(
    kind: 'invalid-input' | 'conflict' | 'not-found',
    readonly dimseStatus: number,
    readonly warning: string,
    message: string,
  ) {
    super(kind, message, { code: `ups_${dimseStatus.toString(16).toLowerCase()}`, details: { dimseStatus, warning } });
    this.name = 'UpsError';
  }
}

// PS3.18 Table 11.7.3-2 (Change State), 11.6.3-2 (Update), 11.8.3-2 (Request Cancellation).
export const WARNINGS = {
  txMissing: 'The Transaction UID is missing.',
  txIncorrect: 'The Transaction UID is incorrect.',
  stateInconsistent: 'The submitted request is inconsistent with the state of the UPS Instance.',
  alreadyCanceled: 'The UPS is already in the requested state of CANCELED.',
  alreadyCompleted: 'The UPS is already in the requested state of COMPLETED.',
  notClaimed: 'The target URI did not reference a claimed Workitem.',
  updateInconsistent: 'The submitted request is inconsistent with the current state of the Workitem.',
  cancelCompleted: 'The UPS is already COMPLETED.',
  performerUnreachable: 'The performer cannot be contacted.',
  modified: 'The Workitem was updated with modifications.',
} as const;

// PS3.4 Annex CC DIMSE statuses.
export const DIMSE = {
  mayNoLongerBeUpdated: 0xc300,
  wrongTransactionUid: 0xc301,
  alreadyInProgress: 0xc302,
  scheduledOnlyByCreate: 0xc303,
  notInProgress: 0xc310,
  alreadyCanceled: 0xb304,
  alreadyCompleted: 0xb306,
  noSuchInstance: 0xc307,
} as const;

export interface WorkitemLock {
  state: UpsState;
  transactionUid: string | null;
}

/** What a permitted Change State does: the new state and lock; `warning` for "already there". */
export interface StateChange {
  to: UpsState;
  transactionUid: string | null;
  /** Set when nothing changes (already in the requested final state): 200 with this Warning. */
  warning?: string;
  changed: boolean;
}

/**
 * Change UPS State (PS3.4 CC.2.1.3, Table CC.1.1-2): the outcome of asking for `requested` with
 * `transactionUid`, or a UpsError. Every request carries a Transaction UID (PS3.18 §11.7.1.4).
 */
export function changeState(current: WorkitemLock, requested: string, transactionUid: string | undefined): StateChange {
  if (!transactionUid)
    throw new UpsError('invalid-input', DIMSE.wrongTransactionUid, WARNINGS.txMissing, 'the request has no Transaction UID');
  if (requested === 'SCHEDULED') {
    throw new UpsError(
      'invalid-input',
      DIMSE.scheduledOnlyByCreate,
      WARNINGS.stateInconsistent,
      'a UPS only becomes SCHEDULED when created',
    );
  }
  if (requested !== 'IN PROGRESS' && requested !== 'COMPLETED' && requested !== 'CANCELED') {
    throw new UpsError(
      'invalid-input',
      DIMSE.scheduledOnlyByCreate,
      WARNINGS.stateInconsistent,
      `"${requested}" is not a state to change to`,
    );
  }
  const refuse = (status: number, message: string): never => {
    throw new UpsError('conflict', status, WARNINGS.stateInconsistent, message);
  };
  switch (current.state) {
    case 'SCHEDULED':
      if (requested === 'IN PROGRESS') return { to: 'IN PROGRESS', transactionUid, changed: true };
      return refuse(DIMSE.notInProgress, `a SCHEDULED UPS cannot become ${requested} before it is IN PROGRESS`);
    case 'IN PROGRESS':
      if (transactionUid !== current.transactionUid) {
        throw new UpsError('invalid-input', DIMSE.wrongTransactionUid, WARNINGS.txIncorrect, 'the Transaction UID is not the owner’s');
      }
      if (requested === 'IN PROGRESS') return refuse(DIMSE.alreadyInProgress, 'the UPS is already IN PROGRESS');
      return { to: requested, transactionUid: current.transactionUid, changed: true };
    case 'COMPLETED':
    case 'CANCELED':
      if (requested === current.state) {
        const warning = current.state === 'CANCELED' ? WARNINGS.alreadyCanceled : WARNINGS.alreadyCompleted;
        return { to: current.state, transactionUid: current.transactionUid, warning, changed: false };
      }
      return refuse(DIMSE.mayNoLongerBeUpdated, `the UPS is ${current.state} and may no longer be updated`);
  }
}

/**
 * Update (N-SET, PS3.4 CC.2.6.3): a SCHEDULED workitem takes changes from anyone allowed; an
 * IN PROGRESS one only with its owner's Transaction UID; a final one never.
 */
export function checkUpdate(current: WorkitemLock, transactionUid: string | undefined): void {
  if (isFinal(current.state)) {
    throw new UpsError('conflict', DIMSE.mayNoLongerBeUpdated, WARNINGS.updateInconsistent, `the UPS is ${current.state}`);
  }
  if (current.state === 'IN PROGRESS' && transactionUid !== current.transactionUid) {
    throw new UpsError(
      'invalid-input',
      DIMSE.wrongTransactionUid,
      WARNINGS.notClaimed,
      transactionUid ? 'the Transaction UID is not the owner’s' : 'an IN PROGRESS UPS is updated with its Transaction UID',
    );
  }
}

/**
 * What a Request Cancellation (PS3.4 CC.2.2.3) leads to: 'cancel' (the SCP cancels it itself: a
 * SCHEDULED one, or one the node performs), 'notify' (tell the performer: a Cancel Requested
 * event), 'already' (202 with the Warning), or a refusal (409).
 */
export type CancelPlan = 'cancel' | 'notify' | 'already';

export function planCancel(current: WorkitemLock, opts: { nodePerforms: boolean; performerReachable: boolean }): CancelPlan {
  switch (current.state) {
    case 'COMPLETED':
      throw new UpsError('conflict', DIMSE.mayNoLongerBeUpdated, WARNINGS.cancelCompleted, 'the UPS is already COMPLETED');
    case 'CANCELED':
      return 'already';
    case 'SCHEDULED':
      return 'cancel';
    case 'IN PROGRESS':
      if (opts.nodePerforms) return 'cancel';
      if (!opts.performerReachable) {
        throw new UpsError('conflict', DIMSE.notInProgress, WARNINGS.performerUnreachable, 'no subscriber can tell the performer');
      }
      return 'notify';
  }
}
