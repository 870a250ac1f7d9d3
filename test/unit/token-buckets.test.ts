import { expect } from 'chai';
import { TokenBuckets } from '../../src/auth/rate-limit.js';

describe('TokenBuckets (the request and login limiter)', () => {
  it('lets a burst of `capacity` through, then refills one token per window / capacity', () => {
    const b = new TokenBuckets(3, 3000);
    for (let i = 0; i < 3; i++) expect(b.take('k', 1, 0)).to.equal(0);
    expect(b.take('k', 1, 0)).to.equal(1);
    expect(b.take('k', 1, 500)).to.equal(1);
    expect(b.take('k', 1, 1000)).to.equal(0);
    expect(b.take('k', 1, 1000)).to.equal(1);
    expect(b.take('other', 1, 1000)).to.equal(0);
  });

  it('scales capacity and refill by factor, and never holds more than capacity', () => {
    const b = new TokenBuckets(2, 1000);
    for (let i = 0; i < 8; i++) expect(b.take('k', 4, 0)).to.equal(0);
    expect(b.take('k', 4, 0)).to.equal(1);
    expect(b.left('idle', 1, 1_000_000)).to.equal(2);
    b.reset('k');
    expect(b.left('k', 4, 0)).to.equal(8);
  });
});
