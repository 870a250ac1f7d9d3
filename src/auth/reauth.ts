import type { Db } from '../db/connection.js';
import { DUMMY_HASH, verifyPassword } from './passwords.js';
import { findUserWithHash } from './users.js';

/**
 * Re-authentication for a clinical act (signing a report): the signed-in user confirms with their
 * current password. False for a wrong password or an inactive or unknown user; the hash is
 * computed either way so the answer's time says nothing.
 */
export async function confirmPassword(db: Db, username: string, password: string): Promise<boolean> {
  const user = await findUserWithHash(db, username);
  return (await verifyPassword(password, user?.passwordHash ?? DUMMY_HASH)) && !!user?.active;
}
