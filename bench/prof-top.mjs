#!/usr/bin/env node
// Summarise a V8 CPU profile (node --cpu-prof) as text: where the time goes.
//
//   node bench/prof-top.mjs FILE.cpuprofile [--top 25] [--filter dist/]
//
// Prints the split between idle (waiting for I/O or child processes), GC,
// program (V8 and native work outside JS) and JS; then the top functions by
// self time and by inclusive time (time with the function anywhere on the
// stack, recursion counted once). --filter keeps only functions whose script
// URL contains the string (e.g. dist/ for kiln's own code) in the two tables.

import { readFileSync } from "node:fs";

const args = process.argv.slice(2);
const file = args.find((a) => !a.startsWith("--") && !/^\d+$/.test(a));
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i === -1 ? dflt : args[i + 1];
};
if (!file) {
  console.error("usage: node bench/prof-top.mjs FILE.cpuprofile [--top 25] [--filter dist/]");
  process.exit(2);
}
const top = Number(opt("--top", 25));
const filter = opt("--filter", "");

const prof = JSON.parse(readFileSync(file, "utf8"));
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const short = (url) => url.replace(/^file:\/\//, "").replace(/^.*?\/(dist|node_modules)\//, "$1/");
const keyOf = (n) => {
  const f = n.callFrame;
  return f.url ? `${f.functionName || "(anonymous)"}  ${short(f.url)}:${f.lineNumber + 1}` : f.functionName;
};

// Sample i lasted timeDeltas[i + 1] µs (the delta before the next sample).
const self = new Map();
const incl = new Map();
let total = 0;
for (let i = 0; i < prof.samples.length; i++) {
  const dt = prof.timeDeltas[i + 1] ?? 0;
  total += dt;
  let n = byId.get(prof.samples[i]);
  const k = keyOf(n);
  self.set(k, (self.get(k) ?? 0) + dt);
  const seen = new Set();
  for (; n; n = byId.get(parent.get(n.id))) {
    const kk = keyOf(n);
    if (seen.has(kk)) continue;
    seen.add(kk);
    incl.set(kk, (incl.get(kk) ?? 0) + dt);
  }
}

const ms = (us) => `${(us / 1000).toFixed(0).padStart(7)} ms`;
const pct = (us) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
const special = ["(idle)", "(garbage collector)", "(program)", "(root)"];
const js = total - special.slice(0, 3).reduce((s, k) => s + (self.get(k) ?? 0), 0);
console.log(`profile ${file}: ${ms(total).trim()} sampled`);
for (const k of special.slice(0, 3)) console.log(`  ${k.padEnd(20)} ${ms(self.get(k) ?? 0)} ${pct(self.get(k) ?? 0)}`);
console.log(`  ${"JS (everything else)".padEnd(20)} ${ms(js)} ${pct(js)}`);

const table = (title, m) => {
  console.log(`\n${title}${filter ? ` (only ${filter})` : ""}:`);
  const rows = [...m].filter(([k]) => !special.includes(k) && (!filter || k.includes(filter))).sort((a, b) => b[1] - a[1]).slice(0, top);
  for (const [k, v] of rows) console.log(`  ${ms(v)} ${pct(v)}  ${k}`);
};
table("top by self time", self);
table("top by inclusive time", incl);
