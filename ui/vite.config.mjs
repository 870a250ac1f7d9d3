import { fileURLToPath } from 'node:url';
import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';

/**
 * The web UI's build: `vite build --config ui/vite.config.mjs` writes ui/dist (git-ignored),
 * which the node serves under `/` (src/http/routes/web-ui.ts). `npm run dev:ui` serves it with
 * hot reload and passes the API through to a running node (RADIANT_URL, default :8042).
 */
const root = fileURLToPath(new URL('.', import.meta.url));
const node = process.env.RADIANT_URL ?? 'http://localhost:8042';

export default defineConfig({
  root,
  base: '/',
  plugins: [preact()],
  logLevel: 'warn',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    // The CSP allows no inline script: keep the module-preload helper in the bundle.
    modulePreload: { polyfill: false },
  },
  server: {
    proxy: Object.fromEntries(['/api', '/dicom-web', '/wado', '/viewer'].map((p) => [p, { target: node, changeOrigin: false }])),
  },
});
