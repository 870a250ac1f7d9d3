import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fetchedOhifDist } from '../../tools/fetch-ohif.js';
import Router from '@koa/router';
import type { RouteDeps } from '../deps.js';
import { viewerAuthScript, viewerLoginHtml } from '../viewer-auth.js';
import { inlineHashes, viewerCsp } from '../security-headers.js';
import type { AppContext, AppRouter, AppState } from '../state.js';

/** Where the viewer is served; OHIF's routerBasename and PUBLIC_URL follow it. */
export const VIEWER_BASE = '/viewer';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.gif': 'image/gif',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.txt': 'text/plain; charset=utf-8',
  '.xml': 'application/xml',
  '.onnx': 'application/octet-stream',
};

/**
 * The prebuilt OHIF viewer: OHIF_DIST, else the copy `npm run viewer:fetch` put under .cache/,
 * else an installed @ohif/app package's dist/.
 */
export function ohifDistDir(): string | undefined {
  const fromEnv = process.env.OHIF_DIST;
  if (fromEnv) return path.resolve(fromEnv);
  const fetched = fetchedOhifDist();
  if (fs.existsSync(path.join(fetched, 'index.html'))) return fetched;
  try {
    const require = createRequire(import.meta.url);
    const pkg = require.resolve('@ohif/app/package.json');
    const dist = path.join(path.dirname(pkg), 'dist');
    return fs.existsSync(path.join(dist, 'index.html')) ? dist : undefined;
  } catch {
    return undefined;
  }
}

const PUBLIC_PATH_ROOT = '__webpack_require__.p = "/";';
const PUBLIC_PATH_BASE = `__webpack_require__.p = "${VIEWER_BASE}/";`;

