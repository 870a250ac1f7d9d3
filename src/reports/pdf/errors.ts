/** A report could not be rendered or wrapped; the publisher turns it into its own failure. */
export class PdfReportError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PdfReportError';
  }
}
