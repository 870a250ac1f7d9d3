import { expect } from 'chai';
import { changeState, checkUpdate, planCancel, UpsError, WARNINGS, type WorkitemLock } from '../../src/ups/state-machine.js';

/** PS3.4 CC.1.1 (Table CC.1.1-2) and PS3.18 §11.6-11.8: what each request does in each state. */

const TX = '1.2.3.4';
const scheduled: WorkitemLock = { state: 'SCHEDULED', transactionUid: null };
const inProgress: WorkitemLock = { state: 'IN PROGRESS', transactionUid: TX };
const completed: WorkitemLock = { state: 'COMPLETED', transactionUid: TX };
const canceled: WorkitemLock = { state: 'CANCELED', transactionUid: TX };

function refusal(fn: () => unknown): UpsError {
  try {
    fn();
  } catch (err) {
    if (err instanceof UpsError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('UPS state machine', () => {
  it('claims a SCHEDULED workitem with the Transaction UID it records', () => {
    expect(changeState(scheduled, 'IN PROGRESS', TX)).to.deep.equal({ to: 'IN PROGRESS', transactionUid: TX, changed: true });
  });

  it('never completes or cancels a SCHEDULED workitem directly (409, C310)', () => {
    for (const s of ['COMPLETED', 'CANCELED']) {
      const e = refusal(() => changeState(scheduled, s, TX));
      expect([e.kind, e.dimseStatus, e.warning]).to.deep.equal(['conflict', 0xc310, WARNINGS.stateInconsistent]);
    }
  });

  it('refuses a request without a Transaction UID (400, missing)', () => {
    const e = refusal(() => changeState(scheduled, 'IN PROGRESS', undefined));
    expect([e.kind, e.dimseStatus, e.warning]).to.deep.equal(['invalid-input', 0xc301, WARNINGS.txMissing]);
  });

  it('completes or cancels an IN PROGRESS workitem only with its owner’s Transaction UID', () => {
    expect(changeState(inProgress, 'COMPLETED', TX)).to.include({ to: 'COMPLETED', changed: true });
    expect(changeState(inProgress, 'CANCELED', TX)).to.include({ to: 'CANCELED', changed: true });
    const e = refusal(() => changeState(inProgress, 'COMPLETED', '9.9.9'));
    expect([e.kind, e.dimseStatus, e.warning]).to.deep.equal(['invalid-input', 0xc301, WARNINGS.txIncorrect]);
  });

  it('refuses a second claim (409, C302)', () => {
    const e = refusal(() => changeState(inProgress, 'IN PROGRESS', TX));
    expect([e.kind, e.dimseStatus]).to.deep.equal(['conflict', 0xc302]);
  });

  it('answers "already there" for a final state asked again, and refuses leaving it (C300)', () => {
    expect(changeState(completed, 'COMPLETED', TX)).to.include({ changed: false, warning: WARNINGS.alreadyCompleted });
    expect(changeState(canceled, 'CANCELED', TX)).to.include({ changed: false, warning: WARNINGS.alreadyCanceled });
    expect(refusal(() => changeState(completed, 'CANCELED', TX)).dimseStatus).to.equal(0xc300);
    expect(refusal(() => changeState(canceled, 'IN PROGRESS', TX)).dimseStatus).to.equal(0xc300);
  });

  it('never moves anything back to SCHEDULED, and rejects unknown states', () => {
    expect(refusal(() => changeState(inProgress, 'SCHEDULED', TX)).dimseStatus).to.equal(0xc303);
    expect(refusal(() => changeState(scheduled, 'DONE', TX)).kind).to.equal('invalid-input');
  });

  it('updates: SCHEDULED by anyone, IN PROGRESS by the owner, final never', () => {
    expect(() => checkUpdate(scheduled, undefined)).to.not.throw();
    expect(() => checkUpdate(inProgress, TX)).to.not.throw();
    expect(refusal(() => checkUpdate(inProgress, undefined)).warning).to.equal(WARNINGS.notClaimed);
    expect(refusal(() => checkUpdate(completed, TX)).kind).to.equal('conflict');
  });

  it('plans a cancellation request by state and performer', () => {
    const reach = { nodePerforms: false, performerReachable: true };
    expect(planCancel(scheduled, reach)).to.equal('cancel');
    expect(planCancel(inProgress, reach)).to.equal('notify');
    expect(planCancel(inProgress, { nodePerforms: true, performerReachable: false })).to.equal('cancel');
    expect(planCancel(canceled, reach)).to.equal('already');
    expect(refusal(() => planCancel(completed, reach)).warning).to.equal(WARNINGS.cancelCompleted);
    expect(refusal(() => planCancel(inProgress, { nodePerforms: false, performerReachable: false })).warning).to.equal(
      WARNINGS.performerUnreachable,
    );
  });
});
