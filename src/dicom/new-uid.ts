import { createHash, randomUUID } from 'node:crypto';

/**
 * UIDs under the UUID-derived root 2.25 (PS3.5 B.2): the decimal form of a 128-bit UUID, so no
 * organisational root is needed. dcmjs's DicomMetaDictionary.uid() is not used: it appends 39
 * random digits, which can exceed 2^128 and so is not a valid UUID-derived UID.
 */

function fromUuidBytes(bytes: Uint8Array): string {
  return `2.25.${BigInt(`0x${Buffer.from(bytes).toString('hex')}`).toString(10)}`;
}

/** A fresh UID from a random (version 4) UUID. */
export function newUid(): string {
  return fromUuidBytes(Buffer.from(randomUUID().replace(/-/g, ''), 'hex'));
}

/**
 * A UID derived from names (a version 8 UUID over their SHA-256), for things that must keep the
 * same UID every time they are rebuilt (a model's device observer, a measurement group).
 */
export function uidFromNames(...names: string[]): string {
  const b = createHash('sha256').update(JSON.stringify(names)).digest().subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x80;
  b[8] = (b[8]! & 0x3f) | 0x80;
  return fromUuidBytes(b);
}
