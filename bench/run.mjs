#!/usr/bin/env node
// kiln benchmarks.  `npm run bench` = `node bench/run.mjs`.
//
//   node bench/run.mjs [--section cold,noop,plan,rss,compose,disk,example-cold,example-noop,example-edit,example-boot]
//                      [--packages 200] [--jobs 2] [--reps N] [--kiln DIR] [--no-results] [--no-build] [--strict] [--list]
//
// Generates a synthetic project (bench/gen-project.mjs) into bench/work/,
// runs each selected section against a store in bench/work/store, prints a
// table and appends a dated section to bench/RESULTS.md. The image sections
// (compose, disk) use a ~400 MB image project (bench/gen-compose.mjs) in
// bench/work/compose/ instead; the example-* sections a copy of
// examples/kiln-os in bench/work/example (issue #10), side by side with
// bench/bare-example.sh. To add a benchmark,
// write `async function measureX(ctx)` returning rows and register it in
// SECTIONS below.

import { spawnSync } from "node:child_process";
import { appendFileSync, closeSync, cpSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { generateComposeProject } from "./gen-compose.mjs";
import { describeDesign, generateProject } from "./gen-project.mjs";

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(BENCH);
const WORK = join(BENCH, "work");
// The kiln checkout under test (--kiln DIR): its bin/kiln.js, dist/ and src/.
let KILN_DIR = ROOT;
let KILN = join(ROOT, "bin", "kiln.js");
const RESULTS = join(BENCH, "RESULTS.md");

// ---------------------------------------------------------------- options

function parseArgs(argv) {
  const o = { sections: [], packages: 200, jobs: 2, reps: undefined, results: true, build: true, list: false, strict: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = a.includes("=") ? a.slice(a.indexOf("=") + 1) : argv[++i];
      if (v === undefined) fail(`${a} needs a value`);
      return v;
    };
    const name = a.split("=")[0];
    if (name === "--section" || name === "-s") o.sections.push(...val().split(",").filter(Boolean));
    else if (name === "--packages" || name === "-n") o.packages = posInt(val(), a);
    else if (name === "--jobs" || name === "-j") o.jobs = posInt(val(), a);
    else if (name === "--reps") o.reps = posInt(val(), a);
    else if (name === "--kiln") o.kiln = resolve(val());
    else if (a === "--no-results") o.results = false;
    else if (a === "--no-build") o.build = false;
    else if (a === "--list") o.list = true;
    else if (a === "--strict") o.strict = true;
    else if (a === "-h" || a === "--help") {
      const lines = readFileSync(fileURLToPath(import.meta.url), "utf8").split("\n").slice(1);
      console.log(lines.slice(0, lines.findIndex((l) => !l.startsWith("//"))).map((l) => l.replace(/^\/\/ ?/, "")).join("\n"));
      process.exit(0);
    } else fail(`unknown option ${a} (try --help)`);
  }
  if (!o.sections.length) o.sections = Object.keys(SECTIONS);
  for (const s of o.sections) if (!SECTIONS[s]) fail(`unknown section '${s}'; sections: ${Object.keys(SECTIONS).join(", ")}`);
  return o;
}

function posInt(v, flag) {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) fail(`${flag} needs a positive integer, not '${v}'`);
  return n;
}

function fail(msg) {
  console.error(`bench: ${msg}`);
  process.exit(2);
}

// ---------------------------------------------------------------- running kiln

let TIME = null; // path of GNU time, or null when CPU/RSS cannot be measured

function findGnuTime() {
  const probe = () => spawnSync("/usr/bin/time", ["-f", "%M", "true"], { encoding: "utf8" }).status === 0;
  if (existsSync("/usr/bin/time") && probe()) return "/usr/bin/time"; // installed by scripts/host-deps.mjs bench
  console.log("bench: GNU time not available: CPU utilisation and peak RSS are not measured");
  return null;
}

/**
 * Preloaded with `--import` when asked (`selfRss`): at exit, the kiln process
 * writes its own peak RSS (getrusage RUSAGE_SELF, KiB) to $KILN_BENCH_RSS.
 * GNU time's %M is the largest process of the tree, which for image targets
 * is often mksquashfs or qemu-img rather than kiln.
 */
const SELF_RSS_HOOK = `data:text/javascript,${encodeURIComponent(
  'import{writeFileSync}from"node:fs";process.on("exit",()=>{try{writeFileSync(process.env.KILN_BENCH_RSS,String(process.resourceUsage().maxRSS))}catch{}});',
)}`;

/**
 * Run `node bin/kiln.js ARGS` once. Wall time from a monotonic clock around
 * the child; CPU (user+sys, including every descendant the child waited for:
 * bwrap, bash, tar) and peak RSS (largest single process) from GNU time;
 * with `selfRss`, also the kiln process's own peak RSS (`selfRssKiB`);
 * `env` replaces process.env (e.g. with KILN_DOWNLOADS).
 */
function kiln(args, { expect, selfRss, env: baseEnv = process.env } = {}) {
  const tf = join(WORK, ".time");
  const rf = join(WORK, ".rss");
  if (selfRss) rmSync(rf, { force: true });
  const argv = [process.execPath, ...(selfRss ? ["--import", SELF_RSS_HOOK] : []), KILN, ...args];
  const env = selfRss ? { ...baseEnv, KILN_BENCH_RSS: rf } : baseEnv;
  const t0 = process.hrtime.bigint();
  const r = TIME
    ? spawnSync(TIME, ["-f", "%e %U %S %M", "-o", tf, ...argv], { encoding: "utf8", maxBuffer: 256 << 20, env })
    : spawnSync(argv[0], argv.slice(1), { encoding: "utf8", maxBuffer: 256 << 20, env });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) {
    throw new Error(`kiln ${args.join(" ")} exited with ${r.status ?? r.signal}\n${(r.stderr || "").slice(-3000)}\n${(r.stdout || "").slice(-3000)}`);
  }
  const out = { wall, cpu: NaN, rssKiB: NaN, selfRssKiB: NaN, stdout: r.stdout };
  if (selfRss) out.selfRssKiB = existsSync(rf) ? Number(readFileSync(rf, "utf8")) : NaN;
  if (TIME) {
    const line = readFileSync(tf, "utf8").trim().split("\n").pop().split(/\s+/).map(Number);
    out.cpu = line[1] + line[2];
    out.rssKiB = line[3];
  }
  if (expect) expect(parseJsonLines(r.stdout), args);
  return out;
}

function parseJsonLines(s) {
  return s
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l));
}

/** For `build --json`: check the summary event has the expected counts. */
const expectSummary = (want) => (events, args) => {
  const s = events.find((e) => e.type === "summary");
  if (!s) throw new Error(`kiln ${args.join(" ")}: no summary event`);
  for (const [k, v] of Object.entries(want)) {
    if (s[k] !== v) throw new Error(`kiln ${args.join(" ")}: expected ${k}=${v}, got ${JSON.stringify(s)}`);
  }
};

/** For `plan --json`: check every target has the expected action. */
const expectPlan = (n, action) => (events, args) => {
  const p = events.find((e) => Array.isArray(e.targets));
  const ok = p && p.targets.length === n && p.targets.every((t) => t.action === action);
  if (!ok) throw new Error(`kiln ${args.join(" ")}: expected ${n} targets all '${action}'`);
};

// ---------------------------------------------------------------- statistics and formatting

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  const median = s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  return { median, min: s[0], max: s[s.length - 1], n: s.length };
}

const fmt = {
  s: (x) => (x < 10 ? `${x.toFixed(3)} s` : `${x.toFixed(2)} s`),
  cores: (x) => `${x.toFixed(2)} cores`,
  mib: (x) => `${(x / 1024).toFixed(0)} MiB`,
  /** KiB in, decimal megabytes out (the issue targets say "300 MB"). */
  mb: (x) => `${((x * 1024) / 1e6).toFixed(0)} MB`,
  mbs: (x) => `${x.toFixed(0)} MB/s`,
  ratio: (x) => `${x.toFixed(2)}×`,
};

/**
 * A result row. `target` is {max} or {min} in the same unit as the samples,
 * or undefined for figures reported for information.
 */
