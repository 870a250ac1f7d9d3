import { createHash } from 'node:crypto';
import type Koa from 'koa';
import type { AppState } from './state.js';

/**
 * Security headers on every answer: no MIME sniffing, no Referer (URLs hold study UIDs), no
 * framing (clickjacking), a Content-Security-Policy by area, and Strict-Transport-Security when
 * the client reached the node over HTTPS (directly, or through a trusted proxy that says so).
 *
 * The policies:
 * - everything but the viewer and /docs (the web UI under /, the API's JSON): same-origin only,
 *   no inline script or style, no eval;
 * - /viewer (OHIF 3): its index.html's two inline scripts and the login page's by hash (computed
 *   from the page served, inlineHashes), WebAssembly codecs ('wasm-unsafe-eval'), web workers and
 *   images from blob:, inline styles (its CSS-in-JS injects <style> elements), and data: fonts;
 *   DICOMweb is same-origin (the generated app-config.js points at the node itself);
 * - /docs (Swagger UI): as the default, with inline styles and data: images.
 */

const COMMON = "default-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

const UI_CSP = `${COMMON}; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; worker-src 'self'`;

const DOCS_CSP = `${COMMON}; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'`;

export function viewerCsp(scriptHashes: readonly string[]): string {
  const scripts = ["'self'", ...scriptHashes.map((h) => `'${h}'`), "'wasm-unsafe-eval'"].join(' ');
  // OHIF shows an Encapsulated PDF (the report's PDF) in an <object> whose data is a blob: URL of
  // the fetched bulk data, so the viewer alone lets objects and frames load from blob:.
  const common = COMMON.replace("object-src 'none'", "object-src 'self' blob:");
  return (
    `${common}; frame-src 'self' blob:; script-src ${scripts}; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; ` +
    `font-src 'self' data:; connect-src 'self' data: blob:; worker-src 'self' blob:; media-src 'self' data: blob:`
  );
}

/** `sha256-…` sources of the inline <script> elements of a page, for its CSP. */
export function inlineHashes(html: string): string[] {
  const out: string[] = [];
  for (const m of html.matchAll(/<script(?![^>]*\ssrc=)[^>]*>([\s\S]*?)<\/script>/gi)) {
    out.push(`sha256-${createHash('sha256').update(m[1]!, 'utf8').digest('base64')}`);
  }
  return out;
}

/** The viewer's routes replace the CSP with viewerCsp() on what they serve (src/http/routes/viewer.ts). */
export function securityHeaders(opts: { hstsMaxAgeSeconds: number }): Koa.Middleware<AppState> {
  return async (ctx, next) => {
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('X-Frame-Options', 'DENY');
    ctx.set('Content-Security-Policy', ctx.path === '/docs' || ctx.path.startsWith('/docs/') ? DOCS_CSP : UI_CSP);
    // The external scheme (src/http/external-url.ts): https directly, or a trusted proxy's https.
    if (opts.hstsMaxAgeSeconds > 0 && ctx.state.baseUrl.startsWith('https:')) {
      ctx.set('Strict-Transport-Security', `max-age=${opts.hstsMaxAgeSeconds}`);
    }
    await next();
  };
}
