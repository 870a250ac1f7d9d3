import { expect } from 'chai';
import { FailureLimiter } from '../../src/auth/rate-limit.js';

describe('unit: failed-login limiter', () => {
  it('locks a key out after max failures within the window', () => {
    const l = new FailureLimiter(3, 60_000);
    expect(l.fail('u', 1, 0)).to.equal(0);
    expect(l.fail('u', 1, 1000)).to.equal(0);
    expect(l.fail('u', 1, 2000)).to.equal(60);
    expect(l.retryAfter('u', 2000)).to.equal(60);
    expect(l.retryAfter('u', 62_000)).to.equal(0);
    expect(l.retryAfter('other', 2000)).to.equal(0);
  });
  it('forgets failures older than the window', () => {
    const l = new FailureLimiter(2, 10_000);
    l.fail('u', 1, 0);
    expect(l.fail('u', 1, 20_000)).to.equal(0);
  });
  it('doubles each lockout, up to the cap', () => {
    const l = new FailureLimiter(1, 10_000, 25_000);
    expect(l.fail('u', 1, 0)).to.equal(10);
    expect(l.fail('u', 1, 100_000)).to.equal(20);
    expect(l.fail('u', 1, 200_000)).to.equal(25);
  });
  it('a factor scales the allowance; reset clears the key', () => {
    const l = new FailureLimiter(2, 60_000);
    expect(l.fail('addr', 3, 0)).to.equal(0);
    expect(l.fail('addr', 3, 1)).to.equal(0);
    l.reset('addr');
    expect(l.retryAfter('addr', 2)).to.equal(0);
  });
});
