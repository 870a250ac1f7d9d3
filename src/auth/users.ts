import { RadiantError } from '../errors.js';
import type { Db, Trx } from '../db/connection.js';
import { claimBootstrap, countUsers, findUserRow, insertUserRow, recordBootstrapUser, type UserRow } from '../catalog/users.js';
import { hashPassword } from './passwords.js';
import type { Role } from './permissions.js';

export interface User {
  id: number;
  username: string;
  role: Role;
  fullName: string | null;
  active: boolean;
}

export { countUsers, touchLogin } from '../catalog/users.js';

function toUser(r: UserRow): User {
  return { id: Number(r.id), username: r.username, role: r.role as Role, fullName: r.full_name, active: Boolean(r.active) };
}

export async function findUserWithHash(db: Db, username: string): Promise<(User & { passwordHash: string }) | undefined> {
  const r = await findUserRow(db, { username });
  return r && { ...toUser(r), passwordHash: r.password_hash };
}

export async function findUserById(db: Db, id: number): Promise<User | undefined> {
  const r = await findUserRow(db, { id });
  return r && toUser(r);
}

export class UserExistsError extends RadiantError {
  constructor(message: string) {
    super('conflict', message, { code: 'conflict' });
    this.name = 'UserExistsError';
  }
}

export interface NewUser {
  username: string;
  password: string;
  role: Role;
  fullName?: string;
}

export async function createUser(db: Db, u: NewUser): Promise<User> {
  return insertUser(db, u, await hashPassword(u.password));
}

/**
 * The first-admin bootstrap was already done, or users exist: the caller is not the first. One
 * message for both, which is what the caller answers: which of the two it lost to is no business
 * of a client.
 */
export class BootstrapClosedError extends RadiantError {
  constructor() {
    super('conflict', 'the first admin already exists', { code: 'conflict' });
    this.name = 'BootstrapClosedError';
  }
}

/**
 * Create the first user of an empty node, atomically: the bootstrap marker row (key 1, see
 * migration 012) and the user are inserted in one transaction, so of concurrent callers exactly
 * one succeeds; the others get BootstrapClosedError. Counting users first and inserting after
 * (what this replaced) let six concurrent requests make six admins.
 */
export async function createFirstUser(db: Db, u: NewUser): Promise<User> {
  // Hash before the transaction: scrypt takes a while and must not hold the marker row's lock.
  const hash = await hashPassword(u.password);
  try {
    return await db.transaction(async (trx) => {
      await claimBootstrap(trx);
      if ((await countUsers(trx)) > 0) throw new BootstrapClosedError();
      const user = await insertUser(trx, u, hash);
      await recordBootstrapUser(trx, user.id);
      return user;
    });
  } catch (err) {
    if (err instanceof BootstrapClosedError) throw err;
    if (isUniqueViolation(err) && !(err instanceof UserExistsError)) throw new BootstrapClosedError();
    throw err;
  }
}

function isUniqueViolation(err: unknown): boolean {
  return /unique|UNIQUE|duplicate key/.test(String(err));
}

async function insertUser(db: Db | Trx, u: NewUser, password_hash: string): Promise<User> {
  try {
    return toUser(await insertUserRow(db, { username: u.username, password_hash, role: u.role, full_name: u.fullName ?? null }));
  } catch (err) {
    if (isUniqueViolation(err)) throw new UserExistsError(`user ${u.username} exists`);
    throw err;
  }
}
