#!/usr/bin/env node
// Generate a synthetic kiln project for benchmarks.
//
//   node bench/gen-project.mjs DIR [N=200] [--seed S]
//
// Shape (deterministic for a given N and seed; mulberry32 PRNG, no Math.random):
//   ~10% base libraries      no dependencies
//   ~30% core libraries      1–3 deps on base
//   ~30% higher libraries    2–4 deps on base/core/earlier higher libraries
//   ~30% leaf applications   3–6 deps on anything below
// ~40% of packages are `files` packages, ~60% `script` packages. Every package
// installs /usr/share/bench/NAME.id; script packages read the .id file of each
// direct dependency from $SYSROOT, render a template from their own sources
// with sed and install a couple of files. DIR is wiped and rewritten.

import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pad = (i, w) => String(i).padStart(w, "0");

/** Pick k distinct items of `pool` (k clamped to the pool size). */
function pick(rand, pool, k) {
  const copy = [...pool];
  const out = [];
  k = Math.min(k, copy.length);
  for (let i = 0; i < k; i++) out.push(copy.splice(Math.floor(rand() * copy.length), 1)[0]);
  return out.sort();
}

const int = (rand, lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));

/** The package list: [{name, tier, kind, deps}] in a valid build order. */
export function designProject(n = 200, seed = 42) {
  const rand = mulberry32(seed);
  const nBase = Math.max(1, Math.round(n * 0.1));
  const nCore = Math.max(0, Math.round(n * 0.3));
  const nHigh = Math.max(0, Math.round(n * 0.3));
  const nApp = Math.max(0, n - nBase - nCore - nHigh);
  const w = String(n).length;
  const pkgs = [];
  const kind = () => (rand() < 0.4 ? "files" : "script");
  const base = [];
  for (let i = 0; i < nBase; i++) {
    const p = { name: `base-${pad(i, w)}`, tier: "base", kind: kind(), deps: [] };
    pkgs.push(p);
    base.push(p.name);
  }
  const core = [];
  for (let i = 0; i < nCore; i++) {
    const p = { name: `core-${pad(i, w)}`, tier: "core", kind: kind(), deps: pick(rand, base, int(rand, 1, 3)) };
    pkgs.push(p);
    core.push(p.name);
  }
  const high = [];
  for (let i = 0; i < nHigh; i++) {
    // Mostly core libraries, some base, and earlier higher libraries for depth.
    const pool = [...core, ...base, ...high.slice(-20)];
    const p = { name: `lib-${pad(i, w)}`, tier: "lib", kind: kind(), deps: pick(rand, pool.length ? pool : base, int(rand, 2, 4)) };
    pkgs.push(p);
    high.push(p.name);
  }
  for (let i = 0; i < nApp; i++) {
    const pool = [...high, ...core, ...base];
    pkgs.push({ name: `app-${pad(i, w)}`, tier: "app", kind: kind(), deps: pick(rand, pool, int(rand, 3, 6)) });
  }
  return pkgs;
}

function lorem(rand, words) {
  const vocab = ["kiln", "layer", "image", "store", "build", "graph", "cache", "digest", "arch", "boot", "root", "package", "script", "files", "eve", "oci"];
  const out = [];
  for (let i = 0; i < words; i++) out.push(vocab[Math.floor(rand() * vocab.length)]);
  return out.join(" ");
}

function filesRecipe(p, rand) {
  const deps = p.deps.length ? `depends: [${p.deps.join(", ")}]\n` : "";
  return {
    "build.yml":
      `kind: files\n` +
      `description: ${p.tier} data package ${p.name}\n` +
      `version: "1.${int(rand, 0, 9)}"\n` +
      deps +
      `files:\n` +
      `  - path: /etc/${p.name}/${p.name}.conf\n` +
      `    source: ${p.name}.conf\n` +
      `  - path: /usr/share/${p.name}/README\n` +
      `    source: README\n` +
      `    mode: "0644"\n` +
      `  - path: /usr/share/bench/${p.name}.id\n` +
      `    contents: "${p.name} files 1\\n"\n` +
      `  - path: /var/lib/${p.name}\n` +
      `    directory: true\n` +
      `    mode: "0750"\n` +
      `  - path: /usr/share/${p.name}/current\n` +
      `    symlink: README\n`,
    [`${p.name}.conf`]: `# ${p.name} configuration\nname = ${p.name}\nlevel = ${int(rand, 1, 9)}\nnote = ${lorem(rand, 8)}\n`,
    README: `${p.name}\n\n${lorem(rand, 40)}\n`,
  };
}