function row(name, samples, unit, target, note) {
  const st = stats(samples);
  let verdict = "info";
  if (target?.max !== undefined) verdict = st.median <= target.max ? "PASS" : "FAIL";
  if (target?.min !== undefined) verdict = st.median >= target.min ? "PASS" : "FAIL";
  const targetText = target?.max !== undefined ? `≤ ${fmt[unit](target.max)}` : target?.min !== undefined ? `≥ ${fmt[unit](target.min)}` : "—";
  return { name, reps: st.n, median: fmt[unit](st.median), range: `${fmt[unit](st.min)} – ${fmt[unit](st.max)}`, target: targetText, verdict, note, raw: st };
}

function table(rows) {
  const head = ["measurement", "reps", "median", "min – max", "target", "result"];
  const body = rows.map((r) => [r.name, String(r.reps), r.median, r.range, r.target, r.verdict]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) => cells.map((c, i) => c.padEnd(w[i])).join("  ");
  return [line(head), line(w.map((n) => "-".repeat(n))), ...body.map(line)].join("\n");
}

function markdownTable(rows) {
  const out = ["| measurement | reps | median | min – max | target | result |", "|---|---:|---:|---:|---:|:---:|"];
  for (const r of rows) out.push(`| ${r.name} | ${r.reps} | ${r.median} | ${r.range} | ${r.target} | ${r.verdict === "info" ? "—" : `**${r.verdict}**`} |`);
  return out.join("\n");
}

// ---------------------------------------------------------------- project and store

function storeArgs(ctx, store = ctx.store) {
  return ["-C", ctx.project, "--store", store, "--out", ctx.out];
}

function wipeStore(ctx) {
  rmSync(ctx.store, { recursive: true, force: true });
  rmSync(ctx.out, { recursive: true, force: true });
}

/** Make sure everything is built (untimed), then run one more no-op build to warm the page cache. */
function ensureWarm(ctx) {
  if (ctx.warm) return;
  kiln([...storeArgs(ctx), "-j", String(ctx.jobs), "--json", "build"], { expect: expectSummary({ failed: 0 }) });
  kiln([...storeArgs(ctx), "-j", String(ctx.jobs), "--json", "build"], { expect: expectSummary({ built: 0, cached: ctx.n }) });
  ctx.warm = true;
}

// ---------------------------------------------------------------- sections (one function per measurement)

/** CPU time of the whole machine from /proc/stat, in seconds: busy (user, nice, system, irq, softirq) and stolen by the hypervisor. */
function machineCpu() {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const hz = 100; // USER_HZ
  return { busy: (f[0] + f[1] + f[2] + f[5] + f[6]) / hz, steal: (f[7] ?? 0) / hz };
}

/**
 * (a) Cold build of every package into an empty store: wall time and how many
 * cores were busy, with -j JOBS and with kiln's default (cores + 2). Busy is
 * counted two ways: the CPU time of kiln's process tree (GNU time), and the
 * whole machine's (/proc/stat), which also holds the kernel's own threads
 * doing the build's file-system and namespace work (and any other load on the
 * machine). Target (issue #2, "keeps both cores busy"): with kiln's default,
 * the machine's busy cores ≥ 0.8 × cores.
 */
async function measureCold(ctx) {
  const reps = ctx.reps ?? 3;
  const cores = os.availableParallelism();
  const runs = { fixed: { walls: [], tree: [], machine: [] }, auto: { walls: [], tree: [], machine: [] } };
  for (let i = 0; i < reps; i++) {
    for (const mode of i % 2 ? ["auto", "fixed"] : ["fixed", "auto"]) {
      wipeStore(ctx);
      syncDisks();
      const m0 = machineCpu();
      const r = kiln([...storeArgs(ctx), ...(mode === "fixed" ? ["-j", String(ctx.jobs)] : []), "--json", "build"], { expect: expectSummary({ built: ctx.n, failed: 0 }) });
      const m1 = machineCpu();
      const o = runs[mode];
      o.walls.push(r.wall);
      o.tree.push(r.cpu / r.wall);
      o.machine.push((m1.busy - m0.busy) / r.wall);
      progress(`cold build ${i + 1}/${reps}, ${mode === "fixed" ? `-j ${ctx.jobs}` : `default -j (${cores + 2})`}: ${fmt.s(r.wall)}; kiln's processes ${fmt.cores(r.cpu / r.wall)}, machine ${fmt.cores((m1.busy - m0.busy) / r.wall)} busy, ${fmt.cores((m1.steal - m0.steal) / r.wall)} stolen`);
    }
  }
  ctx.warm = true;
  const rows = [];
  for (const [mode, label] of [["fixed", `-j ${ctx.jobs}`], ["auto", `default -j (cores + 2 = ${cores + 2})`]]) {
    const o = runs[mode];
    rows.push(row(`cold build, ${ctx.n} packages, ${label} (wall)`, o.walls, "s", undefined));
    if (TIME) rows.push(row(`cold build, ${label}: kiln's processes' CPU / wall (of ${cores})`, o.tree, "cores", undefined));
    rows.push(row(`cold build, ${label}: machine busy cores (/proc/stat; of ${cores})`, o.machine, "cores", mode === "auto" ? { min: 0.8 * cores } : undefined));
  }
  return rows;
}

/** (b) A second `build` with nothing changed: everything cached. Target ≤ 0.5 s. */
async function measureNoop(ctx) {
  ensureWarm(ctx);
  const reps = ctx.reps ?? 7;
  const walls = [];
  for (let i = 0; i < reps; i++) {
    const r = kiln([...storeArgs(ctx), "-j", String(ctx.jobs), "--json", "build"], { expect: expectSummary({ built: 0, cached: ctx.n }) });
    walls.push(r.wall);
  }
  progress(`no-op build: ${walls.map((w) => w.toFixed(3)).join(" ")} s`);
  return [row(`no-op build, ${ctx.n} cached (wall)`, walls, "s", { max: 0.5 })];
}

/** (c) `plan` against the warm store (every key computed, nothing built). Target ≤ 1 s. Also `plan` against an empty store, for information. */
async function measurePlan(ctx) {
  ensureWarm(ctx);
  const reps = ctx.reps ?? 7;
  const warm = [];
  for (let i = 0; i < reps; i++) warm.push(kiln([...storeArgs(ctx), "--json", "plan"], { expect: expectPlan(ctx.n, "cached") }).wall);
  progress(`plan (warm store): ${warm.map((w) => w.toFixed(3)).join(" ")} s`);
  const empty = join(WORK, "empty-store");
  const cold = [];
  for (let i = 0; i < Math.min(reps, 3); i++) {
    rmSync(empty, { recursive: true, force: true });
    cold.push(kiln([...storeArgs(ctx, empty), "--json", "plan"], { expect: expectPlan(ctx.n, "build") }).wall);
  }
  rmSync(empty, { recursive: true, force: true });
  progress(`plan (empty store): ${cold.map((w) => w.toFixed(3)).join(" ")} s`);
  return [row(`plan, ${ctx.n} packages, all cached (wall)`, warm, "s", { max: 1 }), row(`plan, ${ctx.n} packages, empty store (wall)`, cold, "s", undefined)];
}

/** (d) Peak resident memory of the no-op build (the kiln process; GNU time %M). */
async function measureRss(ctx) {
  if (!TIME) return [];
  ensureWarm(ctx);
  const reps = ctx.reps ? Math.min(ctx.reps, 3) : 3;
  const rss = [];
  for (let i = 0; i < reps; i++) rss.push(kiln([...storeArgs(ctx), "-j", String(ctx.jobs), "--json", "build"], { expect: expectSummary({ built: 0 }) }).rssKiB);
  progress(`no-op build peak RSS: ${rss.map((k) => fmt.mib(k)).join(" ")}`);
  return [row(`no-op build peak RSS`, rss, "mib", undefined)];
}


// ---------------------------------------------------------------- the image project (compose, disk)

/** Sections that use the image project of bench/gen-compose.mjs, not the synthetic package graph. */
const IMAGE_SECTIONS = ["compose", "disk"];
/** Fixed, so the variant does not depend on `git describe` of the checkout (kiln's default). */
const IMAGE_KNOBS = ["ROOTFS_VERSION=bench"];
const IMAGE_EPOCH = 1700000000; // sourceDateEpoch in gen-compose.mjs's kiln.yml
const MB = 1e6;

/**
 * The image project in bench/work/compose/ (project/, store/, out/), built
 * once per run. The store is kept between runs (the packages take ~20 s to
 * build); when `kiln plan` finds any package not cached (a changed recipe or
 * a kiln whose keys changed), store and out are wiped and everything is
 * rebuilt, so the store never holds more than one copy of the ~400 MB.
 */
