// Vite build and dev-server configuration of the web app (see README.md).
import { defineConfig } from "vite";
import preact from "@preact/preset-vite";

// The Sightline server the dev server forwards `/api` to.
const target = process.env.SIGHTLINE_URL || "http://127.0.0.1:7800";

export default defineConfig({
  plugins: [preact()],
  build: {
    target: "es2022",
    // The polyfill is an inline script, which the CSP (script-src 'self') would block.
    modulePreload: { polyfill: false },
    // No data: URIs for assets: everything is a file served by the binary.
    assetsInlineLimit: 0,
    sourcemap: false,
  },
  server: {
    proxy: {
      "/api": { target, changeOrigin: true },
    },
  },
});
