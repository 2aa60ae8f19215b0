import { defineConfig } from "vitest/config";

// In development the page is served by Vite and the gRPC-web calls go to pharosd
// through this proxy, so the page and its API share one origin as they do when pharosd
// serves dist/ itself. PHAROS_DEV_SERVER names the pharosd to use.
const pharos = process.env.PHAROS_DEV_SERVER ?? "http://127.0.0.1:7600";

export default defineConfig({
  // pharosd serves dist/ at "/"; relative asset URLs also work under a sub-path.
  base: "./",
  oxc: {
    jsx: { runtime: "automatic", importSource: "preact" },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    // uPlot is loaded only on the project page, in its own chunk.
    chunkSizeWarningLimit: 200,
  },
  server: {
    proxy: {
      "^/(pharos\\.v1\\.|grpc\\.)": {
        target: pharos,
        changeOrigin: false,
      },
    },
  },
  preview: {
    proxy: {
      "^/(pharos\\.v1\\.|grpc\\.)": {
        target: pharos,
        changeOrigin: false,
      },
    },
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