function ensureImageProject(ctx) {
  if (ctx.image) return ctx.image;
  const dir = join(WORK, "compose");
  const img = { dir, project: join(dir, "project"), store: join(dir, "store"), out: join(dir, "out"), bareOut: join(dir, "bare-out") };
  img.args = ["-C", img.project, "--store", img.store, "--out", img.out];
  const { packages } = generateComposeProject(img.project);
  img.packages = packages.length;
  const plan = kiln([...img.args, "--json", "plan"]);
  const targets = parseJsonLines(plan.stdout).find((e) => Array.isArray(e.targets))?.targets ?? [];
  if (targets.length !== packages.length || !targets.every((t) => t.action === "cached")) {
    rmSync(img.store, { recursive: true, force: true });
    rmSync(img.out, { recursive: true, force: true });
    const r = kiln([...img.args, "-j", String(ctx.jobs), "--json", "build"], { expect: expectSummary({ built: packages.length, failed: 0 }) });
    progress(`built the ${packages.length} packages of the image project: ${fmt.s(r.wall)}`);
  }
  ctx.image = img;
  return img;
}

/** `build --json` of image targets: every package cached, and each named output made (false) or reused (true). */
const expectOutputs = (want) => (events, args) => {
  const s = events.find((e) => e.type === "summary");
  if (s && (s.built !== 0 || s.failed !== 0)) throw new Error(`kiln ${args.join(" ")}: expected every package cached, got ${JSON.stringify(s)}`);
  const outputs = events.find((e) => e.type === "result")?.data?.outputs ?? [];
  for (const [name, cached] of Object.entries(want)) {
    const o = outputs.find((x) => x.name === name);
    if (!o) throw new Error(`kiln ${args.join(" ")}: no output ${name}`);
    if (o.cached !== cached) throw new Error(`kiln ${args.join(" ")}: expected ${name} to be ${cached ? "reused" : "built"}, but it was ${o.cached ? "reused" : "built"}`);
    const done = events.find((e) => e.type === "done" && e.target?.startsWith(name === "rootfs.tar" ? "rootfs/" : `${name}/`));
    if (!done || done.cached !== cached) throw new Error(`kiln ${args.join(" ")}: the done event of ${name} does not say cached=${cached}`);
  }
};

/** target id prefix → ms of the `done` events of a `build --json` run (image targets only). */
function stepMs(stdout) {
  const out = {};
  for (const e of parseJsonLines(stdout)) if (e.type === "done" && !e.target.startsWith("pkg/")) out[e.target.split("/")[0]] = e.ms;
  return out;
}

/** name → ms of the parts of the rootfs stage's `done` event (layers: the tree made from the layers; tar: written, first entry to complete). */
function rootfsParts(stdout) {
  const done = parseJsonLines(stdout).find((e) => e.type === "done" && e.target.startsWith("rootfs/"));
  return Object.fromEntries((done?.parts ?? []).map((p) => [p.name, p.ms]));
}

/** The output (name → {path, size}) of a `build --json` run. */
function outputsOf(stdout) {
  const outs = parseJsonLines(stdout).find((e) => e.type === "result")?.data?.outputs ?? [];
  return Object.fromEntries(outs.map((o) => [o.name, o]));
}

/** Files of out/<arch>/<variant>/ (every variant) and records matching `record` under out/.kiln/records/<arch>/, removed. */
function removeOutputs(img, names, recordDirFiles) {
  const archDir = join(img.out, "amd64");
  for (const v of existsSync(archDir) ? readdirSync(archDir) : []) {
    if (v === "log") continue;
    for (const n of names) rmSync(join(archDir, v, n), { force: true });
  }
  const recs = join(img.out, ".kiln", "records", "amd64");
  for (const e of existsSync(recs) ? readdirSync(recs, { withFileTypes: true }) : []) {
    if (e.isFile() && recordDirFiles.file?.test(e.name)) rmSync(join(recs, e.name), { force: true });
    if (e.isDirectory() && recordDirFiles.variantDir) {
      for (const f of readdirSync(join(recs, e.name))) if (f.endsWith(".json")) rmSync(join(recs, e.name, f), { force: true });
    }
  }
}

/**
 * The layer blobs composing rootfs.tar reads: the image refs of the resolved
 * yml (images/out/rootfs-<variant>.yml) → store index.json → manifests →
 * layers, in the order compose applies them.
 */
function composeLayers(img) {
  const outDir = join(img.project, "images", "out");
  const yml = readdirSync(outDir).find((f) => /^rootfs-.*\.yml$/.test(f));
  if (!yml) throw new Error(`no resolved rootfs yml in ${outDir}`);
  const refs = [...readFileSync(join(outDir, yml), "utf8").matchAll(/\b(kiln\/[a-z0-9._-]+:[0-9a-f]{8,})\b/g)].map((m) => m[1]);
  const index = JSON.parse(readFileSync(join(img.store, "index.json"), "utf8"));
  const blob = (digest) => join(img.store, "blobs", ...digest.split(":"));
  const layers = [];
  for (const ref of refs) {
    const desc = index.manifests.find((m) => m.annotations?.["org.opencontainers.image.ref.name"] === ref);
    if (!desc) throw new Error(`${ref} is not in ${img.store}/index.json`);
    const manifest = JSON.parse(readFileSync(blob(desc.digest), "utf8"));
    for (const l of manifest.layers) layers.push({ path: blob(l.digest), size: statSync(blob(l.digest)).size });
  }
  return { refs, layers, bytes: layers.reduce((n, l) => n + l.size, 0) };
}

/** Run a command (stdout to `stdoutFile` or discarded): wall time; CPU (user+sys incl. children) and peak RSS of its largest process from GNU time; its stderr. */
function timed(argv, { stdoutFile, env } = {}) {
  const tf = join(WORK, ".time");
  const fd = stdoutFile ? openSync(stdoutFile, "w") : "ignore";
  try {
    const t0 = process.hrtime.bigint();
    const r = TIME
      ? spawnSync(TIME, ["-f", "%U %S %M", "-o", tf, ...argv], { stdio: ["ignore", fd, "pipe"], encoding: "utf8", env })
      : spawnSync(argv[0], argv.slice(1), { stdio: ["ignore", fd, "pipe"], encoding: "utf8", env });
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.status !== 0) throw new Error(`${argv.join(" ").slice(0, 300)} exited with ${r.status ?? r.signal}\n${(r.stderr || "").slice(-3000)}`);
    const t = TIME ? readFileSync(tf, "utf8").trim().split("\n").pop().split(/\s+/).map(Number) : [NaN, NaN, NaN];
    return { wall, cpu: t[0] + t[1], rssKiB: t[2], stderr: r.stderr || "" };
  } finally {
    if (typeof fd === "number") closeSync(fd);
  }
}

const syncDisks = () => spawnSync("sync");

/** One rep of a side-by-side pair: kiln first on even reps, the bare side first on odd ones (neither always meets a warmer machine). */
function repPair(i, kilnRun, bareRun) {
  if (i % 2 === 0) {
    const k = kilnRun();
    return [k, bareRun()];
  }
  const b = bareRun();
  return [kilnRun(), b];
}

/**
 * (e) `kiln build rootfs.tar` of the ~400 MB image project (bench/gen-compose.mjs:
 * a 250 MiB package of 4 large files, 3 of 1500 small files, kernel, init,
 * onboot and services), recomposed each rep, against `cat` of exactly the
 * layer blobs compose reads into one file on the same file system; neither
 * fsyncs (kiln does not fsync rootfs.tar); page cache warm for both (one
 * untimed run of each; `sync` before every timed one). Targets: kiln's
 * MB/s ≥ 0.70 × cat's, peak RSS (GNU time %M) ≤ 300 MB. Each rep also
 * composes with `--profile dev` (no provenance, so no sha256 of the tar),
 * against the same cat run, and times `kiln --version` (node's start-up and
 * kiln's modules: what any kiln command costs before it does anything), to
 * show the best kiln/cat that start-up leaves: cat / (start-up + cat). The
 * step's parts (its done event) split it: the layers applied (the tree), and
 * the tar written, from its first entry to complete, against cat.
 */
