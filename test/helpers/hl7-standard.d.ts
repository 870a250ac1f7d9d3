// hl7-standard ships no types; only what the tests use is declared.
declare module 'hl7-standard' {
  interface Segment {
    type: string;
    get(field: string): unknown;
  }

  export default class HL7 {
    constructor(raw: string, options?: { lineEndings?: string });
    transform(callback?: (err: unknown) => void): void;
    get(field: string, index?: number): unknown;
    getSegment(name: string): Segment;
    getSegments(name?: string): Segment[];
  }
}
