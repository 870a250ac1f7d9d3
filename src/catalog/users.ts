import { isPostgres, type Db, type Trx } from '../db/connection.js';

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

/** A user as the administration lists it: no password hash. */
export type UserListRow = Omit<UserRow, 'password_hash'> & { created_at: string | Date; last_login_at: string | Date | null };

export async function listUserRows(db: Db): Promise<UserListRow[]> {
  return (await db('users')
    .select('id', 'username', 'role', 'full_name', 'credentials', 'active', 'created_at', 'last_login_at')
    .orderBy('username')) as UserListRow[];
}

export type UserChanges = Partial<Pick<UserRow, 'role' | 'full_name' | 'credentials' | 'active' | 'password_hash'>>;

/**
 * Changes a user and answers how many active admins are left, in one transaction that the caller's
 * check can roll back (throwing in `check`). On PostgreSQL the active admins' rows are locked
 * first, so two concurrent demotions cannot each leave the other as "the last admin".
 */
export async function updateUserRow(db: Db, id: number, changes: UserChanges, check: (activeAdmins: number) => void): Promise<boolean> {
  return db.transaction(async (trx) => {
    const admins = trx('users').select('id').where({ role: 'admin', active: true });
    if (isPostgres(db)) await admins.forUpdate();
    else await admins;
    const n = await trx('users').where({ id }).update(changes);
    if (n === 0) return false;
    const [row] = (await trx('users').where({ role: 'admin', active: true }).count({ n: '*' })) as Array<{ n: number | string }>;
    check(Number(row!.n));
    return true;
  });
}
