import { RadiantError } from '../errors.js';
import type { Db } from '../db/connection.js';
import { hashPassword } from './passwords.js';
import type { Role } from './permissions.js';

export interface User {
  id: number;
  username: string;
  role: Role;
  fullName: string | null;
  active: boolean;
}

interface UserRow {
  id: number;
  username: string;
  password_hash: string;
  role: Role;
  full_name: string | null;
  active: boolean | number;
}

function toUser(r: UserRow): User {
  return { id: Number(r.id), username: r.username, role: r.role, fullName: r.full_name, active: Boolean(r.active) };
}

export async function countUsers(db: Db): Promise<number> {
  const [row] = (await db('users').count({ n: '*' })) as Array<{ n: number | string }>;
  return Number(row!.n);
}

export async function findUserWithHash(db: Db, username: string): Promise<(User & { passwordHash: string }) | undefined> {
  const r = (await db('users').where({ username }).first()) as UserRow | undefined;
  return r && { ...toUser(r), passwordHash: r.password_hash };
}

export async function findUserById(db: Db, id: number): Promise<User | undefined> {
  const r = (await db('users').where({ id }).first()) as UserRow | undefined;
  return r && toUser(r);
}

export class UserExistsError extends RadiantError {
  constructor(message: string) {
    super('conflict', message);
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

/** The first-admin bootstrap was already done, or users exist: the caller is not the first. */
export class BootstrapClosedError extends RadiantError {
  constructor(message: string) {
    super('conflict', message);
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
      await trx('auth_bootstrap').insert({ id: 1, user_id: 0, at: new Date().toISOString() });
      if ((await countUsers(trx)) > 0) throw new BootstrapClosedError('the node already has users');
      const user = await insertUser(trx, u, hash);
      await trx('auth_bootstrap').where({ id: 1 }).update({ user_id: user.id });
      return user;
    });
  } catch (err) {
    if (err instanceof BootstrapClosedError) throw err;
    if (isUniqueViolation(err) && !(err instanceof UserExistsError)) throw new BootstrapClosedError('the first admin already exists');
    throw err;
  }
}

function isUniqueViolation(err: unknown): boolean {
  return /unique|UNIQUE|duplicate key/.test(String(err));
}

async function insertUser(db: Db, u: NewUser, password_hash: string): Promise<User> {
  try {
    const [row] = (await db('users')
      .insert({
        username: u.username,
        password_hash,
        role: u.role,
        full_name: u.fullName ?? null,
        active: true,
        created_at: new Date().toISOString(),
      })
      .returning(['id', 'username', 'password_hash', 'role', 'full_name', 'active'])) as UserRow[];
    return toUser(row!);
  } catch (err) {
    if (isUniqueViolation(err)) throw new UserExistsError(`user ${u.username} exists`);
    throw err;
  }
}

export async function touchLogin(db: Db, id: number): Promise<void> {
  await db('users').where({ id }).update({ last_login_at: new Date().toISOString() });
}
