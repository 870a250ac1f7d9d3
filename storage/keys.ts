import { isValidUid } from '../src/dicom/uids.js';
import { StorageError } from '../src/errors.js';

/**
 * Object keys. UIDs arrive from the network (C-STORE, STOW-RS) and end up as path segments,
 * so they are validated here rather than trusted: a UID that is not a UID never becomes a key.
 */

const MAX_KEY_LENGTH = 1024;

export function instanceKey(studyUid: string, seriesUid: string, sopUid: string): string {
  for (const [what, uid] of [
    ['Study Instance UID', studyUid],
    ['Series Instance UID', seriesUid],
    ['SOP Instance UID', sopUid],
  ] as const) {
    if (!isValidUid(uid)) throw new StorageError('invalid-input', `invalid ${what}: ${JSON.stringify(uid)}`);
  }
  return `studies/${studyUid}/series/${seriesUid}/instances/${sopUid}.dcm`;
}

function invalid(what: string, value: string, why: string): StorageError {
  // Keys can be long; keep the message readable in logs.
  const shown = value.length > 80 ? `${value.slice(0, 80)}...` : value;
  return new StorageError('invalid-input', `invalid storage ${what} ${JSON.stringify(shown)}: ${why}`);
}

function checkCharacters(what: string, value: string): void {
  if (value.length > MAX_KEY_LENGTH) throw invalid(what, value, `longer than ${MAX_KEY_LENGTH} characters`);
  if (value.includes('\\')) throw invalid(what, value, 'contains a backslash');
  // Control characters (NUL above all) truncate or confuse file system and HTTP APIs.
  if (/[\u0000-\u001f\u007f]/.test(value)) throw invalid(what, value, 'contains a control character');
  if (value.startsWith('/')) throw invalid(what, value, 'is absolute');
}

function checkSegment(what: string, value: string, segment: string): void {
  if (segment === '') throw invalid(what, value, 'has an empty path segment');
  if (segment === '.' || segment === '..') throw invalid(what, value, `has a "${segment}" path segment`);
}

/**
 * Every back end calls this before touching a key: a key is a relative '/'-separated path that
 * cannot climb out of the store's root on any of them.
 */
export function assertSafeKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0) throw invalid('key', String(key), 'is empty');
  checkCharacters('key', key);
  for (const segment of key.split('/')) checkSegment('key', key, segment);
}

/**
 * A list prefix may end inside a segment ("studies/1.2" matches "studies/1.2.3/...") or with a
 * '/', so only the complete segments before the last '/' are held to the key rules.
 */
export function assertSafePrefix(prefix: string): void {
  if (typeof prefix !== 'string') throw invalid('prefix', String(prefix), 'is not a string');
  if (prefix === '') return;
  checkCharacters('prefix', prefix);
  const segments = prefix.split('/');
  segments.pop();
  for (const segment of segments) checkSegment('prefix', prefix, segment);
}
