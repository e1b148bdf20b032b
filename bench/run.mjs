#!/usr/bin/env node
// kiln benchmarks.  `npm run bench` = `node bench/run.mjs`.
//
//   node bench/run.mjs [--section cold,noop,plan,rss] [--packages 200] [--jobs 2]
//                      [--reps N] [--kiln DIR] [--no-results] [--no-build] [--strict] [--list]
//
// Generates a synthetic project (bench/gen-project.mjs) into bench/work/,
// runs each selected section against a store in bench/work/store, prints a
// table and appends a dated section to bench/RESULTS.md. To add a benchmark,
// write `async function measureX(ctx)` returning rows and register it in
// SECTIONS below.

import { spawnSync } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
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
      console.log(readFileSync(fileURLToPath(import.meta.url), "utf8").split("\n").slice(1, 12).map((l) => l.replace(/^\/\/ ?/, "")).join("\n"));
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
  if (existsSync("/usr/bin/time") && probe()) return "/usr/bin/time";
  if (process.getuid?.() === 0 && spawnSync("sh", ["-c", "command -v apt-get"]).status === 0) {
    console.log("bench: installing GNU time (apt-get install -y time) to measure CPU time and peak RSS");
    spawnSync("apt-get", ["install", "-y", "-qq", "time"], { stdio: "ignore" });
    if (existsSync("/usr/bin/time") && probe()) return "/usr/bin/time";
  }
  console.log("bench: GNU time not available: CPU utilisation and peak RSS are not measured");
  return null;
}

/**
 * Run `node bin/kiln.js ARGS` once. Wall time from a monotonic clock around
 * the child; CPU (user+sys, including every descendant the child waited for:
 * bwrap, bash, tar) and peak RSS (largest single process) from GNU time.
 */
function kiln(args, { expect } = {}) {
  const tf = join(WORK, ".time");
  const argv = [process.execPath, KILN, ...args];
  const t0 = process.hrtime.bigint();
  const r = TIME
    ? spawnSync(TIME, ["-f", "%e %U %S %M", "-o", tf, ...argv], { encoding: "utf8", maxBuffer: 256 << 20 })
    : spawnSync(argv[0], argv.slice(1), { encoding: "utf8", maxBuffer: 256 << 20 });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) {
    throw new Error(`kiln ${args.join(" ")} exited with ${r.status ?? r.signal}\n${(r.stderr || "").slice(-3000)}\n${(r.stdout || "").slice(-3000)}`);
  }
  const out = { wall, cpu: NaN, rssKiB: NaN, stdout: r.stdout };
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

/** (a) Cold build of every package into an empty store, -j JOBS: wall time and how many cores were busy. */
async function measureCold(ctx) {
  const reps = ctx.reps ?? 3;
  const walls = [];
  const cores = [];
  for (let i = 0; i < reps; i++) {
    wipeStore(ctx);
    const r = kiln([...storeArgs(ctx), "-j", String(ctx.jobs), "--json", "build"], { expect: expectSummary({ built: ctx.n, failed: 0 }) });
    walls.push(r.wall);
    cores.push(r.cpu / r.wall);
    progress(`cold build ${i + 1}/${reps}: ${fmt.s(r.wall)}, CPU ${r.cpu.toFixed(1)} s = ${fmt.cores(r.cpu / r.wall)}`);
  }
  ctx.warm = true;
  const rows = [row(`cold build, ${ctx.n} packages, -j ${ctx.jobs} (wall)`, walls, "s", undefined)];
  if (TIME) rows.push(row(`cold build CPU utilisation ((user+sys)/wall, of ${ctx.jobs})`, cores, "cores", undefined));
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

const SECTIONS = {
  cold: measureCold,
  noop: measureNoop,
  plan: measurePlan,
  rss: measureRss,
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
    for (const [name, fn] of Object.entries(SECTIONS)) console.log(`${name.padEnd(6)} ${fnDoc(fn)}`);
    return;
  }
  if (opts.kiln) {
    KILN_DIR = opts.kiln;
    KILN = join(KILN_DIR, "bin", "kiln.js");
    if (!existsSync(KILN)) fail(`--kiln ${opts.kiln}: no bin/kiln.js there`);
  }
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
  const design = describeDesign(generateProject(ctx.project, ctx.n));
  // A store built from an earlier generation or kiln version is not a cold one, and may not be warm either.
  wipeStore(ctx);
  const m = machine();
  console.log(`kiln bench: ${design.packages} packages (${design.files} files, ${design.script} script, ${design.edges} edges, depth ${design.depth}); sections: ${opts.sections.join(", ")}`);
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
      `## ${date} — ${design.packages} packages (${opts.sections.join(", ")})`,
      "",
      `- machine: ${m.nproc} CPUs (nproc) × ${m.model}; ${m.ram} RAM; ${m.kernel}; bench/work on ${m.fs}`,
      `- node ${m.node}; kiln ${m.kiln}${distNote}; ${m.bwrap}`,
      `- project: bench/gen-project.mjs N=${design.packages} seed=42 → ${design.files} files + ${design.script} script packages, ${design.edges} dependency edges, depth ${design.depth}; -j ${ctx.jobs}`,
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