async function measureCompose(ctx) {
  const img = ensureImageProject(ctx);
  const reps = ctx.reps ?? 5;
  const catOut = join(img.out, "cat.tar");
  const build = (extra = []) => {
    // the tar and its record (so it is composed again); the resolved yml stays remembered, as in a rebuild after a package change
    removeOutputs(img, ["rootfs.tar"], { file: /^rootfs-(?!.*\.yml\.json$).*\.json$/ });
    syncDisks();
    return kiln([...img.args, "--json", "build", "rootfs.tar", ...extra, ...IMAGE_KNOBS], { expect: expectOutputs({ "rootfs.tar": false }) });
  };
  const warm = build(); // also writes images/out/rootfs-<variant>.yml, which names the refs
  const { layers, bytes } = composeLayers(img);
  const tarSize = outputsOf(warm.stdout)["rootfs.tar"].size;
  const cat = () => {
    rmSync(catOut, { force: true });
    syncDisks();
    return timed(["cat", ...layers.map((l) => l.path)], { stdoutFile: catOut });
  };
  cat();
  if (statSync(catOut).size !== bytes) throw new Error(`cat wrote ${statSync(catOut).size} bytes, expected ${bytes}`);
  progress(`rootfs.tar ${(tarSize / MB).toFixed(0)} MB from ${layers.length} layers of ${(bytes / MB).toFixed(0)} MB; warm-up: kiln ${fmt.s(warm.wall)}`);
  const kw = [];
  const cw = [];
  const kt = [];
  const ct = [];
  const ratio = [];
  const step = [];
  const stepRatio = [];
  const rss = [];
  const dw = [];
  const dRatio = [];
  const dStepRatio = [];
  const startup = [];
  const ceiling = [];
  const layersMs = [];
  const tarRatio = [];
  const dTarRatio = [];
  for (let i = 0; i < reps; i++) {
    const k = build();
    const c = cat();
    // the dev profile: no provenance, so the tar is not hashed (sha256 alone runs at ~1.8 GB/s here, slower than cat)
    const d = build(["--profile", "dev"]);
    const dms = stepMs(d.stdout).rootfs;
    dw.push(d.wall);
    dRatio.push(tarSize / d.wall / (bytes / c.wall));
    dStepRatio.push(tarSize / (dms / 1000) / (bytes / c.wall));
    const ms = stepMs(k.stdout).rootfs;
    kw.push(k.wall);
    cw.push(c.wall);
    kt.push(tarSize / MB / k.wall);
    ct.push(bytes / MB / c.wall);
    ratio.push(tarSize / k.wall / (bytes / c.wall));
    step.push(tarSize / MB / (ms / 1000));
    stepRatio.push(tarSize / (ms / 1000) / (bytes / c.wall));
    rss.push(k.rssKiB);
    const v = timed([process.execPath, KILN, "--version"]);
    startup.push(v.wall);
    const parts = rootfsParts(k.stdout);
    const dParts = rootfsParts(d.stdout);
    layersMs.push(parts.layers / 1000, dParts.layers / 1000);
    tarRatio.push(tarSize / (parts.tar / 1000) / (bytes / c.wall));
    dTarRatio.push(tarSize / (dParts.tar / 1000) / (bytes / c.wall));
    ceiling.push(c.wall / (v.wall + c.wall));
    progress(`rep ${i + 1}/${reps}: kiln ${fmt.s(k.wall)} (${fmt.mbs(kt.at(-1))}; compose step ${ms} ms; ${fmt.mb(k.rssKiB)}), cat ${fmt.s(c.wall)} (${fmt.mbs(ct.at(-1))}): ${fmt.ratio(ratio.at(-1))}; --profile dev ${fmt.s(d.wall)} (step ${dms} ms): ${fmt.ratio(dRatio.at(-1))}`);
  }
  rmSync(catOut, { force: true });
  ctx.imageInfo = { tarSize, layerBytes: bytes, layers: layers.length };
  const rows = [
    row(`compose: kiln build rootfs.tar, ${(tarSize / MB).toFixed(0)} MB (wall)`, kw, "s", undefined),
    row(`compose: cat of its ${layers.length} layer blobs, ${(bytes / MB).toFixed(0)} MB, no fsync (wall)`, cw, "s", undefined),
    row("compose: kiln throughput (rootfs.tar MB / wall)", kt, "mbs", undefined),
    row("compose: cat throughput (layer MB / wall)", ct, "mbs", undefined),
    row("compose: kiln/cat throughput (per rep pair)", ratio, "ratio", { min: 0.7 }),
    row("compose: the compose step alone (done event's ms; no start-up, plan, yml) MB/s", step, "mbs", undefined),
    row("compose: the compose step alone / cat", stepRatio, "ratio", undefined),
    row("compose: kiln build --profile dev rootfs.tar (no provenance: the tar not hashed) (wall)", dw, "s", undefined),
    row("compose: --profile dev, kiln/cat throughput", dRatio, "ratio", undefined),
    row("compose: --profile dev, the compose step alone / cat", dStepRatio, "ratio", undefined),
    row("compose: of the step, the layers applied (the tree; both profiles) (wall)", layersMs, "s", undefined),
    row("compose: of the step, the tar written (first entry to complete) / cat", tarRatio, "ratio", undefined),
    row("compose: --profile dev, of the step, the tar written / cat", dTarRatio, "ratio", undefined),
    row("compose: kiln's start-up alone (`kiln --version`: node + kiln's modules) (wall)", startup, "s", undefined),
    row("compose: the best kiln/cat this start-up leaves, if composing cost no more than cat: cat / (start-up + cat)", ceiling, "ratio", undefined),
  ];
  if (TIME) rows.push(row("compose: kiln peak RSS (GNU time %M)", rss, "mb", { max: (300 * MB) / 1024 }));
  return rows;
}

/**
 * (f) rootfs.tar → rootfs.img → live.raw → live.qcow2: `kiln build live -j JOBS`
 * with rootfs.tar kept (reused) and rootfs.img, config.img, live.raw,
 * live.qcow2 and their records removed, against bench/bare-disk.sh doing the
 * same with the bare tools (mksquashfs, mkfs.vfat + mcopy, sfdisk + dd,
 * qemu-img) on the same rootfs.tar, side by side, order alternating. Targets:
 * kiln ≤ 1.2 × the bare wall time; kiln's own peak RSS (the node process) ≤ 300 MB.
 */
async function measureDisk(ctx) {
  const img = ensureImageProject(ctx);
  const reps = ctx.reps ?? 3;
  const diskOutputs = ["rootfs.img", "config.img", "live.raw", "live.qcow2", "live.img"];
  // rootfs.tar (untimed) when the compose section did not leave one
  const first = kiln([...img.args, "--json", "build", "rootfs.tar", ...IMAGE_KNOBS]);
  const tar = outputsOf(first.stdout)["rootfs.tar"];
  if (!ctx.imageInfo) {
    const { layers, bytes } = composeLayers(img);
    ctx.imageInfo = { tarSize: tar.size, layerBytes: bytes, layers: layers.length };
  }
  const build = () => {
    removeOutputs(img, diskOutputs, { variantDir: true });
    syncDisks();
    return kiln([...img.args, "-j", String(ctx.jobs), "--json", "build", "live", ...IMAGE_KNOBS], {
      selfRss: true,
      expect: expectOutputs({ "rootfs.tar": true, "rootfs.img": false, "config.img": false, "live.raw": false, "live.qcow2": false }),
    });
  };
  const bare = () => {
    rmSync(img.bareOut, { recursive: true, force: true });
    mkdirSync(img.bareOut, { recursive: true });
    syncDisks();
    return timed(["bash", join(BENCH, "bare-disk.sh"), tar.path, img.bareOut, String(ctx.jobs), String(IMAGE_EPOCH), join(KILN_DIR, "share", "conf"), join(img.project, "conf")]);
  };
  spawnSync("cat", [tar.path], { stdio: "ignore" }); // rootfs.tar into the page cache for both
  progress(`rootfs.tar ${(tar.size / MB).toFixed(0)} MB (reused by kiln, read by bare-disk.sh); -j ${ctx.jobs} = mksquashfs -processors`);
  const kw = [];
  const bw = [];
  const ratio = [];
  const self = [];
  const tree = [];
  const bareRss = [];
  const cpuRatio = [];
  for (let i = 0; i < reps; i++) {
    const [k, b] = repPair(i, build, bare);
    kw.push(k.wall);
    bw.push(b.wall);
    ratio.push(k.wall / b.wall);
    self.push(k.selfRssKiB);
    tree.push(k.rssKiB);
    bareRss.push(b.rssKiB);
    cpuRatio.push(k.cpu / b.cpu);
    const ms = stepMs(k.stdout);
    const steps = ["rootfs.img", "config.img", "live.raw", "live.qcow2"].map((n) => `${n} ${fmt.s((ms[n] ?? NaN) / 1000)}`).join(", ");
    progress(`rep ${i + 1}/${reps}: kiln ${fmt.s(k.wall)} (${steps}; node ${fmt.mb(k.selfRssKiB)}, largest process ${fmt.mb(k.rssKiB)}), bare ${fmt.s(b.wall)} (largest process ${fmt.mb(b.rssKiB)}): ${fmt.ratio(ratio.at(-1))}; CPU ${k.cpu.toFixed(1)} s vs ${b.cpu.toFixed(1)} s`);
  }
  const live = statSync(join(dirname(tar.path), "live.raw")).size;
  const bareLive = statSync(join(img.bareOut, "live.raw")).size;
  if (live !== bareLive) progress(`note: live.raw is ${live} bytes from kiln but ${bareLive} from bare-disk.sh`);
  rmSync(img.bareOut, { recursive: true, force: true });
  const rows = [
    row(`disk: kiln build live, rootfs.tar ${(tar.size / MB).toFixed(0)} MB reused (wall)`, kw, "s", undefined),
    row("disk: bench/bare-disk.sh, same work (wall)", bw, "s", undefined),
    row("disk: kiln/bare wall time (per rep pair)", ratio, "ratio", { max: 1.2 }),
    row("disk: kiln peak RSS (node process, getrusage)", self, "mb", { max: (300 * MB) / 1024 }),
  ];
  if (TIME) {
    rows.push(
      row("disk: kiln/bare CPU time (user+sys incl. tools; less sensitive to other load)", cpuRatio, "ratio", undefined),
      row("disk: kiln peak RSS incl. tools (GNU time %M, largest process)", tree, "mb", undefined),
      row("disk: bare-disk.sh peak RSS (GNU time %M, largest process)", bareRss, "mb", undefined),
    );
  }
  return rows;
}

