/**
 * Events across processes (issue 21, loose ends): on PostgreSQL the bus's analysis-progress,
 * report-changed and instance-stored events reach the other processes of the database through
 * LISTEN/NOTIFY (src/db/events-relay.ts): two cores on one real PostgreSQL, an event emitted on
 * one is delivered once on the other's bus, and never comes back to its sender (no echo, no
 * loop); a burst of arrivals is coalesced; a serve node's GET /api/events streams the progress
 * another process made. SQLite has no relay.
 */
import { expect } from 'chai';
import { EventsRelay } from '../src/db/events-relay.js';
import type { AnalysisProgressEvent, EventBus, NodeEvents, ReportChangedEvent } from '../src/events.js';
import { createLogger } from '../src/logger.js';
import { bearer, baseUrl, tokenFor } from './helpers/http.js';
import { startTestCore, startTestNode, type TestCore, type TestNode } from './helpers/node.js';
import { freshPostgresUrl } from './helpers/postgres.js';
import { until } from './helpers/until.js';

type Heard = { event: keyof NodeEvents; data: unknown }[];

function record(bus: EventBus): Heard {
  const heard: Heard = [];
  bus.on('analysis-progress', (d) => heard.push({ event: 'analysis-progress', data: d }));
  bus.on('report-changed', (d) => heard.push({ event: 'report-changed', data: d }));
  bus.on('instance-stored', (d) => heard.push({ event: 'instance-stored', data: d }));
  return heard;
}

const settle = (ms = 800) => new Promise((r) => setTimeout(r, ms));

describe('Events relay: the bus across processes on PostgreSQL (LISTEN/NOTIFY)', function () {
  this.timeout(120_000);
  let a: TestCore;
  let b: TestCore;
  let heardA: Heard;
  let heardB: Heard;
  let env: Record<string, string>;

  before(async () => {
    env = { DATABASE_URL: await freshPostgresUrl('relay') };
    a = await startTestCore(env);
    b = await startTestCore(env);
    heardA = record(a.events);
    heardB = record(b.events);
  });
  after(async () => {
    await a?.cleanup();
    await b?.cleanup();
  });
  beforeEach(() => {
    heardA.length = 0;
    heardB.length = 0;
  });

  it('an analysis-progress and a report-changed emitted on A are delivered once to B, never echoed back to A', async () => {
    const progress: AnalysisProgressEvent = { analysisId: 41, studyInstanceUid: '1.2.3.41', status: 'running', progress: 0.5 };
    const report: ReportChangedEvent = { reportId: 7, studyInstanceUid: '1.2.3.41', version: 2, status: 'signed', event: 'signed' };
    a.events.emit('analysis-progress', progress);
    a.events.emit('report-changed', report);
    await until('both events on B', async () => heardB.length >= 2, 20_000, 50);
    await settle();
    expect(heardB).to.deep.equal([
      { event: 'analysis-progress', data: progress },
      { event: 'report-changed', data: report },
    ]);
    // A heard its own two emits, once each: its notifications were dropped, and B did not send them back.
    expect(heardA).to.deep.equal([
      { event: 'analysis-progress', data: progress },
      { event: 'report-changed', data: report },
    ]);
  });

  it('both ways at once: each side hears the other once', async () => {
    const fromB: AnalysisProgressEvent = { analysisId: 2, studyInstanceUid: '1.2.3.2', status: 'succeeded', progress: 1 };
    const fromA: AnalysisProgressEvent = { analysisId: 1, studyInstanceUid: '1.2.3.1', status: 'queued', progress: 0 };
    a.events.emit('analysis-progress', fromA);
    b.events.emit('analysis-progress', fromB);
    await until('each side heard the other', async () => heardA.length >= 2 && heardB.length >= 2, 20_000, 50);
    await settle();
    expect(heardA.map((h) => h.data)).to.have.deep.members([fromA, fromB]);
    expect(heardB.map((h) => h.data)).to.have.deep.members([fromA, fromB]);
    expect(heardA).to.have.length(2);
    expect(heardB).to.have.length(2);
  });

  it('a burst of arrivals of one series is coalesced; UIDs only travel', async () => {
    for (let i = 0; i < 200; i++) {
      a.events.emit('instance-stored', { studyInstanceUid: '1.2.3.9', seriesInstanceUid: '1.2.3.9.1', sopInstanceUid: `1.2.3.9.1.${i}` });
    }
    await until('the arrival on B', async () => heardB.length >= 1, 20_000, 50);
    await settle();
    expect(heardB.length).to.be.within(1, 5);
    for (const h of heardB) {
      expect(h.event).to.equal('instance-stored');
      expect(Object.keys(h.data as object).sort()).to.deep.equal(['seriesInstanceUid', 'sopInstanceUid', 'studyInstanceUid']);
    }
    expect(heardA).to.have.length(200);
  });

  it('after stop() a core neither sends nor hears', async () => {
    const c = await startTestCore(env);
    const heardC = record(c.events);
    const first: AnalysisProgressEvent = { analysisId: 5, studyInstanceUid: '1.2.3.5', status: 'running', progress: 0.1 };
    c.events.emit('analysis-progress', first);
    await until('C relayed to B', async () => heardB.length >= 1, 20_000, 50);
    await c.cleanup();
    a.events.emit('analysis-progress', { ...first, progress: 0.2 });
    await until('B heard A', async () => heardB.length >= 2, 20_000, 50);
    await settle();
    expect(heardC).to.have.length(1);
  });

  describe('a serve node and another process on one PostgreSQL', () => {
    let node: TestNode;
    let other: TestCore;

    before(async () => {
      const shared = { DATABASE_URL: await freshPostgresUrl('relay-sse') };
      node = await startTestNode(shared);
      other = await startTestCore(shared);
    });
    after(async () => {
      await other?.cleanup();
      await node?.cleanup();
    });

    it('GET /api/events on the node streams the progress and report made in the other process', async () => {
      const ctrl = new AbortController();
      const token = await tokenFor(node, 'viewer');
      const res = await fetch(`${baseUrl(node)}/api/events`, {
        headers: { ...bearer(token), accept: 'text/event-stream' },
        signal: ctrl.signal,
      });
      expect(res.status).to.equal(200);
      let text = '';
      const reading = (async () => {
        const decoder = new TextDecoder();
        try {
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) text += decoder.decode(chunk, { stream: true });
        } catch {
          // aborted
        }
      })();
      try {
        await until('the ready event', async () => text.includes('event: ready'), 10_000, 50);
        other.events.emit('analysis-progress', { analysisId: 77, studyInstanceUid: '1.2.3.77', status: 'running', progress: 0.25 });
        other.events.emit('report-changed', { reportId: 9, studyInstanceUid: '1.2.3.77', version: 1, status: 'draft', event: 'published' });
        await until('both events in the stream', async () => text.includes('event: report'), 20_000, 50);
        expect(text).to.include('"analysis_id":77');
        expect(text).to.include('"status":"running","progress":0.25');
        expect(text).to.include('"report_id":9');
      } finally {
        ctrl.abort();
        await reading;
      }
    });
  });

  it('SQLite: no relay (one machine, the bus is enough)', async () => {
    const core = await startTestCore();
    try {
      const relay = await EventsRelay.start(core.db, core.config.database, core.events, createLogger('silent'));
      expect(relay).to.equal(undefined);
    } finally {
      await core.cleanup();
    }
  });
});