function scriptRecipe(p, rand) {
  const deps = p.deps.length ? `depends: [${p.deps.join(", ")}]\n` : "";
  const readDeps = p.deps.length
    ? `  for d in ${p.deps.join(" ")}; do cat "$SYSROOT/usr/share/bench/$d.id"; done > deps.txt\n`
    : `  : > deps.txt\n`;
  const libdir = p.tier === "app" ? `/usr/libexec/${p.name}` : `/usr/lib/${p.name}`;
  return {
    "build.yml":
      `kind: script\n` +
      `description: ${p.tier} ${p.tier === "app" ? "application" : "library"} ${p.name}\n` +
      `version: "2.${int(rand, 0, 9)}"\n` +
      deps +
      `sources:\n` +
      `  - path: main.sh.in\n` +
      `  - path: data.txt\n` +
      `script: |\n` +
      readDeps +
      `  n=$(wc -l < deps.txt)\n` +
      `  sed -e "s/@NAME@/$PKGNAME/g" -e "s/@ARCH@/$KILN_ARCH/g" -e "s/@NDEPS@/$n/g" main.sh.in > main.sh\n` +
      `  install -D -m 0755 main.sh "$DESTDIR/usr/bin/${p.name}"\n` +
      `  install -D -m 0644 deps.txt "$DESTDIR${libdir}/deps.txt"\n` +
      `  sort data.txt | uniq -c > "$BUILDDIR/counts"\n` +
      `  install -D -m 0644 "$BUILDDIR/counts" "$DESTDIR${libdir}/counts.txt"\n` +
      `  mkdir -p "$DESTDIR/usr/share/bench"\n` +
      `  echo "$PKGNAME script $(sha256sum data.txt | cut -c1-12)" > "$DESTDIR/usr/share/bench/$PKGNAME.id"\n`,
    "main.sh.in": `#!/bin/sh\n# @NAME@ for @ARCH@, built against @NDEPS@ packages\necho "@NAME@: ${lorem(rand, 6)}"\n`,
    "data.txt": Array.from({ length: 30 }, () => lorem(rand, 1)).join("\n") + "\n",
  };
}

/** Write the project into `dir` (wiped first). Returns the design. */
export function generateProject(dir, n = 200, seed = 42) {
  dir = resolve(dir);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, "pkg"), { recursive: true });
  writeFileSync(join(dir, "kiln.yml"), `# generated by bench/gen-project.mjs (N=${n}, seed=${seed})\nname: gen\narchs: [amd64]\nsourceDateEpoch: 1700000000\n`);
  const pkgs = designProject(n, seed);
  const rand = mulberry32(seed ^ 0x9e3779b9);
  for (const p of pkgs) {
    const pdir = join(dir, "pkg", p.name);
    mkdirSync(pdir);
    const files = p.kind === "files" ? filesRecipe(p, rand) : scriptRecipe(p, rand);
    for (const [name, text] of Object.entries(files)) writeFileSync(join(pdir, name), text);
  }
  return pkgs;
}

export function describeDesign(pkgs) {
  const kinds = { files: 0, script: 0 };
  const tiers = {};
  let edges = 0;
  for (const p of pkgs) {
    kinds[p.kind]++;
    tiers[p.tier] = (tiers[p.tier] ?? 0) + 1;
    edges += p.deps.length;
  }
  const depth = new Map();
  for (const p of pkgs) depth.set(p.name, 1 + Math.max(0, ...p.deps.map((d) => depth.get(d))));
  return { packages: pkgs.length, ...kinds, tiers, edges, depth: Math.max(...depth.values()) };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const args = process.argv.slice(2);
  let seed = 42;
  const si = args.indexOf("--seed");
  if (si >= 0) {
    seed = Number(args[si + 1]);
    args.splice(si, 2);
  }
  const [dir, nArg] = args;
  if (!dir) {
    console.error("usage: node bench/gen-project.mjs DIR [N=200] [--seed S]");
    process.exit(2);
  }
  const n = nArg === undefined ? 200 : Number(nArg);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`N must be a positive integer, not ${nArg}`);
    process.exit(2);
  }
  const pkgs = generateProject(dir, n, seed);
  const d = describeDesign(pkgs);
  console.log(`generated ${d.packages} packages in ${resolve(dir)}: ${d.files} files, ${d.script} script; tiers ${JSON.stringify(d.tiers)}; ${d.edges} dependency edges; depth ${d.depth}`);
}