// ---------------------------------------------------------------- the example OS (examples/kiln-os, issue #10)

/** Sections that use a copy of examples/kiln-os (and bench/bare-example.sh), not the synthetic package graph. */
const EXAMPLE_SECTIONS = ["example-cold", "example-noop", "example-edit", "example-boot"];
/** Fixed, so the variant (and /etc/kiln-release) does not follow `git describe` of the checkout. */
const EXAMPLE_KNOBS = ["ROOTFS_VERSION=bench"];
/** What an edit of pkg/hello-service/hello.sh must rebuild (done events with cached=false; image stages by their first path part). */
const EXAMPLE_EDITED = ["pkg/hello-service", "rootfs", "rootfs.img", "live.raw", "live.qcow2"];
const EXAMPLE_EXPECT = ["--expect", "KILN-SERVICE-OK", "--timeout", "120"];

/**
 * The example's shared setup, once per run: a fresh copy of
 * examples/kiln-os in bench/work/example (without its out/ and images/out/),
 * store bench/work/example-store, out dir bench/work/example-out, the bare
 * script's OUT_DIR bench/work/example-bare, and the Debian downloads in
 * bench/work/downloads ($KILN_DOWNLOADS for every kiln run, DEB_DIR of
 * bench/bare-example.sh), kept between runs. One untimed `kiln build live`
 * fills it (downloading from the Debian mirror only what is not there yet;
 * kiln.lock pins every .deb) and leaves the release images built.
 */
