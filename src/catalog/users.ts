import type { Db, Trx } from '../db/connection.js';

/**
 * The users table and the first-admin bootstrap marker (migration 012). src/auth/users.ts holds
 * the rules (hashing, who may be first); this module reads and writes the rows.
 */

export interface UserRow {
  id: number;
  username: string;
  password_hash: string;
  /** One of src/auth/permissions.ts' roles (the column holds what was written). */
  role: string;
  full_name: string | null;
  /** Professional credentials shown after the name where the user signs ("MD"), migration 018. */
  credentials: string | null;
  active: boolean | number;
}

export type NewUserRow = Pick<UserRow, 'username' | 'password_hash' | 'role' | 'full_name' | 'credentials'>;

export async function countUsers(db: Db | Trx): Promise<number> {
  const [row] = (await db('users').count({ n: '*' })) as Array<{ n: number | string }>;
  return Number(row!.n);
}

export async function findUserRow(db: Db, by: { username: string } | { id: number }): Promise<UserRow | undefined> {
  return (await db('users').where(by).first()) as UserRow | undefined;
}

/** Inserts an active user; a taken username fails with the database's unique violation. */
export async function insertUserRow(db: Db | Trx, u: NewUserRow): Promise<UserRow> {
  const [row] = (await db('users')
    .insert({ ...u, active: true, created_at: new Date().toISOString() })
    .returning(['id', 'username', 'password_hash', 'role', 'full_name', 'credentials', 'active'])) as UserRow[];
  return row!;
}

export async function touchLogin(db: Db, id: number): Promise<void> {
  await db('users').where({ id }).update({ last_login_at: new Date().toISOString() });
}

/** Takes the bootstrap marker (row 1): a second taker fails with a unique violation. */
export async function claimBootstrap(trx: Trx): Promise<void> {
  await trx('auth_bootstrap').insert({ id: 1, user_id: 0, at: new Date().toISOString() });
}

/** Names the user the bootstrap created on its marker. */
export async function recordBootstrapUser(trx: Trx, userId: number): Promise<void> {
  await trx('auth_bootstrap').where({ id: 1 }).update({ user_id: userId });
}
