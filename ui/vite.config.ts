import { defineConfig } from "vitest/config";

// The window loads the built files from `dist/` (embedded in the app at compile time), so the
// build needs no dev server; tests run in jsdom.
export default defineConfig({
  clearScreen: false,
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "safari15",
    sourcemap: false,
  },
  test: {
    environment: "jsdom",
    globals: true,
  },
});
