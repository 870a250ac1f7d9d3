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

export class UserExistsError extends Error {}

export async function createUser(
  db: Db,
  u: { username: string; password: string; role: Role; fullName?: string },
): Promise<User> {
  const password_hash = await hashPassword(u.password);
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
    if (/unique|UNIQUE/.test(String(err))) throw new UserExistsError(`user ${u.username} exists`);
    throw err;
  }
}

export async function touchLogin(db: Db, id: number): Promise<void> {
  await db('users').where({ id }).update({ last_login_at: new Date().toISOString() });
}
