import { StorageError } from '../src/errors.js';
import type { ByteRange } from './types.js';

/** Rejects ranges that no back end could answer, before any I/O. */
export function assertValidRange(range: ByteRange): void {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || start < 0) {
    throw new StorageError('invalid-input', `invalid byte range start ${String(start)}`);
  }
  if (end !== undefined && (!Number.isSafeInteger(end) || end < start)) {
    throw new StorageError('invalid-input', `invalid byte range end ${String(end)} for start ${start}`);
  }
}

export function unsatisfiableRange(range: ByteRange, size: number, cause?: unknown): StorageError {
  return new StorageError(
    'invalid-input',
    `byte range ${range.start}-${range.end ?? ''} is not satisfiable for an object of ${size} bytes`,
    cause === undefined ? undefined : { cause },
  );
}

/** HTTP semantics: an end past the object is clamped; a start past it is unsatisfiable. */
export function clampRange(range: ByteRange, size: number): { start: number; end: number } {
  assertValidRange(range);
  if (range.start >= size) throw unsatisfiableRange(range, size);
  return { start: range.start, end: Math.min(range.end ?? size - 1, size - 1) };
}
