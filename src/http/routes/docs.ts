import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { RouterInstance } from '@koa/router';
import { openApiJson } from '../openapi.js';
import { HttpError } from '../errors.js';
import type { AppState } from '../state.js';
import { documentRoutes } from '../api-doc.js';
import { conformanceStatement } from '../conformance.js';
import { markdownToHtml } from '../markdown.js';

/**
 * GET /openapi.json (no auth: it describes the API, holds no data) and GET /docs, Swagger UI
 * served from the installed swagger-ui-dist package (no CDN: nodes often have no internet);
 * GET /docs/conformance (and .md), the DICOM Conformance Statement (src/http/conformance.ts).
 */

const ASSET_DIR = path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

/** Only these files are served: a name in the URL never reaches the file system unchecked. */
const ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'index.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'swagger-ui-standalone-preset.js': 'text/javascript; charset=utf-8',
  'oauth2-redirect.html': 'text/html; charset=utf-8',
  'oauth2-redirect.js': 'text/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
  'favicon-16x16.png': 'image/png',
};

const PAGE = `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>RadiantAI API</title>
    <link rel="stylesheet" type="text/css" href="/docs/swagger-ui.css">
    <link rel="stylesheet" type="text/css" href="/docs/index.css">
    <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
    <link rel="icon" type="image/png" href="/docs/favicon-16x16.png" sizes="16x16">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="/docs/swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="/docs/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
    <script src="/docs/swagger-initializer.js" charset="UTF-8"></script>
  </body>
</html>
`;

const INITIALIZER = `window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: '/openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    persistAuthorization: false,
    // The default validator badge calls validator.swagger.io: nodes are often offline, and the
    // spec's address is nobody else's business.
    validatorUrl: null,
    oauth2RedirectUrl: window.location.origin + '/docs/oauth2-redirect.html',
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: 'StandaloneLayout'
  });
};
`;

export function registerDocsRoutes(r: RouterInstance<AppState>): void {
  r.get('/openapi.json', (ctx) => {
    ctx.type = 'application/json; charset=utf-8';
    ctx.body = openApiJson();
  });

  const page = (ctx: { type: string; body: unknown; set(k: string, v: string): void }) => {
    ctx.type = 'text/html; charset=utf-8';
    ctx.set('Cache-Control', 'no-cache');
    ctx.body = PAGE;
  };
  // The DICOM Conformance Statement (no auth, like the API description): HTML, or its Markdown source.
  let statement: string | undefined;
  const markdown = () => (statement ??= conformanceStatement());
  r.get('/docs/conformance', (ctx) => {
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = markdownToHtml(markdown(), 'RadiantAI DICOM Conformance Statement');
  });
  r.get('/docs/conformance.md', (ctx) => {
    ctx.type = 'text/markdown; charset=utf-8';
    ctx.body = markdown();
  });
  r.get('/docs', page);
  r.get('/docs/', page);
  r.get('/docs/index.html', page);
  r.get('/docs/swagger-initializer.js', (ctx) => {
    ctx.type = 'text/javascript; charset=utf-8';
    ctx.set('Cache-Control', 'no-cache');
    ctx.body = INITIALIZER;
  });
  r.get('/docs/:asset', async (ctx) => {
    const name = ctx.params.asset ?? '';
    const type = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined;
    if (!type) throw new HttpError(404, 'not_found', 'no such documentation asset');
    const file = path.join(ASSET_DIR, name);
    const stat = await fs.promises.stat(file).catch(() => undefined);
    if (!stat?.isFile()) throw new HttpError(404, 'not_found', 'no such documentation asset');
    ctx.type = type;
    ctx.length = stat.size;
    ctx.set('Cache-Control', 'public, max-age=86400');
    ctx.body = fs.createReadStream(file);
  });
}

documentRoutes(
  {
    method: 'get',
    path: '/openapi.json',
    tags: ['docs'],
    summary: 'This description (OpenAPI 3.1)',
    security: [],
    responses: { 200: { description: 'The document', content: { 'application/json': { schema: { type: 'object' } } } } },
  },
  {
    method: 'get',
    path: '/docs/conformance',
    tags: ['docs'],
    summary: "The DICOM Conformance Statement (PS3.2 layout), generated from the code's tables, as HTML",
    security: [],
    responses: { 200: { description: 'The statement', content: { 'text/html': { schema: { type: 'string' } } } } },
  },
  {
    method: 'get',
    path: '/docs/conformance.md',
    tags: ['docs'],
    summary: 'The DICOM Conformance Statement as Markdown (docs/conformance.md in the repository)',
    security: [],
    responses: { 200: { description: 'The statement', content: { 'text/markdown': { schema: { type: 'string' } } } } },
  },
);
