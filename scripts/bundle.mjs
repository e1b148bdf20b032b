#!/usr/bin/env node
// Bundle dist/ (what tsc wrote) into dist/bundle/: one module for the start-up path and a chunk per
// lazily imported part, so a command loads a handful of files instead of ~140 (node resolves,
// reads and compiles each one: ~120 ms of a no-op build). Packages in node_modules stay imports.
// bin/kiln.js runs the bundle; dist/ itself stays what the tests and `import` users see.
import { build } from "esbuild";
import { rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
await rm(`${root}dist/bundle`, { recursive: true, force: true });
await build({
  entryPoints: { main: `${root}dist/cli/main.js` },
  outdir: `${root}dist/bundle`,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  packages: "external",
  // dist/core/paths.js finds kiln's root two folders up; dist/bundle/ is two folders down too.
  logLevel: "warning",
});
