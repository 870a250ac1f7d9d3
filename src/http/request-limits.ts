import type Koa from 'koa';
import type { IncomingHttpHeaders } from 'node:http';
import { TokenBuckets } from '../auth/rate-limit.js';
import type { Principal } from '../auth/tokens.js';
import { HttpError } from './errors.js';
import type { AppState, BaseContext } from './state.js';

/**
 * Request rate limits of the API and DICOMweb (token buckets of src/auth/rate-limit.ts), per
 * client address (every request under /api, /dicom-web and /wado, before authentication: a
 * flood of bad tokens costs the node nothing) and per authenticated user (in the guard of
 * src/http/security.ts: a user's requests count wherever they come from; a forged token cannot
 * drain someone else's bucket). An empty bucket answers 429 with Retry-After. In memory, per node.
 * Also the one cap on request bodies: a declared body above MAX_UPLOAD_BYTES is refused on every
 * route before it is read (the routes that read bodies cap what they read as it arrives).
 */

/** Where the limits apply: health checks, metrics and static files are left alone. */
const LIMITED = /^\/(?:api|dicom-web|wado)(?:\/|$)/;

export interface RateLimitSettings {
  perUser: number;
  perAddress: number;
  windowMs: number;
}

/**
 * The client's address: the socket's, or behind a trusted proxy the last X-Forwarded-For entry
 * (the one the nearest proxy added; entries before it are whatever the client sent).
 */
export function clientAddress(headers: IncomingHttpHeaders, socketAddress: string, trustProxy: boolean): string {
  if (!trustProxy) return socketAddress;
  const xff = headers['x-forwarded-for'];
  const last = (Array.isArray(xff) ? xff.join(',') : (xff ?? '')).split(',').pop()?.trim();
  return last && /^[0-9A-Fa-f:.[\]]{2,64}$/.test(last) ? last : socketAddress;
}

function tooMany(seconds: number, who: string): HttpError {
  return new HttpError(429, 'too_many_requests', `rate limit exceeded for this ${who}; retry in ${seconds} s`, undefined, {
    'Retry-After': String(seconds),
  });
}

export class RequestLimits {
  private readonly byUser?: TokenBuckets;
  private readonly byAddress?: TokenBuckets;

  constructor(
    settings: RateLimitSettings,
    private readonly trustProxy: boolean,
    private readonly maxBodyBytes: number,
  ) {
    if (settings.perUser > 0) this.byUser = new TokenBuckets(settings.perUser, settings.windowMs);
    if (settings.perAddress > 0) this.byAddress = new TokenBuckets(settings.perAddress, settings.windowMs);
  }

  /** The per-address limit and the body cap, for the whole app. */
  middleware(): Koa.Middleware<AppState> {
    return async (ctx, next) => {
      const declared = Number(ctx.get('content-length') || 0);
      if (declared > this.maxBodyBytes) {
        throw new HttpError(413, 'payload_too_large', `request body larger than ${this.maxBodyBytes} bytes (MAX_UPLOAD_BYTES)`, undefined, {
          Connection: 'close',
        });
      }
      if (this.byAddress && LIMITED.test(ctx.path)) {
        const wait = this.byAddress.take(`a:${clientAddress(ctx.headers, ctx.ip, this.trustProxy)}`);
        if (wait > 0) throw tooMany(wait, 'address');
      }
      await next();
    };
  }

  /** The per-user limit, once the guard knows who asks. */
  checkUser(ctx: BaseContext, principal: Principal): void {
    if (!this.byUser || !LIMITED.test(ctx.path)) return;
    const wait = this.byUser.take(`u:${principal.userId}`);
    if (wait > 0) throw tooMany(wait, 'user');
  }
}
