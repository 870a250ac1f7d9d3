import jwt from 'jsonwebtoken';
import type { IncomingMessage } from 'node:http';
import { ExtractJwt, Strategy as JwtStrategy, type VerifiedCallback } from 'passport-jwt';
import type { Role } from './permissions.js';

/** Bearer tokens: HS256 JWTs signed with SECRET_KEY, verified by passport-jwt. */

export interface TokenClaims {
  sub: string;
  username: string;
  role: Role;
}

export interface Principal {
  userId: number;
  username: string;
  role: Role;
}

const ISSUER = 'radiant-ai';

export function issueToken(secret: string, p: Principal, expiresInSeconds: number): string {
  return jwt.sign({ username: p.username, role: p.role } satisfies Omit<TokenClaims, 'sub'>, secret, {
    algorithm: 'HS256',
    subject: String(p.userId),
    issuer: ISSUER,
    expiresIn: expiresInSeconds,
  });
}

type Outcome = { ok: true; principal: Principal } | { ok: false; reason: string };

/**
 * passport-jwt's strategy driven without passport's Express glue: the strategy calls back
 * success/fail/error on itself, so a per-request copy receives the outcome.
 */
export class TokenVerifier {
  private readonly strategy: JwtStrategy;

  constructor(secret: string, private readonly lookup: (claims: TokenClaims) => Promise<Principal | undefined>) {
    this.strategy = new JwtStrategy(
      {
        jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(),
        secretOrKey: secret,
        algorithms: ['HS256'],
        issuer: ISSUER,
      },
      (claims: TokenClaims, done: VerifiedCallback) => {
        this.lookup(claims).then(
          (p) => (p ? done(null, p) : done(null, false, { message: 'user unknown or disabled' })),
          (err: unknown) => done(err, false),
        );
      },
    );
  }

  verify(req: IncomingMessage): Promise<Outcome> {
    return new Promise((resolve) => {
      const s = Object.create(this.strategy) as JwtStrategy & {
        success(user: Principal): void;
        fail(info?: unknown): void;
        error(err: Error): void;
      };
      s.success = (user) => resolve({ ok: true, principal: user });
      s.fail = (info) => resolve({ ok: false, reason: describe(info) });
      s.error = (err) => resolve({ ok: false, reason: err.message });
      s.authenticate(req as never, {});
    });
  }
}

function describe(info: unknown): string {
  if (info instanceof Error) return info.name === 'TokenExpiredError' ? 'token expired' : info.message;
  if (info && typeof info === 'object' && 'message' in info) return String((info as { message: unknown }).message);
  return 'no bearer token';
}
