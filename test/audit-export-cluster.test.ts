/**
 * The syslog audit export with two serve nodes on one PostgreSQL (issue 21, loose ends): both
 * share the destination's cursor, and only the node holding the destination's session lock
 * (src/db/session-lock.ts) ships, so each audit row reaches the collector once, not once per
 * node; when the holder stops, the other takes over from the saved cursor with nothing lost and
 * nothing sent twice.
 */
import { expect } from 'chai';
import dgram from 'node:dgram';
import { loginFor } from './helpers/http.js';
import { startTestNode, type TestNode } from './helpers/node.js';
import { freshPostgresUrl } from './helpers/postgres.js';
import { until } from './helpers/until.js';
import { childrenNamed, parseXml } from './helpers/xml-tree.js';

/** The successful logins' user names, one entry per message received. */
function loginsIn(messages: string[]): string[] {
  const out: string[] = [];
  for (const m of messages) {
    const xml = m.slice(m.indexOf('<AuditMessage'));
    const msg = parseXml(xml);
    const event = msg.children[0]!;
    const id = childrenNamed(event, 'EventID')[0]?.attrs['csd-code'];
    if (id !== '110114' || event.attrs.EventOutcomeIndicator !== '0') continue;
    const requestor = childrenNamed(msg, 'ActiveParticipant').find((p) => p.attrs.UserIsRequestor === 'true');
    if (requestor?.attrs.UserID) out.push(requestor.attrs.UserID);
  }
  return out;
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Audit export with two nodes on one PostgreSQL: each message sent once', function () {
  this.timeout(180_000);
  let udp: dgram.Socket;
  const received: string[] = [];
  let a: TestNode | undefined;
  let b: TestNode | undefined;
  let env: Record<string, string>;

  before(async () => {
    udp = dgram.createSocket('udp4');
    udp.on('message', (m) => received.push(m.toString('utf8')));
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
    env = { DATABASE_URL: await freshPostgresUrl('audit-cluster'), AUDIT_SYSLOG_URL: `udp://127.0.0.1:${udp.address().port}` };
  });
  after(async () => {
    await a?.cleanup();
    await b?.cleanup();
    udp?.close();
  });

  it('logins on both nodes reach the collector once each, whichever node audited them', async () => {
    a = await startTestNode(env);
    // A ships alone first, so it holds the destination's lock when B starts.
    const first = await loginFor(a, 'radiologist');
    await until('the first login shipped', async () => loginsIn(received).includes(first.username), 30_000);
    b = await startTestNode(env);
    const users = [first.username];
    for (let i = 0; i < 3; i++) {
      users.push((await loginFor(a, 'viewer')).username);
      users.push((await loginFor(b, 'viewer')).username);
    }
    await until('every login shipped', async () => users.every((u) => loginsIn(received).includes(u)), 30_000);
    // Several poll rounds of both nodes: a second shipper would have sent them again by now.
    await settle(3000);
    const counts = new Map<string, number>();
    for (const u of loginsIn(received)) counts.set(u, (counts.get(u) ?? 0) + 1);
    for (const u of users) expect(counts.get(u), u).to.equal(1);
  });

  it('the holder stops: the other node takes over from the saved cursor, nothing lost, nothing twice', async () => {
    const last = await loginFor(a!, 'viewer');
    await a!.cleanup();
    a = undefined;
    const users = [last.username];
    for (let i = 0; i < 3; i++) users.push((await loginFor(b!, 'viewer')).username);
    await until('the logins after the stop shipped by B', async () => users.every((u) => loginsIn(received).includes(u)), 30_000);
    await settle(2500);
    const all = loginsIn(received);
    for (const u of users)
      expect(
        all.filter((x) => x === u),
        u,
      ).to.have.length(1);
    // No login of the first test came again with the take-over.
    expect(new Set(all).size).to.equal(all.length);
  });
});