function ensureExample(ctx) {
  if (ctx.example) return ctx.example;
  const ex = {
    src: join(ROOT, "examples", "kiln-os"),
    project: join(WORK, "example"),
    store: join(WORK, "example-store"),
    out: join(WORK, "example-out"),
    bareOut: join(WORK, "example-bare"),
    downloads: join(WORK, "downloads"),
    bare: null, // what bareOut holds: "cold" (a whole run, release compression) or "edit" (after --edit, lz4)
    facts: {},
  };
  ex.args = ["-C", ex.project, "--store", ex.store, "--out", ex.out];
  const env = { ...process.env, KILN_DOWNLOADS: ex.downloads };
  delete env.KILN_PROFILE; // the sections choose the profile
  ex.env = env;
  for (const d of [ex.project, ex.store, ex.out, ex.bareOut]) rmSync(d, { recursive: true, force: true });
  cpSync(ex.src, ex.project, { recursive: true, filter: (p) => !/^(out|images\/out)(\/|$)/.test(relative(ex.src, p)) });
  mkdirSync(ex.downloads, { recursive: true });
  const debs = () => readdirSync(ex.downloads).filter((f) => /^[0-9a-f]{64}$/.test(f));
  const before = debs().length;
  const r = kiln([...ex.args, "-j", String(ctx.jobs), "--json", "build", "live", ...EXAMPLE_KNOBS], { env: ex.env, expect: expectSummary({ failed: 0 }) });
  const files = debs();
  const plan = parseJsonLines(r.stdout).find((e) => e.type === "plan");
  const outs = outputsOf(r.stdout);
  ex.packages = plan?.total ?? NaN;
  ex.state = "release"; // the store and out dir hold the release images of the current project
  // kiln's release profile: images.compression / compressionLevel of kiln.yml (direct keys of images:), gzip when unset
  const images = /^images:\n((?:[ #].*\n|\n)*)/m.exec(readFileSync(join(ex.project, "kiln.yml"), "utf8") + "\n")?.[1] ?? "";
  const key = (k) => new RegExp(`^  ${k}:\\s*["']?([\\w.-]+)`, "m").exec(images)?.[1];
  Object.assign(ex.facts, {
    comp: `${key("compression") ?? "gzip"}${key("compressionLevel") ? ` -${key("compressionLevel")}` : ""}`,
    packages: ex.packages,
    debs: files.length,
    debBytes: files.reduce((n, f) => n + statSync(join(ex.downloads, f)).size, 0),
    downloaded: files.length - before,
    tar: outs["rootfs.tar"]?.size,
    img: outs["rootfs.img"]?.size,
    qcow2: outs["live.qcow2"]?.size,
  });
  const f = ex.facts;
  progress(
    `example: ${f.packages} packages, ${f.debs} .debs (${(f.debBytes / MB).toFixed(0)} MB in bench/work/downloads${f.downloaded ? `, ${f.downloaded} downloaded now` : ", all cached"}) → rootfs.tar ${(f.tar / MB).toFixed(0)} MB, rootfs.img ${(f.img / MB).toFixed(0)} MB (${f.comp}), live.qcow2 ${(f.qcow2 / MB).toFixed(0)} MB; first build (untimed) ${fmt.s(r.wall)}`,
  );
  ctx.example = ex;
  return ex;
}

/** `kiln build live [EXTRA] -j JOBS --json ROOTFS_VERSION=bench` of the example copy. */
function exampleBuild(ctx, ex, extra, opts = {}) {
  return kiln([...ex.args, "-j", String(ctx.jobs), "--json", "build", "live", ...extra, ...EXAMPLE_KNOBS], { env: ex.env, ...opts });
}

/** The release images of the current project in the out dir (untimed; a no-op when they are). */
function ensureExampleRelease(ctx, ex) {
  if (ex.state === "release") return;
  exampleBuild(ctx, ex, [], { expect: expectSummary({ failed: 0 }) });
  ex.state = "release";
}

/**
 * bench/bare-example.sh [--edit] into ex.bareOut with DEB_DIR = bench/work/downloads:
 * wall, CPU, its steps (name → s). Squashfs compression `comp` (SQUASHFS_COMP),
 * by default the script's: kiln's release profile, from the copy's kiln.yml.
 */
function bareExample(ctx, ex, { edit = false, comp } = {}) {
  if (!edit) rmSync(ex.bareOut, { recursive: true, force: true });
  const argv = ["bash", join(BENCH, "bare-example.sh"), ...(edit ? ["--edit"] : []), ex.bareOut, ex.downloads, ex.project, String(ctx.jobs)];
  const env = { ...process.env, ROOTFS_VERSION: "bench" };
  delete env.SQUASHFS_COMP;
  delete env.SQUASHFS_LEVEL;
  if (comp) env.SQUASHFS_COMP = comp;
  const r = timed(argv, { env });
  r.steps = Object.fromEntries([...r.stderr.matchAll(/^bare: (\S+)\s+([\d.]+) s$/gm)].map((m) => [m[1], Number(m[2])]));
  ex.bare = edit ? "edit" : "cold";
  ex.bareComp = comp ?? ex.facts.comp;
  return r;
}

/** The stages a `build --json` run built (done events with cached=false): packages as pkg/NAME, image stages by their first path part (rootfs, rootfs.img, …). */
function builtStages(events) {
  return events.filter((e) => e.type === "done" && !e.cached).map((e) => (e.target.startsWith("pkg/") ? e.target : e.target.split("/")[0]));
}

/** For `build --json`: exactly these stages built (any order), nothing failed. */
const expectBuilt = (want) => (events, args) => {
  const s = events.find((e) => e.type === "summary");
  if (s?.failed) throw new Error(`kiln ${args.join(" ")}: ${s.failed} failed`);
  const got = builtStages(events).sort();
  if (got.join(" ") !== [...want].sort().join(" ")) throw new Error(`kiln ${args.join(" ")}: expected exactly [${[...want].sort().join(", ")}] built, got [${got.join(", ")}]`);
};

/**
 * The `timings` event of a `build --timings --json` run: `phases` (name → ms:
 * start-up, load project, …, and "between stages" = the last phase minus the
 * stages it ran, i.e. planning, keys and bookkeeping between them; 0 when
 * stages ran in parallel), `stages` (name → ms of every stage built, not
 * reused; image stages by their first path part), `total` (ms).
 */
function timingsOf(stdout) {
  const t = parseJsonLines(stdout).find((e) => e.type === "timings");
  if (!t) return { phases: {}, stages: {}, total: NaN };
  const phases = {};
  const stages = {};
  for (const p of t.phases) phases[p.name] = p.ms;
  let staged = 0;
  for (const s of t.stages) {
    staged += s.ms;
    if (s.status !== "cached") stages[s.target.startsWith("pkg/") ? s.target : s.target.split("/")[0]] = s.ms;
  }
  // packages and images are built inside the last phase ("images" for image targets); what is left of it is kiln's own work
  const last = t.phases.at(-1);
  if (last) phases["between stages"] = Math.max(0, last.ms - staged);
  return { phases, stages, total: t.totalMs };
}

/** Median per key of several name → number maps (keys in first-seen order), as "name 123 ms, …" (or seconds with `unit` "s"). */
function medianLine(maps, unit = "ms") {
  const keys = [...new Set(maps.flatMap((m) => Object.keys(m)))];
  return keys
    .map((k) => {
      const v = stats(maps.map((m) => m[k]).filter((x) => x !== undefined)).median;
      return unit === "ms" ? `${k} ${Math.round(v)} ms` : `${k} ${v.toFixed(3)} s`;
    })
    .join(", ");
}

/** The slowest `n` entries of a name → number map, as "name 1.23 s, …" (`scale` turns the values into seconds). */
function topSteps(m, n, scale = 1) {
  return Object.entries(m)
    .filter(([k]) => k !== "total")
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => `${k} ${(v * scale).toFixed(2)} s`)
    .join(", ");
}

/**
 * (g) Cold `kiln build live -j JOBS` of the example OS (examples/kiln-os,
 * release profile: kiln.yml's squashfs compression) from an empty store and an empty out dir
 * (records included), the Debian .debs already downloaded
 * (KILN_DOWNLOADS=bench/work/downloads), against bench/bare-example.sh doing
 * the same work with the same Debian tools (same JOBS, same .debs, same
 * compression), side by side, order alternating, 3 rep pairs. Targets: kiln ≤ 1.2 × the bare wall
 * time; kiln's own peak RSS (the node process) ≤ 300 MB. kiln/bare CPU time
 * for information.
 */
async function measureExampleCold(ctx) {
  const ex = ensureExample(ctx);
  const reps = ctx.reps ?? 3;
  const all = [...Array.from({ length: ex.packages }, () => "pkg"), "rootfs", "rootfs.img", "config.img", "efi.img", "live.raw", "live.qcow2"];
  const build = () => {
    for (const d of [ex.store, ex.out, join(ex.project, "images", "out")]) rmSync(d, { recursive: true, force: true });
    syncDisks();
    return exampleBuild(ctx, ex, ["--timings"], {
      selfRss: true,
      expect: (events, args) => {
        expectSummary({ built: ex.packages, failed: 0 })(events, args);
        const got = builtStages(events).map((s) => (s.startsWith("pkg/") ? "pkg" : s));
        if (got.sort().join(" ") !== [...all].sort().join(" ")) throw new Error(`kiln ${args.join(" ")}: expected every stage built from an empty store, got [${builtStages(events).join(", ")}]`);
      },
    });
  };
  const bare = () => {
    syncDisks();
    return bareExample(ctx, ex);
  };
  progress(`-j ${ctx.jobs} (mksquashfs -processors on both sides); .debs from bench/work/downloads`);
  const kw = [];
  const bw = [];
  const ratio = [];
  const cpuRatio = [];
  const self = [];
  let kLast;
  for (let i = 0; i < reps; i++) {
    const [k, b] = repPair(i, build, bare);
    kw.push(k.wall);
    bw.push(b.wall);
    ratio.push(k.wall / b.wall);
    cpuRatio.push(k.cpu / b.cpu);
    self.push(k.selfRssKiB);
    kLast = k;
    progress(
      `rep ${i + 1}/${reps}: kiln ${fmt.s(k.wall)} (slowest stages: ${topSteps(timingsOf(k.stdout).stages, 4, 1 / 1000)}; node ${fmt.mb(k.selfRssKiB)}), bare ${fmt.s(b.wall)} (slowest: ${topSteps(b.steps, 4)}): ${fmt.ratio(ratio.at(-1))}; CPU ${k.cpu.toFixed(1)} s vs ${b.cpu.toFixed(1)} s`,
    );
  }
  ex.state = "release";
  const squashComp = (file) => /^Compression (\S+)/m.exec(spawnSync("unsquashfs", ["-s", file], { encoding: "utf8" }).stdout ?? "")?.[1] ?? "?";
  const kc = squashComp(outputsOf(kLast.stdout)["rootfs.img"].path);
  const bc = squashComp(join(ex.bareOut, "rootfs.img"));
  progress(`rootfs.img compression: kiln ${kc}, bare ${bc}${kc === bc ? "" : " — NOT THE SAME: the comparison is off"}`);
  const rows = [
    row(`example-cold: kiln build live, empty store, .debs cached (wall)`, kw, "s", undefined),
    row("example-cold: bench/bare-example.sh, same work (wall)", bw, "s", undefined),
    row("example-cold: kiln/bare wall time (per rep pair)", ratio, "ratio", { max: 1.2 }),
  ];
  if (TIME) rows.push(row("example-cold: kiln/bare CPU time (user+sys incl. tools)", cpuRatio, "ratio", undefined));
  rows.push(row("example-cold: kiln peak RSS (node process, getrusage)", self, "mb", { max: (300 * MB) / 1024 }));
  return rows;
}

/**
 * (h) `kiln build live` of the example again with nothing changed (release
 * profile; 7 reps after an untimed warm-up); the --json events checked:
 * every package and image stage reused, nothing built. Target ≤ 0.3 s.
 */
async function measureExampleNoop(ctx) {
  const ex = ensureExample(ctx);
  ensureExampleRelease(ctx, ex);
  const reps = ctx.reps ?? 7;
  const expect = (events, args) => {
    expectSummary({ built: 0, cached: ex.packages, failed: 0 })(events, args);
    const built = builtStages(events);
    if (built.length) throw new Error(`kiln ${args.join(" ")}: expected nothing built, got [${built.join(", ")}]`);
    const outs = events.find((e) => e.type === "result")?.data?.outputs ?? [];
    if (!outs.length || outs.some((o) => !o.cached)) throw new Error(`kiln ${args.join(" ")}: expected every output reused`);
  };
  exampleBuild(ctx, ex, [], { expect });
  const walls = [];
  for (let i = 0; i < reps; i++) walls.push(exampleBuild(ctx, ex, [], { expect }).wall);
  progress(`no-op build live: ${walls.map((w) => w.toFixed(3)).join(" ")} s`);
  return [row(`example-noop: kiln build live, nothing changed (wall)`, walls, "s", { max: 0.3 })];
}

/**
 * (i) The edit loop: a unique comment line appended to
 * pkg/hello-service/hello.sh of the copy, then `kiln build live --profile dev
 * --timings` (lz4 squashfs, no provenance) → live.qcow2, 5 reps after an
 * untimed dev build; the --json events checked: exactly pkg/hello-service,
 * rootfs, rootfs.img, live.raw and live.qcow2 rebuilt. Target ≤ 2 s. Side by
 * side (order alternating) with `bench/bare-example.sh --edit` with
 * SQUASHFS_COMP=lz4 (the floor: that recipe, tar, mksquashfs, GPT,
 * qemu-img), ratio for information. The progress lines give the median of
 * kiln's stage times (the `timings` event) and of the bare script's steps.
 */
async function measureExampleEdit(ctx) {
  const ex = ensureExample(ctx);
  const reps = ctx.reps ?? 5;
  const script = join(ex.project, "pkg", "hello-service", "hello.sh");
  const dev = ["--profile", "dev", "--timings"];
  const warm = exampleBuild(ctx, ex, dev, { expect: expectSummary({ failed: 0 }) });
  ex.state = "dev";
  ex.facts.devImg = outputsOf(warm.stdout)["rootfs.img"]?.size;
  if (!ex.bare) bareExample(ctx, ex); // --edit needs a cold run's tree, efi.img and config.img
  bareExample(ctx, ex, { edit: true, comp: "lz4" }); // warm-up, as kiln's
  const edit = (i) => appendFileSync(script, `# bench edit ${i + 1} ${process.pid} ${Date.now()}\n`);
  const build = () => exampleBuild(ctx, ex, dev, { expect: expectBuilt(EXAMPLE_EDITED) });
  const bare = () => bareExample(ctx, ex, { edit: true, comp: "lz4" });
  const kw = [];
  const bw = [];
  const ratio = [];
  const stages = [];
  const steps = [];
  for (let i = 0; i < reps; i++) {
    edit(i);
    const [k, b] = repPair(i, build, bare);
    kw.push(k.wall);
    bw.push(b.wall);
    ratio.push(k.wall / b.wall);
    stages.push(timingsOf(k.stdout));
    steps.push(b.steps);
    progress(`rep ${i + 1}/${reps}: kiln ${fmt.s(k.wall)} (timings total ${stages.at(-1).total} ms), bare --edit ${fmt.s(b.wall)}: ${fmt.ratio(ratio.at(-1))}`);
  }
  ex.state = "dev";
  progress(`kiln, median of ${reps}: total ${Math.round(stats(stages.map((t) => t.total)).median)} ms; phases: ${medianLine(stages.map((t) => t.phases))}`);
  progress(`kiln stages built, median of ${reps}: ${medianLine(stages.map((t) => t.stages))}`);
  progress(`bare --edit steps, median of ${reps}: ${medianLine(steps, "s")}`);
  return [
    row("example-edit: hello.sh edited → kiln build live --profile dev (wall)", kw, "s", { max: 2 }),
    row("example-edit: bench/bare-example.sh --edit, lz4 (wall)", bw, "s", undefined),
    row("example-edit: kiln/bare wall time (per rep pair)", ratio, "ratio", undefined),
  ];
}

/**
 * (j) Boot: `kiln run live --expect KILN-SERVICE-OK --timeout 120` of the
 * example's release image (built untimed first: `kiln build live`), 3 reps;
 * the figure is the time to the match that kiln reports (matchSeconds of
 * --json; QEMU start to KILN-SERVICE-OK on the console), plus the wall time
 * of the command. Target ≤ 12 s under TCG. For comparison, the live.qcow2 of
 * bench/bare-example.sh (a cold run: the release compression) booted the same
 * way, once per rep, order alternating (information).
 */
async function measureExampleBoot(ctx) {
  const ex = ensureExample(ctx);
  const reps = ctx.reps ?? 3;
  exampleBuild(ctx, ex, [], { expect: expectSummary({ failed: 0 }) }); // the release images of the (edited) project
  ex.state = "release";
  if (ex.bare !== "cold") bareExample(ctx, ex); // the bare image of the current project with the release compression
  const bareImage = join(ex.bareOut, "live.qcow2");
  const boot = (args) => {
    const r = kiln(["--json", ...args, ...EXAMPLE_EXPECT], { env: ex.env });
    const res = parseJsonLines(r.stdout).find((e) => e.type === "result")?.data;
    if (!res?.matched) throw new Error(`kiln ${args.join(" ")}: no match in ${JSON.stringify(res)}`);
    return { wall: r.wall, boot: res.matchSeconds ?? res.seconds, accel: res.accel, image: res.image };
  };
  const kilnBoot = () => boot([...ex.args, "run", "live", ...EXAMPLE_KNOBS]);
  const bareBoot = () => boot(["run", bareImage]);
  const kb = [];
  const kw = [];
  const bb = [];
  const bw = [];
  let accel = "";
  let image = "";
  for (let i = 0; i < reps; i++) {
    const [k, b] = repPair(i, kilnBoot, bareBoot);
    kb.push(k.boot);
    kw.push(k.wall);
    bb.push(b.boot);
    bw.push(b.wall);
    accel = k.accel;
    image = relative(ex.out, k.image);
    progress(`rep ${i + 1}/${reps}: kiln's image (${image}) matched after ${k.boot.toFixed(1)} s (${k.accel}; wall ${fmt.s(k.wall)}), bare's live.qcow2 after ${b.boot.toFixed(1)} s (${b.accel}; wall ${fmt.s(b.wall)})`);
  }
  ex.facts.accel = accel;
  return [
    row(`example-boot: kiln run live → KILN-SERVICE-OK, ${accel} (kiln's figure)`, kb, "s", { max: 12 }),
    row("example-boot: kiln run live, whole command (wall)", kw, "s", undefined),
    row(`example-boot: bare-example.sh's live.qcow2 → KILN-SERVICE-OK, ${accel}`, bb, "s", undefined),
    row("example-boot: bare-example.sh's live.qcow2, whole command (wall)", bw, "s", undefined),
  ];
}

const SECTIONS = {
  cold: measureCold,
  noop: measureNoop,
  plan: measurePlan,
  rss: measureRss,
  compose: measureCompose,
  disk: measureDisk,
  "example-cold": measureExampleCold,
  "example-noop": measureExampleNoop,
  "example-edit": measureExampleEdit,
  "example-boot": measureExampleBoot,
};

// ---------------------------------------------------------------- environment

function sh(cmd) {
  const r = spawnSync("sh", ["-c", cmd], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : "";
}

function machine() {
  const cpuinfo = existsSync("/proc/cpuinfo") ? readFileSync("/proc/cpuinfo", "utf8") : "";
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? "unknown";
  const meminfo = existsSync("/proc/meminfo") ? readFileSync("/proc/meminfo", "utf8") : "";
  const memKiB = Number(/^MemTotal:\s*(\d+)/m.exec(meminfo)?.[1]) || os.totalmem() / 1024;
  const commit = sh(`git -C "${KILN_DIR}" rev-parse --short HEAD 2>/dev/null`);
  const dirty = commit && sh(`git --no-optional-locks -C "${KILN_DIR}" status --porcelain -- src`) ? " + uncommitted changes in src/" : "";
  const where = KILN_DIR === ROOT ? "" : ` (from ${KILN_DIR})`;
  return {
    nproc: sh("nproc") || String(os.availableParallelism()),
    model,
    ram: `${(memKiB / 1024 / 1024).toFixed(1)} GiB`,
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    fs: sh(`stat -f -c %T "${WORK}"`) || "?",
    kiln: `${commit || "(no git)"}${dirty}${where}`,
    bwrap: sh("bwrap --version") || "not installed (scripts run unsandboxed)",
  };
}

/** Compile src/ to dist/ if any source is newer than the compiled CLI. */
function ensureDist(build) {
  const mainJs = join(KILN_DIR, "dist", "cli", "main.js");
  const newest = (dir) => {
    let t = 0;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
    }
    return t;
  };
  const stale = !existsSync(mainJs) || newest(join(KILN_DIR, "src")) > statSync(mainJs).mtimeMs;
  if (!stale) return "";
  if (!build) return " (dist/ older than src/: measured the stale build)";
  console.log("bench: dist/ is older than src/, running npm run build");
  const r = spawnSync("npm", ["run", "build", "--silent"], { cwd: KILN_DIR, stdio: "inherit" });
  if (r.status !== 0) fail("npm run build failed; fix src/ or pass --no-build to measure the existing dist/");
  return "";
}

/**
 * One run at a time: two runs would share bench/work (one wipes the other's
 * project and store) and would skew each other's timings. Waits up to 10 min
 * for a live holder; a lock left by a dead process is taken over.
 */
async function lockWork() {
  const lock = join(WORK, ".lock");
  const deadline = Date.now() + 10 * 60_000;
  let told = false;
  for (;;) {
    try {
      writeFileSync(lock, String(process.pid), { flag: "wx" });
      const release = () => {
        try {
          if (readFileSync(lock, "utf8") === String(process.pid)) unlinkSync(lock);
        } catch {
          // already gone
        }
      };
      process.on("exit", release);
      for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));
      return;
    } catch (err) {
      if (err.code !== "EEXIST") throw err;
    }
    const holder = Number(readFileSync(lock, "utf8")) || 0;
    let alive = false;
    try {
      process.kill(holder, 0);
      alive = holder > 0;
    } catch (err) {
      alive = err.code === "EPERM";
    }
    if (!alive) {
      rmSync(lock, { force: true });
      continue;
    }
    if (Date.now() > deadline) fail(`another bench run (pid ${holder}) has held bench/work for 10 minutes; giving up`);
    if (!told) console.log(`bench: another bench run (pid ${holder}) is using bench/work; waiting for it to finish`);
    told = true;
    await new Promise((r) => setTimeout(r, 2000));
  }
}

