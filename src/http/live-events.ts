import { PassThrough } from 'node:stream';
import type { AnalysisProgressEvent, EventBus, NodeEvents, ReportChangedEvent } from '../events.js';

/**
 * The node's events as Server-Sent Events (GET /api/events): one listener per bus fans out to
 * every open stream. What goes out is ids, UIDs and states only (no names, no report text), so
 * a client learns which row to re-read, never PHI. Arrivals are coalesced per study: a 500-slice
 * C-STORE is one `study` event per STUDY_EVENT_MS, not 500.
 */

/** Arrivals of one study announced at most this often. */
const STUDY_EVENT_MS = 1000;
/** A comment line this often keeps proxies and idle timers from closing a quiet stream. */
const HEARTBEAT_MS = 15_000;
/** A client this far behind (bytes queued) is cut off; it reconnects and re-reads its page. */
const MAX_BACKLOG = 1024 * 1024;

export type LiveEvent =
  | { type: 'study'; data: { study_instance_uid: string } }
  | {
      type: 'analysis';
      data: { analysis_id: number; study_instance_uid: string; status: AnalysisProgressEvent['status']; progress: number };
    }
  | {
      type: 'report';
      data: {
        report_id: number;
        study_instance_uid: string;
        version: number;
        status: ReportChangedEvent['status'];
        event: ReportChangedEvent['event'];
      };
    };

export class LiveEvents {
  private readonly streams = new Set<PassThrough>();
  private readonly pendingStudies = new Map<string, NodeJS.Timeout>();
  private nextId = 1;

  constructor(bus: EventBus) {
    const onStored = (e: NodeEvents['instance-stored'][0]) => this.studyChanged(e.studyInstanceUid);
    const onAnalysis = (e: AnalysisProgressEvent) =>
      this.send({
        type: 'analysis',
        data: { analysis_id: e.analysisId, study_instance_uid: e.studyInstanceUid, status: e.status, progress: e.progress },
      });
    const onReport = (e: ReportChangedEvent) =>
      this.send({
        type: 'report',
        data: { report_id: e.reportId, study_instance_uid: e.studyInstanceUid, version: e.version, status: e.status, event: e.event },
      });
    bus.on('instance-stored', onStored);
    bus.on('analysis-progress', onAnalysis);
    bus.on('report-changed', onReport);
  }

  /** A new client's stream: `ready` first, then every event until the client goes away. */
  open(): PassThrough {
    const stream = new PassThrough();
    this.streams.add(stream);
    // retry: how long an EventSource-style client waits before reconnecting.
    stream.write(`retry: 3000\nevent: ready\ndata: {}\n\n`);
    const beat = setInterval(() => stream.write(': keep-alive\n\n'), HEARTBEAT_MS);
    beat.unref();
    const done = () => {
      clearInterval(beat);
      this.streams.delete(stream);
    };
    stream.on('close', done);
    stream.on('error', done);
    return stream;
  }

  /** How many streams are open (tests, metrics). */
  get clients(): number {
    return this.streams.size;
  }

  private studyChanged(uid: string): void {
    if (this.pendingStudies.has(uid)) return;
    const t = setTimeout(() => {
      this.pendingStudies.delete(uid);
      this.send({ type: 'study', data: { study_instance_uid: uid } });
    }, STUDY_EVENT_MS);
    t.unref();
    this.pendingStudies.set(uid, t);
  }

  private send(e: LiveEvent): void {
    if (this.streams.size === 0) return;
    const frame = `id: ${this.nextId++}\nevent: ${e.type}\ndata: ${JSON.stringify(e.data)}\n\n`;
    for (const s of this.streams) {
      if (s.writableLength > MAX_BACKLOG) s.destroy();
      else s.write(frame);
    }
  }
}
