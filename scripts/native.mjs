#!/usr/bin/env node
// Compile native/kiln_native.c (the copy thread that writes composed tars) into
// dist/native/kiln_native.node with the C compiler and the Node-API headers of the
// node-api-headers package (no node-gyp, no download of Node's sources). kiln works
// without it (src/compose/tar-writer.ts then writes the plan itself), so a missing compiler is a
// warning, not a failed build. Skipped when the module is newer than its source.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const src = join(root, "native", "kiln_native.c");
const out = join(root, "dist", "native", "kiln_native.node");
if (process.platform !== "linux") process.exit(0); // copy_file_range(2) is Linux's, and so is the module
if (existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs) process.exit(0);
let include;
try {
  include = join(dirname(createRequire(import.meta.url).resolve("node-api-headers/package.json")), "include");
} catch {
  include = "/usr/include/node"; // installed without dev dependencies: Node's own headers, when present
}
mkdirSync(dirname(out), { recursive: true });
const tmp = `${out}.tmp`;
// CC if set; else the usual names (g++ compiles C with -x c: the host contract names g++)
const compilers = process.env.CC ? [[process.env.CC]] : [["cc"], ["gcc"], ["g++", "-x", "c"]];
const failures = [];
for (const [cc, ...lang] of compilers) {
  try {
    execFileSync(cc, [...lang, "-O2", "-pthread", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-I", include, "-o", tmp, src], { stdio: ["ignore", "inherit", "inherit"] });
    renameSync(tmp, out);
    process.exit(0);
  } catch (err) {
    failures.push(`${cc}: ${err.message.split("\n")[0]}`);
  }
}
console.warn(`kiln: could not compile ${src} (${failures.join("; ")}); images are composed on the JavaScript thread with read/write instead`);