function progress(msg) {
  console.log(`  · ${msg}`);
}

// ---------------------------------------------------------------- main

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.list) {
    for (const [name, fn] of Object.entries(SECTIONS)) console.log(`${name.padEnd(12)} ${fnDoc(fn)}`);
    return;
  }
  if (opts.kiln) {
    KILN_DIR = opts.kiln;
    KILN = join(KILN_DIR, "bin", "kiln.js");
    if (!existsSync(KILN)) fail(`--kiln ${opts.kiln}: no bin/kiln.js there`);
  }
  // the host tools of kiln's tests and of the bare scripts beside it, installed when missing (idempotent)
  const deps = spawnSync(process.execPath, [join(ROOT, "scripts", "host-deps.mjs"), "bench"], { stdio: "inherit" });
  if (deps.status !== 0) fail("installing the host tools failed (scripts/host-deps.mjs bench)");
  mkdirSync(WORK, { recursive: true });
  await lockWork();
  const distNote = ensureDist(opts.build);
  TIME = findGnuTime();
  const ctx = {
    n: opts.packages,
    jobs: opts.jobs,
    reps: opts.reps,
    project: join(WORK, "project"),
    store: join(WORK, "store"),
    out: join(WORK, "out"),
    warm: false,
  };
  // The synthetic package graph only when a section uses it (compose and disk, and the example-* sections, have their own project).
  const synthetic = opts.sections.some((s) => !IMAGE_SECTIONS.includes(s) && !EXAMPLE_SECTIONS.includes(s));
  const imageRun = opts.sections.some((s) => IMAGE_SECTIONS.includes(s));
  const exampleRun = opts.sections.some((s) => EXAMPLE_SECTIONS.includes(s));
  let design;
  if (synthetic) {
    design = describeDesign(generateProject(ctx.project, ctx.n));
    // A store built from an earlier generation or kiln version is not a cold one, and may not be warm either.
    wipeStore(ctx);
  }
  const m = machine();
  const what = [
    ...(synthetic ? [`${design.packages} packages (${design.files} files, ${design.script} script, ${design.edges} edges, depth ${design.depth})`] : []),
    ...(imageRun ? ["the ~400 MB image project (bench/gen-compose.mjs)"] : []),
    ...(exampleRun ? ["the example OS (a copy of examples/kiln-os)"] : []),
  ].join(" + ");
  console.log(`kiln bench: ${what}; sections: ${opts.sections.join(", ")}`);
  console.log(`machine: ${m.nproc} × ${m.model}, ${m.ram} RAM, node ${m.node}, kiln ${m.kiln}${distNote}`);

  const started = Date.now();
  const loadBefore = os.loadavg()[0];
  const rows = [];
  for (const s of opts.sections) {
    console.log(`[${s}]`);
    rows.push(...(await SECTIONS[s](ctx)));
  }
  const total = (Date.now() - started) / 1000;
  const load = `1-min load average ${loadBefore.toFixed(2)} at start, ${os.loadavg()[0].toFixed(2)} at end (other work on the machine adds noise)`;
  console.log("");
  console.log(table(rows));
  console.log(`\n(total ${total.toFixed(0)} s; ${load})`);

  if (opts.results) {
    const date = new Date().toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
    const md = [
      "",
      `## ${date} — ${[...(synthetic ? [`${design.packages} packages`] : []), ...(imageRun ? ["image project"] : []), ...(exampleRun ? ["example OS"] : [])].join(" + ")} (${opts.sections.join(", ")})`,
      "",
      `- machine: ${m.nproc} CPUs (nproc) × ${m.model}; ${m.ram} RAM; ${m.kernel}; bench/work on ${m.fs}`,
      `- node ${m.node}; kiln ${m.kiln}${distNote}; ${m.bwrap}`,
      ...(synthetic ? [`- project: bench/gen-project.mjs N=${design.packages} seed=42 → ${design.files} files + ${design.script} script packages, ${design.edges} dependency edges, depth ${design.depth}; -j ${ctx.jobs}`] : []),
      ...(imageRun ? [`- image project: bench/gen-compose.mjs → ${ctx.image?.packages ?? "?"} packages (kernel; init base, libs; onboot sysctl, tools; services getty, pillar, apps)${ctx.imageInfo ? `, ${ctx.imageInfo.layers} layers of ${(ctx.imageInfo.layerBytes / MB).toFixed(0)} MB → rootfs.tar ${(ctx.imageInfo.tarSize / MB).toFixed(0)} MB` : ""}; squashfs gzip; -j ${ctx.jobs}; MB = 10⁶ bytes`] : []),
      ...(exampleRun ? [exampleLine(ctx)] : []),
      `- wall time from a monotonic clock around \`node bin/kiln.js …\` (includes node start-up); CPU and RSS from GNU time`,
      `- ${load}; bench total ${total.toFixed(0)} s`,
      "",
      markdownTable(rows),
      "",
    ].join("\n");
    if (!existsSync(RESULTS)) appendFileSync(RESULTS, "# kiln benchmark results\n\nAppended by `npm run bench` (bench/run.mjs); newest last. See bench/README.md.\n");
    appendFileSync(RESULTS, md);
    console.log(`appended to ${relative(process.cwd(), RESULTS) || RESULTS}`);
  }
  const failed = rows.filter((r) => r.verdict === "FAIL");
  if (failed.length) console.log(`targets missed: ${failed.map((r) => r.name).join("; ")}`);
  if (failed.length && opts.strict) process.exitCode = 1;
}

