import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Router from '@koa/router';
import type { Logger } from '../../logger.js';
import type { AppContext, AppRouter, AppState } from '../state.js';

/**
 * The web UI (ui/, built by Vite into ui/dist) under `/`: hashed assets cached for a year,
 * index.html revalidated, a Content-Security-Policy that allows only the node itself. Any other
 * GET path outside the node's own prefixes answers index.html (the app routes by #hash, so this
 * is only for links to `/something`); the API, DICOMweb, viewer and docs keep their routes and 404s.
 * Mounted last. Without a build the node still runs: `/` says how to build the UI.
 */

/** Where `npm run build:ui` writes (git-ignored); the compiled module sits in dist/src/http/routes/. */
export function webUiDir(): string {
  return fileURLToPath(new URL('../../../../ui/dist/', import.meta.url));
}

/** Paths the UI never answers: they belong to the node's other routers (their 404s stay 404s). */
const RESERVED = /^\/(api|dicom-web|wado|viewer|docs|metrics|healthz|readyz|openapi\.json)(\/|$)/;

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.json': 'application/json; charset=utf-8',
};

/** Scripts and styles from the node only, no inline code, no framing; the API and events on the same origin. */
export const WEB_UI_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

function securityHeaders(ctx: AppContext): void {
  ctx.set('Content-Security-Policy', WEB_UI_CSP);
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Referrer-Policy', 'no-referrer');
  ctx.set('X-Frame-Options', 'DENY');
}

export function webUiRoutes(log: Logger, dir = webUiDir()): AppRouter {
  const r = new Router<AppState>();
  const indexFile = path.join(dir, 'index.html');
  const built = fs.existsSync(indexFile);
  if (!built) log.warn({ dir }, 'web UI not built (npm run build:ui): / explains how; the API, DICOMweb and viewer work');
  let indexHtml: Buffer | undefined;

  const sendIndex = async (ctx: AppContext) => {
    securityHeaders(ctx);
    ctx.set('Cache-Control', 'no-cache');
    ctx.type = 'text/html; charset=utf-8';
    if (!built) {
      ctx.status = 503;
      ctx.body =
        '<!doctype html><html lang="en"><title>RadiantAI</title><h1>RadiantAI</h1>' +
        '<p>The web UI is not built. Run <code>npm run build:ui</code> (or <code>npm start</code>) and reload.</p>' +
        '<p>The viewer is at <a href="/viewer/">/viewer/</a>, the API reference at <a href="/docs">/docs</a>.</p></html>';
      return;
    }
    indexHtml ??= await fsp.readFile(indexFile);
    ctx.body = indexHtml;
  };

  r.get('/', sendIndex);
  r.get('/index.html', sendIndex);
  r.get('/assets/:file', async (ctx) => {
    const name = ctx.params.file;
    // Vite's file names only: no separators, no dot-dot.
    if (!built || !/^[\w.-]+$/.test(name) || name.startsWith('.')) return notFound(ctx);
    const file = path.join(dir, 'assets', name);
    const stat = await fsp.stat(file).catch(() => undefined);
    if (!stat?.isFile()) return notFound(ctx);
    securityHeaders(ctx);
    ctx.type = TYPES[path.extname(name).toLowerCase()] ?? 'application/octet-stream';
    // Content-hashed by Vite: a new build has new names, so these never change.
    ctx.set('Cache-Control', 'public, max-age=31536000, immutable');
    ctx.length = stat.size;
    ctx.body = fs.createReadStream(file);
  });
  r.get('/*rest', async (ctx, next) => {
    if (RESERVED.test(ctx.path) || /\.[a-z0-9]{1,8}$/i.test(ctx.path)) return next();
    return sendIndex(ctx);
  });
  return r;
}

function notFound(ctx: AppContext): void {
  ctx.status = 404;
  ctx.body = { error: { code: 'not_found', message: 'not found' } };
}
