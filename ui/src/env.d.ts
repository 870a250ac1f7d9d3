/** Vite bundles the imported stylesheet. */
declare module '*.css';
