import type Koa from 'koa';
import type { RouterContext, RouterInstance } from '@koa/router';
import type { Principal } from '../auth/tokens.js';

/** What middleware leaves on ctx.state for the handlers after it. */
export interface AppState {
  requestId: string;
  /** The address clients reach the node at (`https://host/prefix`, no trailing slash; external-url.ts). */
  baseUrl: string;
  /** Its path part ('' unless a trusted proxy mounts the node under a prefix): relative Locations start with it. */
  basePath: string;
  principal?: Principal;
  /** Set by handlers to enrich the audit row of this request. */
  audit?: { patientId?: string; studyInstanceUid?: string; resourceId?: string; details?: Record<string, unknown> };
  /** The matched route's template, for logs and metrics (no UIDs, so no PHI, in labels). */
  routeName?: string;
}

export type AppContext = RouterContext<AppState>;
export type AppRouter = RouterInstance<AppState>;

/** Any request context, routed or not (middleware that runs outside the routers). */
export type BaseContext = Koa.ParameterizedContext<AppState>;

/**
 * The route template that served the request (never the raw path, which can hold UIDs).
 * `routerPath` is @koa/router's documented field for it; middleware outside the routers sees
 * contexts the router has not (yet) matched, where it is absent.
 */
export function routeOf(ctx: BaseContext): string {
  return ctx.state.routeName ?? (ctx as BaseContext & Partial<Pick<AppContext, 'routerPath'>>).routerPath ?? 'unmatched';
}
