// Builds the web UI into dist/web/ (index.html and hashed assets), which `ringlet serve` sends as files.
// `vite --config web/app/vite.config.ts` serves it with live reload, forwarding /api to a running
// `ringlet serve` on its default address.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import preact from '@preact/preset-vite';
import { defineConfig, type Plugin } from 'vite';

const outDir = fileURLToPath(new URL('../../dist/web', import.meta.url));

// tsc compiles web/server/ into dist/web/server/ before this build runs, so the folder cannot be emptied
// whole; only the previous build's assets go, or every change would leave its hashed files behind.
const removeOldAssets: Plugin = {
  name: 'remove-old-assets',
  apply: 'build',
  buildStart() {
    fs.rmSync(`${outDir}/assets`, { recursive: true, force: true });
  },
};

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  // Relative asset URLs: the page works wherever the server mounts it.
  base: './',
  plugins: [preact({ devToolsEnabled: false }), removeOldAssets],
  build: { outDir, emptyOutDir: false, assetsDir: 'assets' },
  server: { proxy: { '/api': 'http://127.0.0.1:8080' } },
});