/** OHIF's dist assumes it lives at `/`: point PUBLIC_URL and the absolute asset links at the base. */
export function rewriteIndexHtml(html: string, base = VIEWER_BASE): string {
  const prefix = `${base}/`;
  return (
    html
      .replace(/window\.PUBLIC_URL="\/"/g, `window.PUBLIC_URL="${prefix}"`)
      .replace(/(\s(?:src|href|content))="\/(?!\/)/g, `$1="${prefix}`)
      // The service worker would cache PHI-bearing responses and fight the SPA fallback.
      .replace(/<script[^>]*init-service-worker\.js[^>]*><\/script>/g, '')
  );
}

/**
 * OHIF 3.13's SR loader reads `coords[0]` of every measurement group, so a TID 1501 group with
 * no SCOORD (an AI finding the model gave no region for: valid DICOM) throws and leaves the SR
 * viewport empty. Its own hook, called just before, gives such a group an empty coordinate, which
 * the loader then skips as "no referenced image": the localised findings still show. The same
 * hook names the Finding Site label by its meaning: OHIF labels it with the bare SNOMED code
 * ("363698007: right upper lobe"); and it drops the unit of a dimensionless value (the confidence):
 * OHIF writes a value's unit as its code value, which for UCUM's unity is "1" whatever its meaning
 * ("0.73 1").
 *
 * When the user loads the SR's findings into the measurement panel (OHIF's "continue tracking"
 * prompt), Cornerstone3D's adapters read each measurement group on its own: the finding's region
 * on its slice (SCOORD) and the same region in the frame of reference (SCOORD3D, a second group of
 * the same finding, content-tree.ts) would be listed twice, so the hydration hook keeps the one on
 * the image. It labels the finding with its words (the Finding's code meaning), the full text when
 * a Comment holds it: OHIF would otherwise take any Comment, such as a signed report's "AI-generated
 * finding, accepted by …", as the label.
 */
const SR_WITHOUT_REGIONS = `window.config.customizationService = Object.assign(window.config.customizationService || {}, {
  onBeforeSRAddMeasurement: { $set: function (args) {
    var m = args.measurement;
    // In place: the loader marks the object it gets back as loaded, and the SR viewport reads the original.
    if (m && m.labels) m.labels.forEach(function (l) {
      if (!l) return;
      if (l.label === '363698007') l.label = 'Finding site';
      if (typeof l.value === 'string') l.value = l.value.replace(/ 1$/, '');
    });
    return m && (!m.coords || !m.coords.length) ? Object.assign({}, m, { coords: [{}] }) : m;
  } },
  onBeforeSRHydration: { $set: { value: function (args) {
    var byType = args.storedMeasurementByAnnotationType;
    var onImage = {};
    Object.keys(byType).forEach(function (t) { byType[t].forEach(function (m) { if (m.sopInstanceUid) onImage[m.TrackingUniqueIdentifier] = true; }); });
    Object.keys(byType).forEach(function (t) {
      byType[t] = byType[t].filter(function (m) { return m.sopInstanceUid || !onImage[m.TrackingUniqueIdentifier]; });
      byType[t].forEach(function (m) {
        var words = m.description, comment = m.commentGroup && m.commentGroup.TextValue;
        if (words && m.annotation && m.annotation.data) m.annotation.data.label = comment && comment.indexOf(words) === 0 ? comment : words;
      });
    });
    return byType;
  } } },
});
`;

/**
 * OHIF 3.13's SR viewport tells its DICOMSRDisplay tool which findings to draw (the element's
 * tracking identifiers) in a React effect that renders nothing. When the referenced slice has
 * already rendered by then (a small series, a slice loaded before), the box and its label stay
 * undrawn until something else renders the viewport: about half the openings of a 5-slice CT.
 * So, whenever cornerstone enables a viewport element (the SR viewport mounting), its annotations
 * are rendered again every 100 ms until an SR annotation of the slice on screen is drawn in it
 * (its text box, `g[data-annotation-uid]`), for at most 20 s; only viewports of a tool group with
 * the DICOMSRDisplay tool, only while their slice carries an SR annotation.
 */
const SR_REDRAW = `(function () {
  var TOOL = 'DICOMSRDisplay';
  function srAnnotationsOn(ct, imageId) {
    return (ct.annotation.state.getAllAnnotations() || []).filter(function (a) {
      return a && a.metadata && a.metadata.toolName === TOOL && a.metadata.referencedImageId === imageId;
    });
  }
  function watch(detail) {
    var until = Date.now() + 20000;
    (function tick() {
      var cs = window.cornerstone, ct = window.cornerstoneTools;
      var engine = cs && cs.getRenderingEngine(detail.renderingEngineId);
      var viewport = engine && engine.getViewport(detail.viewportId);
      if (!viewport || !viewport.element || Date.now() > until) return;
      var group = ct.ToolGroupManager.getToolGroupForViewport(detail.viewportId, detail.renderingEngineId);
      var imageId = viewport.getCurrentImageId && viewport.getCurrentImageId();
      var mine = group && group.hasTool(TOOL) && imageId ? srAnnotationsOn(ct, imageId) : [];
      var drawn = mine.some(function (a) {
        return viewport.element.querySelector('g[data-annotation-uid="' + a.annotationUID + '"]');
      });
      if (drawn) return;
      if (mine.length) ct.utilities.triggerAnnotationRenderForViewportIds([detail.viewportId]);
      setTimeout(tick, 100);
    })();
  }
  (function attach() {
    var cs = window.cornerstone;
    if (!cs || !cs.eventTarget || !window.cornerstoneTools) return setTimeout(attach, 100);
    cs.eventTarget.addEventListener(cs.Enums.Events.ELEMENT_ENABLED, function (evt) { watch(evt.detail); });
  })();
})();
`;

/** The data source configuration OHIF 3.x's DICOMweb data source reads (see dist/app-config.js). */
export function appConfigJs(origin: string, authRequired = false): string {
  const config = {
    routerBasename: VIEWER_BASE,
    extensions: [],
    modes: [],
    customizationService: {},
    showStudyList: true,
    maxNumberOfWebWorkers: 2,
    showWarningMessageForCrossOrigin: false,
    showCPUFallbackMessage: true,
    showLoadingIndicator: true,
    strictZSpacingForVolumeViewport: true,
    groupEnabledModesFirst: true,
    maxNumRequests: { interaction: 100, thumbnail: 5, prefetch: 25 },
    showErrorDetails: 'always',
    investigationalUseDialog: { option: 'never' },
    defaultDataSourceName: 'dicomweb',
    dataSources: [
      {
        namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
        sourceName: 'dicomweb',
        configuration: {
          friendlyName: 'RadiantAI',
          name: 'radiant',
          wadoUriRoot: `${origin}/wado`,
          qidoRoot: `${origin}/dicom-web`,
          wadoRoot: `${origin}/dicom-web`,
          qidoSupportsIncludeField: true,
          supportsReject: false,
          imageRendering: 'wadors',
          thumbnailRendering: 'wadors',
          enableStudyLazyLoad: true,
          supportsFuzzyMatching: true,
          supportsWildcard: true,
          staticWado: false,
          singlepart: 'bulkdata,video',
          bulkDataURI: { enabled: true, relativeResolution: 'studies' },
          omitQuotationForMultipartRequest: true,
        },
      },
    ],
  };
  const gate = authRequired ? viewerAuthScript(VIEWER_BASE) : '';
  return `/** Generated by RadiantAI. */\n${gate}window.config = ${JSON.stringify(config, null, 2)};\n${SR_WITHOUT_REGIONS}${SR_REDRAW}`;
}

function isolationHeaders(ctx: AppContext, csp: string): void {
  ctx.set('Content-Security-Policy', csp);
  ctx.set('Cross-Origin-Opener-Policy', 'same-origin');
  ctx.set('Cross-Origin-Embedder-Policy', 'require-corp');
  ctx.set('Cross-Origin-Resource-Policy', 'same-origin');
  ctx.set('X-Content-Type-Options', 'nosniff');
}

/**
 * The OHIF viewer (static, no patient data) under /viewer, its generated app-config.js, and an
 * SPA fallback to index.html for OHIF's client-side routes (/viewer/viewer?StudyInstanceUIDs=…).
 */
export function viewerRoutes(deps: RouteDeps): AppRouter {
  const authRequired = !deps.config.auth.disabled;
  const r = new Router<AppState>();
  const dist = ohifDistDir();
  let indexHtml: string | undefined;
  /** Rebased JavaScript by file (null: nothing to rebase, stream the file). */
  const rebased = new Map<string, Buffer | null>();
  const loginHtml = viewerLoginHtml(VIEWER_BASE);
  // The inline scripts the viewer's pages carry are allowed by hash; index.html's once it is read.
  let csp = viewerCsp(inlineHashes(loginHtml));
  const isolation = (ctx: AppContext) => isolationHeaders(ctx, csp);

  const sendIndex = async (ctx: AppContext) => {
    if (!dist) {
      ctx.status = 503;
      ctx.body = { error: { code: 'viewer_unavailable', message: 'the OHIF viewer (@ohif/app) is not installed' } };
      return;
    }
    if (indexHtml === undefined) {
      indexHtml = rewriteIndexHtml(await fsp.readFile(path.join(dist, 'index.html'), 'utf8'));
      csp = viewerCsp([...inlineHashes(indexHtml), ...inlineHashes(loginHtml)]);
    }
    isolation(ctx);
    ctx.set('Cache-Control', 'no-cache');
    ctx.type = TYPES['.html']!;
    ctx.body = indexHtml;
  };

  r.get(`${VIEWER_BASE}/app-config.js`, (ctx) => {
    isolation(ctx);
    ctx.set('Cache-Control', 'no-store');
    ctx.type = TYPES['.js']!;
    ctx.body = appConfigJs(ctx.state.baseUrl, authRequired);
  });

  r.get(`${VIEWER_BASE}/login`, (ctx) => {
    isolation(ctx);
    ctx.set('Cache-Control', 'no-store');
    ctx.set('X-Frame-Options', 'DENY');
    ctx.type = TYPES['.html']!;
    ctx.body = loginHtml;
  });

  r.get(VIEWER_BASE, (ctx, next) => {
    if (ctx.path !== VIEWER_BASE) return next();
    // Relative asset URLs and OHIF's router both want the trailing slash.
    ctx.redirect(`${ctx.state.basePath}${VIEWER_BASE}/${ctx.querystring ? `?${ctx.querystring}` : ''}`);
  });

  const serve = async (ctx: AppContext) => {
    if (!dist) return sendIndex(ctx);
    let rel: string;
    try {
      rel = decodeURIComponent(ctx.path.slice(VIEWER_BASE.length + 1));
    } catch {
      ctx.status = 400;
      ctx.body = { error: { code: 'bad_request', message: 'malformed path' } };
      return;
    }
    if (rel === '' || rel === 'index.html' || rel.includes('\0')) return sendIndex(ctx);
    const file = path.resolve(dist, rel);
    if (file !== dist && !file.startsWith(dist + path.sep)) {
      ctx.status = 404;
      ctx.body = { error: { code: 'not_found', message: 'not found' } };
      return;
    }
    const stat = await fsp.stat(file).catch(() => undefined);
    if (!stat?.isFile()) {
      // A missing asset is a 404; anything else is one of OHIF's client routes.
      if (/\.[a-z0-9]{1,8}$/i.test(rel) && !rel.startsWith('viewer')) {
        ctx.status = 404;
        ctx.body = { error: { code: 'not_found', message: 'not found' } };
        return;
      }
      return sendIndex(ctx);
    }
    isolation(ctx);
    ctx.type = TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
    // Hashed bundles may be cached for long; the rest revalidates.
    ctx.set('Cache-Control', /\.[0-9a-f]{16}\./.test(rel) ? 'public, max-age=31536000, immutable' : 'no-cache');
    if (file.endsWith('.js') || file.endsWith('.css')) {
      // webpack's publicPath (app bundle, workers) and CSS font URLs are baked in as "/": rebase them.
      let body = rebased.get(file);
      if (body === undefined) {
        const text = await fsp.readFile(file, 'utf8');
        const out = file.endsWith('.css')
          ? text.replace(/url\(\/(?!\/)/g, `url(${VIEWER_BASE}/`)
          : text.split(PUBLIC_PATH_ROOT).join(PUBLIC_PATH_BASE);
        body = out === text ? null : Buffer.from(out);
        rebased.set(file, body);
      }
      if (body) {
        ctx.body = body;
        return;
      }
    }
    ctx.length = stat.size;
    ctx.body = fs.createReadStream(file);
  };
  r.get(`${VIEWER_BASE}/`, serve);
  r.get(`${VIEWER_BASE}/*rest`, serve);
  return r;
}
