import pino, { type Logger } from 'pino';
import { currentLogContext } from './observability/log-context.js';

export type { Logger };

/**
 * Structured JSON logs. Nothing that identifies a patient is ever logged: the code logs UIDs,
 * AE titles, statuses and sizes, never names, IDs, dates of birth or pixel data. The redact list
 * is a second line of defence should a header object slip into a log call. Each line of an HTTP
 * request or DICOM association carries its requestId / assocId (src/observability/log-context.ts).
 */
export function createLogger(level: string, opts: { stderr?: boolean; destination?: pino.DestinationStream } = {}): Logger {
  return pino(
    {
      level,
      base: { svc: 'radiant' },
      mixin: () => currentLogContext() ?? {},
      redact: {
        paths: ['patientName', 'patientId', 'patientBirthDate', '*.patientName', '*.patientId', '*.patientBirthDate'],
        censor: '[redacted]',
      },
    },
    opts.destination ?? (opts.stderr ? pino.destination(2) : undefined),
  );
}
