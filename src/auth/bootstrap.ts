import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from '../db/connection.js';
import type { Logger } from '../logger.js';
import { countUsers } from './users.js';

/**
 * Who may register the first admin of an empty node over HTTP. `open`: anyone who gets there
 * first (offline default, a lab on a closed network); `token`: only a caller presenting the
 * bootstrap token (online default), which is AUTH_BOOTSTRAP_TOKEN or a random one logged once at
 * start; `off`: nobody (`radiant user create` only). The token is worthless after the bootstrap:
 * the first admin is made once (src/auth/users.ts createFirstUser).
 */
export class FirstAdminBootstrap {
  private readonly token: Buffer | undefined;
  private readonly generated: boolean;

  constructor(
    readonly mode: 'open' | 'token' | 'off',
    configured?: string,
  ) {
    this.generated = mode === 'token' && configured === undefined;
    const token = mode === 'token' ? (configured ?? randomBytes(24).toString('base64url')) : undefined;
    this.token = token === undefined ? undefined : Buffer.from(token);
  }

  /** Why a first-admin registration presenting `presented` is refused, or undefined. */
  refusal(presented: string | undefined): string | undefined {
    if (this.mode === 'open') return undefined;
    if (this.mode === 'off') return 'first-admin registration over HTTP is off: use `radiant user create`';
    const given = Buffer.from(presented ?? '');
    if (given.length !== this.token!.length || !timingSafeEqual(given, this.token!)) {
      return 'first-admin registration needs the bootstrap token (logged at start, or AUTH_BOOTSTRAP_TOKEN)';
    }
    return undefined;
  }

  /**
   * Log a generated token once, at start and only while the node has no users: the operator
   * reads it from the log of the first start, as with other appliances' initial passwords.
   */
  async announce(db: Db, log: Logger): Promise<void> {
    if (!this.generated || (await countUsers(db)) > 0) return;
    log.warn(
      { bootstrapToken: this.token!.toString() },
      'no users yet: register the first admin with POST /api/auth/register and header X-Bootstrap-Token, or `radiant user create`',
    );
  }
}
