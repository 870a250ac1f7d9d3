import { SseParser } from '../lib/sse';
import { authHeaders, endSession } from './client';

/**
 * The node's live events (GET /api/events) read with fetch streaming, so the bearer token goes
 * in the Authorization header, never in a URL as EventSource would need. Reconnects after a
 * drop; stops when `signal` aborts. `onReconnect` lets a screen re-read what it may have missed.
 */
export interface LiveStudy {
  study_instance_uid: string;
}
export interface LiveAnalysis {
  analysis_id: number;
  study_instance_uid: string;
  status: string;
  progress: number;
}
export interface LiveReport {
  report_id: number;
  study_instance_uid: string;
  version: number;
  status: string;
  event: string;
}

export interface LiveHandlers {
  study?: (e: LiveStudy) => void;
  analysis?: (e: LiveAnalysis) => void;
  report?: (e: LiveReport) => void;
  onReconnect?: () => void;
  onState?: (connected: boolean) => void;
}

const RETRY_MS = 3000;

export function subscribeLive(h: LiveHandlers, signal: AbortSignal): void {
  let first = true;
  const run = async () => {
    while (!signal.aborted) {
      try {
        const res = await fetch('/api/events', {
          headers: { Accept: 'text/event-stream', ...authHeaders() },
          credentials: 'omit',
          cache: 'no-store',
          signal,
        });
        if (res.status === 401) {
          endSession('unauthorized');
          return;
        }
        if (!res.ok || !res.body) throw new Error(`events: ${res.status}`);
        const parser = new SseParser((e) => {
          let data: unknown;
          try {
            data = JSON.parse(e.data);
          } catch {
            return;
          }
          if (e.event === 'ready') {
            h.onState?.(true);
            if (!first) h.onReconnect?.();
            first = false;
          } else if (e.event === 'study') h.study?.(data as LiveStudy);
          else if (e.event === 'analysis') h.analysis?.(data as LiveAnalysis);
          else if (e.event === 'report') h.report?.(data as LiveReport);
        });
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          parser.push(value);
        }
      } catch {
        // Dropped or refused: try again shortly, unless the screen went away.
      }
      if (signal.aborted) return;
      h.onState?.(false);
      await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  };
  void run();
}
