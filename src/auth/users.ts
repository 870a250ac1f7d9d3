import { RadiantError } from '../errors.js';
import type { Db, Trx } from '../db/connection.js';
import {
  claimBootstrap,
  countUsers,
  findUserRow,
  insertUserRow,
  listUserRows,
  recordBootstrapUser,
  updateUserRow,
  type UserChanges,
  type UserRow,
} from '../catalog/users.js';
import { hashPassword } from './passwords.js';
import type { Role } from './permissions.js';

export interface User {
  id: number;
  username: string;
  role: Role;
  fullName: string | null;
  /** e.g. "MD": shown after the name in signatures. */
  credentials: string | null;
  active: boolean;
}

export { countUsers, touchLogin } from '../catalog/users.js';

function toUser(r: UserRow): User {
  return {
    id: Number(r.id),
    username: r.username,
    role: r.role as Role,
    fullName: r.full_name,
    credentials: r.credentials ?? null,
    active: Boolean(r.active),
  };
}

export async function findUserWithHash(db: Db, username: string): Promise<(User & { passwordHash: string }) | undefined> {
  const r = await findUserRow(db, { username });
  return r && { ...toUser(r), passwordHash: r.password_hash };
}

export async function findUserById(db: Db, id: number): Promise<User | undefined> {
  const r = await findUserRow(db, { id });
  return r && toUser(r);
}

/** How long a node answers "who is this token's user" from memory: the bound on a change made on another node. */
export const USER_CACHE_MS = 5000;
const USER_CACHE_MAX = 10_000;

/**
 * The users that tokens named lately, per database handle (one per node): every authenticated
 * request needs its user's role and active flag, and on SQLite that lookup shares the one
 * connection ingest keeps busy. A row is kept USER_CACHE_MS at most; updateUser forgets it on
 * the node that made the change, so there a disable or demotion holds from the next request;
 * another node (or a change written straight to the database) sees it within USER_CACHE_MS.
 * Unknown and disabled users are never kept: they must look up every time.
 */
const userCaches = new WeakMap<Db, Map<number, { until: number; user: Promise<User | undefined> }>>();

/** The active user with this id (the token check's lookup), from the cache while it is fresh; undefined if unknown or disabled. */
export async function findActiveUser(db: Db, id: number): Promise<User | undefined> {
  let cache = userCaches.get(db);
  if (!cache) userCaches.set(db, (cache = new Map()));
  const now = Date.now();
  const hit = cache.get(id);
  if (hit && hit.until > now) return hit.user;
  if (cache.size >= USER_CACHE_MAX) cache.clear();
  const user = findUserById(db, id).then((u) => (u?.active ? u : undefined));
  const entry = { until: now + USER_CACHE_MS, user };
  cache.set(id, entry);
  const forget = () => cache.get(id) === entry && cache.delete(id);
  // A failed lookup, an unknown or disabled user: not remembered.
  user.then((u) => u === undefined && forget(), forget);
  return user;
}

function forgetUser(db: Db, id: number): void {
  userCaches.get(db)?.delete(id);
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
  credentials?: string;
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
    return toUser(
      await insertUserRow(db, {
        username: u.username,
        password_hash,
        role: u.role,
        full_name: u.fullName ?? null,
        credentials: u.credentials ?? null,
      }),
    );
  } catch (err) {
    if (isUniqueViolation(err)) throw new UserExistsError(`user ${u.username} exists`);
    throw err;
  }
}

/** A user as the administration sees it. */
export interface UserSummary extends User {
  createdAt: string;
  lastLoginAt: string | null;
}

const isoOf = (v: string | Date | null): string | null => (v === null ? null : new Date(v).toISOString());

export async function listUsers(db: Db): Promise<UserSummary[]> {
  return (await listUserRows(db)).map((r) => ({
    ...toUser({ ...r, password_hash: '' }),
    createdAt: isoOf(r.created_at) ?? '',
    lastLoginAt: isoOf(r.last_login_at),
  }));
}

/** Refused: the change would leave the node with no active admin (nobody could manage users). */
export class LastAdminError extends RadiantError {
  constructor() {
    super('conflict', 'the last active admin cannot be demoted or disabled', { code: 'last_admin' });
    this.name = 'LastAdminError';
  }
}

export interface UserUpdate {
  role?: Role;
  fullName?: string | null;
  credentials?: string | null;
  active?: boolean;
  /** A new password (an admin's reset): hashed here. */
  password?: string;
}

/** Changes a user; false when there is no such user. LastAdminError when no active admin would be left. */
export async function updateUser(db: Db, id: number, u: UserUpdate): Promise<boolean> {
  const changes: UserChanges = {};
  if (u.role !== undefined) changes.role = u.role;
  if (u.fullName !== undefined) changes.full_name = u.fullName;
  if (u.credentials !== undefined) changes.credentials = u.credentials;
  if (u.active !== undefined) changes.active = u.active;
  if (u.password !== undefined) changes.password_hash = await hashPassword(u.password);
  if (!Object.keys(changes).length) return (await findUserRow(db, { id })) !== undefined;
  try {
    return await updateUserRow(db, id, changes, (admins) => {
      if (admins === 0) throw new LastAdminError();
    });
  } finally {
    // After the commit (a lookup racing it must not re-cache the old row), and on failure too.
    forgetUser(db, id);
  }
}

/** The name parts a signature is made of. */
export type NamedUser = Pick<User, 'username' | 'fullName' | 'credentials'>;

/** PN components have no room for their own delimiters. */
const pnPart = (s: string) => s.replace(/[\^=\\]/g, ' ').trim();

/**
 * A user's name as DICOM PN (PS3.5 6.2) "Family^Given^Middle^Prefix^Suffix" with the credentials
 * as the suffix: "Doe^Jane^^^MD". A full name already in PN form keeps its components; one given
 * as words ("Jane Doe") takes its last word as the family name; no name at all: the username.
 */
export function userPersonName(u: NamedUser): string {
  const name = u.fullName?.trim() || u.username;
  const parts = name.includes('^')
    ? (name.split('=')[0] ?? '').split('^').map((p) => p.trim())
    : ((w) => (w.length < 2 ? [name] : [w.at(-1)!, w.slice(0, -1).join(' ')]))(name.split(/\s+/).map(pnPart));
  const [family = '', given = '', middle = '', prefix = '', suffix = ''] = parts;
  const creds = u.credentials ? pnPart(u.credentials) : '';
  const all = [family, given, middle, prefix, [suffix, creds].filter(Boolean).join(' ')];
  return all.join('^').replace(/\^+$/, '');
}

/** The name a reader sees in a signature: "Jane Doe, MD" (given names first, then credentials). */
export function userDisplayName(u: NamedUser): string {
  return personDisplayName(userPersonName(u));
}

/** A PN (its alphabetic group) as a signature reads: "Doe^Jane^^^MD" → "Jane Doe, MD". */
export function personDisplayName(pn: string): string {
  const [family = '', given = '', middle = '', prefix = '', suffix = ''] = (pn.split('=')[0] ?? '').split('^').map((p) => p.trim());
  const name = [prefix, given, middle, family].filter(Boolean).join(' ');
  return suffix ? `${name}, ${suffix}` : name;
}
