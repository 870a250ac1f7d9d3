import { createHash, randomUUID } from 'node:crypto';

/** A new UID under 2.25 (PS3.5 B.2): the decimal form of a random UUID; needs no registered root. */
export function newUid(): string {
  return `2.25.${BigInt(`0x${randomUUID().replace(/-/g, '')}`).toString(10)}`;
}

/** A stable UID under 2.25 for a thing named by text (same text, same UID), e.g. a model's device observer UID. */
export function stableUid(text: string): string {
  const h = createHash('sha256').update(text).digest('hex').slice(0, 32);
  // Set the UUID version (8, name-based custom) and variant bits, as 2.25 UIDs are UUIDs.
  const v = `${h.slice(0, 12)}8${h.slice(13, 16)}${((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16)}${h.slice(17)}`;
  return `2.25.${BigInt(`0x${v}`).toString(10)}`;
}
