import { RadiantError } from '../../errors.js';

/** A report could not be rendered or wrapped; the publisher turns it into its own failure. */
export class PdfReportError extends RadiantError {
  constructor(message: string, options?: ErrorOptions) {
    super('internal', message, { cause: options?.cause });
    this.name = 'PdfReportError';
  }
}
