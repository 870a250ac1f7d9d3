import jwt from 'jsonwebtoken';
import { createSecretKey } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { ExtractJwt, Strategy as JwtStrategy, type VerifiedCallback } from 'passport-jwt';
import type { Role } from './permissions.js';
import { RadiantError } from '../errors.js';

/** Bearer tokens: HS256 JWTs signed with SECRET_KEY, verified by passport-jwt. */

export interface TokenClaims {
  sub: string;
  username: string;
  role: Role;
  /** Set by jsonwebtoken on every token the node issues; required on every token it accepts. */
  iat?: number;
  exp?: number;
}

export interface Principal {
  userId: number;
  username: string;
  role: Role;
}

const ISSUER = 'radiant-ai';

/** Clock difference tolerated between the node that signed a token and the one checking it. */
export const CLOCK_SKEW_SECONDS = 60;
/** The longest lifetime TOKEN_EXPIRY_SECONDS allows; the cap when the verifier is given none. */
const MAX_LIFETIME_SECONDS = 30 * 24 * 3600;

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
 * Why a validly signed token is still refused: jsonwebtoken accepts a token without `exp` as
 * never expiring, so anyone who once held the key (or a token minted by hand) would keep access.
 */
export function lifetimeProblem(claims: TokenClaims, maxLifetimeSeconds: number, now = Date.now() / 1000): string | undefined {
  const { iat, exp } = claims;
  if (typeof exp !== 'number' || !Number.isFinite(exp)) return 'token has no expiry';
  if (typeof iat !== 'number' || !Number.isFinite(iat)) return 'token has no issue time';
  if (iat > now + CLOCK_SKEW_SECONDS) return 'token issued in the future';
  if (exp - iat > maxLifetimeSeconds + CLOCK_SKEW_SECONDS) return 'token lifetime too long';
  return undefined;
}

/** A lookup failed (the database is down, say): not the caller's fault, so never a 401. */
export class VerifierUnavailableError extends RadiantError {
  constructor(cause: unknown) {
    super('out-of-resources', 'user lookup failed', { cause });
    this.name = 'VerifierUnavailableError';
  }
}

/**
 * passport-jwt's strategy driven without passport's Express glue: the strategy calls back
 * success/fail/error on itself, so a per-request copy receives the outcome.
 */
export class TokenVerifier {
  private readonly strategy: JwtStrategy;

  constructor(
    secret: string,
    private readonly lookup: (claims: TokenClaims) => Promise<Principal | undefined>,
    /** Longest accepted exp - iat: TOKEN_EXPIRY_SECONDS (plus CLOCK_SKEW_SECONDS). */
    maxLifetimeSeconds = MAX_LIFETIME_SECONDS,
  ) {
    // A KeyObject made once: given the string, jsonwebtoken tries createPublicKey on it (and falls
    // back to a secret key) on every request, ~0.5 ms of CPU each. jsonwebtoken takes a KeyObject;
    // passport-jwt passes it through untouched, though its types only name strings and Buffers.
    const key = createSecretKey(Buffer.from(secret)) as unknown as Buffer;
    this.strategy = new JwtStrategy(
      {
        jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(),
        secretOrKeyProvider: (_req, _token, done) => done(null, key),
        algorithms: ['HS256'],
        issuer: ISSUER,
      },
      (claims: TokenClaims, done: VerifiedCallback) => {
        const problem = lifetimeProblem(claims, maxLifetimeSeconds);
        if (problem) return done(null, false, { message: problem });
        this.lookup(claims).then(
          (p) => (p ? done(null, p) : done(null, false, { message: 'user unknown or disabled' })),
          (err: unknown) => done(err, false),
        );
      },
    );
  }

  /** Resolves with the outcome; rejects with VerifierUnavailableError when the lookup failed. */
  verify(req: IncomingMessage): Promise<Outcome> {
    return new Promise((resolve, reject) => {
      const s = Object.create(this.strategy) as JwtStrategy & {
        success(user: Principal): void;
        fail(info?: unknown): void;
        error(err: Error): void;
      };
      s.success = (user) => resolve({ ok: true, principal: user });
      s.fail = (info) => resolve({ ok: false, reason: describe(info) });
      s.error = (err) => reject(new VerifierUnavailableError(err));
      s.authenticate(req as never, {});
    });
  }
}

function describe(info: unknown): string {
  if (info instanceof Error) return info.name === 'TokenExpiredError' ? 'token expired' : info.message;
  if (info && typeof info === 'object' && 'message' in info) return String((info as { message: unknown }).message);
  return 'no bearer token';
}
