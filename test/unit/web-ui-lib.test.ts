import { expect } from 'chai';
import { dateTime, personName, reportLabel } from '../../ui/src/lib/format.js';
import { SseParser, type SseEvent } from '../../ui/src/lib/sse.js';
import { tokenExpiry } from '../../ui/src/lib/token.js';

/** The web UI's pure helpers (ui/src/lib): the SSE parser, the token's expiry, display forms. */
describe('web UI helpers', () => {
  it('parses Server-Sent Events split anywhere across chunks, skipping comments and retry lines', () => {
    const got: SseEvent[] = [];
    const p = new SseParser((e) => got.push(e));
    const text = 'retry: 3000\nevent: ready\ndata: {}\n\n: keep-alive\n\nid: 7\nevent: study\ndata: {"a":1}\n\r\ndata: x\ndata: y\n\n';
    for (const ch of text) p.push(ch);
    expect(got).to.deep.equal([
      { event: 'ready', data: '{}', id: undefined },
      { event: 'study', data: '{"a":1}', id: '7' },
      { event: 'message', data: 'x\ny', id: '7' },
    ]);
  });

  it("reads a JWT's exp, and nothing from a malformed token", () => {
    const payload = Buffer.from(JSON.stringify({ sub: '1', exp: 1_900_000_000 })).toString('base64url');
    expect(tokenExpiry(`h.${payload}.s`)?.toISOString()).to.equal(new Date(1_900_000_000_000).toISOString());
    expect(tokenExpiry('not-a-jwt')).to.equal(undefined);
    expect(tokenExpiry('a.!!!.c')).to.equal(undefined);
    expect(tokenExpiry(`h.${Buffer.from('{"exp":"soon"}').toString('base64url')}.s`)).to.equal(undefined);
  });

  it('shows person names, times and report states as people read them', () => {
    expect(personName('DOE^JOHN^Q')).to.equal('DOE, JOHN Q');
    expect(personName('Doe^Jane^^^MD')).to.equal('Doe, Jane');
    expect(personName('SMITH')).to.equal('SMITH');
    expect(personName(null)).to.equal('');
    expect(dateTime('not a date')).to.equal('');
    expect(dateTime('2024-03-01T10:05:00')).to.equal('2024-03-01 10:05');
    expect(reportLabel('final')).to.equal('signed');
    expect(reportLabel('draft')).to.equal('AI draft');
    expect(reportLabel(null)).to.equal('none');
  });
});