/** The RESULTS.md header line of the example sections: what was measured, from the facts ensureExample and the sections gathered. */
function exampleLine(ctx) {
  const f = ctx.example?.facts;
  if (!f) return "- example OS: not set up (the example sections failed before it)";
  const mb = (n) => (n ? `${(n / MB).toFixed(0)} MB` : "?");
  return [
    `- example OS: examples/kiln-os copied to bench/work/example, ROOTFS_VERSION=bench (amd64, kvm-generic, squashfs); ${f.packages} packages from ${f.debs} pinned .debs (${mb(f.debBytes)})`,
    ` cached in bench/work/downloads (KILN_DOWNLOADS; bench/bare-example.sh's DEB_DIR)${f.downloaded ? `, ${f.downloaded} downloaded by this run's first build` : ""}`,
    ` → rootfs.tar ${mb(f.tar)}, rootfs.img ${mb(f.img)} (release: ${f.comp})${f.devImg ? ` / ${mb(f.devImg)} (dev: lz4)` : ""}, live.qcow2 ${mb(f.qcow2)}; -j ${ctx.jobs}${f.accel ? `; boots under ${f.accel}` : ""}`,
  ].join("");
}

function fnDoc(fn) {
  const src = readFileSync(fileURLToPath(import.meta.url), "utf8");
  const i = src.indexOf(`async function ${fn.name}(`);
  const before = src.slice(0, i);
  const doc = before.slice(before.lastIndexOf("/**") + 3, before.lastIndexOf("*/"));
  return doc.replace(/\s*\n\s*\*\s*/g, " ").trim();
}

main().catch((err) => {
  console.error(`bench: ${err.stack ?? err}`);
  process.exit(1);
});
