import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { compareVersions, parseVersion, satisfiesVersion } from "../../src/debian/version.js";

/** [a, b, expected sign of compare(a, b)]: orderings dpkg is known to give (Debian policy §5.6.12, dpkg's t-version). */
const PAIRS: [string, string, -1 | 0 | 1][] = [
  ["1.0~rc1", "1.0", -1],
  ["1:0.1", "2.0", 1],
  ["2:0", "1:99999", 1],
  ["0:1.0", "1.0", 0],
  ["2.36-9+deb12u13", "2.36-9+deb12u9", 1],
  ["1.0-1", "1.0-1.1", -1],
  ["~~", "~", -1],
  ["~", "", -1],
  ["~~", "~~a", -1],
  ["~~a", "~", -1],
  ["1.0~~", "1.0~", -1],
  ["1.0~beta1~svn1245", "1.0~beta1", -1],
  ["1.0~beta1", "1.0", -1],
  ["1.0", "1.0-0", 0],
  ["1.0", "1.0-1", -1],
  ["1.0-1", "1.0-2", -1],
  ["1.0-1~bpo12+1", "1.0-1", -1],
  ["1.2.3", "1.2.10", -1],
  ["001", "1", 0],
  ["1.0a", "1.0", 1],
  ["1.0", "1.0.1", -1],
  ["1.0.1", "1.0+b1", 1],
  ["1.0+dfsg-1", "1.0-1", 1],
  ["1a", "1", 1],
  ["a", "b", -1],
  ["1.0-a", "1.0-+", -1],
  ["7.6p2-4", "7.6-0", 1],
  ["1:1.35.0-4+deb12u1+b1", "1:1.35.0-4+deb12u1", 1],
  ["2.0-1", "1.99-9", 1],
  ["1.18.36", "1.18.35", 1],
  ["3.0.11-1~deb12u2", "3.0.11-1", -1],
  ["6.1.0-26-amd64", "6.1.0-3-amd64", 1],
  ["0.9.8zh", "0.9.8zg", 1],
  ["10", "9", 1],
];

describe("dpkg version ordering", () => {
  it.each(PAIRS)("%s vs %s", (a, b, want) => {
    expect(Math.sign(compareVersions(a, b))).toBe(want);
    expect(Math.sign(compareVersions(b, a))).toBe(-want || 0);
  });

  it("parses epoch, upstream and revision as dpkg does", () => {
    expect(parseVersion("1:2.36-9+deb12u13")).toEqual({ epoch: 1, upstream: "2.36", revision: "9+deb12u13" });
    expect(parseVersion("6.1.0-26-amd64")).toEqual({ epoch: 0, upstream: "6.1.0-26", revision: "amd64" });
    expect(parseVersion("1.0")).toEqual({ epoch: 0, upstream: "1.0", revision: "" });
  });

  it("evaluates relations, including the obsolete < and >", () => {
    expect(satisfiesVersion("2.36-9", ">=", "2.36")).toBe(true);
    expect(satisfiesVersion("2.36~rc1", ">=", "2.36")).toBe(false);
    expect(satisfiesVersion("1.0", "<<", "1.0")).toBe(false);
    expect(satisfiesVersion("1.0", "<=", "1.0")).toBe(true);
    expect(satisfiesVersion("1.0", "<", "1.0")).toBe(true);
    expect(satisfiesVersion("1.1", ">>", "1.0")).toBe(true);
    expect(satisfiesVersion("1:1.0", "=", "1:1.0-0")).toBe(true);
  });

});

/** mulberry32: a small seeded generator, so a failure can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Random versions dpkg accepts: an optional epoch, an upstream part that
 * starts with a digit and mixes digit runs (leading zeros too), letters, ".",
 * "+", "~" (and "-" when there is a revision), and an optional revision of
 * digits, letters, ".", "+", "~". Small alphabets, so that pairs often share
 * long prefixes and the interesting rules (~ before the end, letters before
 * punctuation, numbers by value) decide.
 */
function generator(seed: number) {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
  const digits = () => (r() < 0.15 ? "0" : "") + String(Math.floor(r() * (r() < 0.7 ? 12 : 1000)));
  const part = (chars: readonly string[], n: number) => {
    let s = "";
    for (let i = 0; i < n; i++) s += r() < 0.45 ? digits() : pick(chars);
    return s;
  };
  const version = (): string => {
    const epoch = r() < 0.25 ? `${Math.floor(r() * 3)}:` : "";
    const rev = r() < 0.5 ? part(["a", "b", "z", "A", ".", "+", "~", "deb", "ubuntu"], 1 + Math.floor(r() * 4)) : "";
    const upChars = ["a", "b", "z", "A", ".", "+", "~", "rc", "dfsg", ...(rev ? ["-"] : [])];
    const up = digits() + part(upChars, Math.floor(r() * 5));
    return `${epoch}${up}${rev ? `-${rev}` : ""}`;
  };
  /** A close neighbour of v: what version bumps, backports and rebuilds look like. */
  const near = (v: string): string => {
    const m = pick([
      () => `${v}~`,
      () => `${v}~~`,
      () => `${v}+b1`,
      () => `${v}.0`,
      () => `${v}a`,
      () => (v.includes(":") ? v.replace(/^\d+:/, "") : `0:${v}`),
      () => (/-[^-]*$/.test(v) ? `${v}.1` : `${v}-0`),
      () => v.replace(/\d+(?!.*\d)/, (d) => String(Number(d) + (r() < 0.5 ? 1 : 0))),
      () => v.replace(/\d+/, (d) => `0${d}`),
    ]);
    return m();
  };
  return { version, near, r };
}

/** dpkg's answer for each pair (-1, 0, 1), from one shell running dpkg --compare-versions in a loop. */
function dpkgCompare(pairs: [string, string][]): number[] {
  const script = 'while read -r a b; do if dpkg --compare-versions "$a" lt "$b"; then echo -1; elif dpkg --compare-versions "$a" eq "$b"; then echo 0; else echo 1; fi; done';
  const out = execFileSync("sh", ["-c", script], { input: pairs.map(([a, b]) => `${a} ${b}`).join("\n") + "\n", encoding: "utf8" });
  return out.trim().split("\n").map(Number);
}

describe("dpkg version ordering, property-based", () => {
  const g = generator(20240611);
  const versions = Array.from({ length: 160 }, g.version);
  const pairs: [string, string][] = [];
  for (let i = 0; i < 120; i++) pairs.push([g.version(), g.version()]);
  for (const v of versions.slice(0, 120)) pairs.push([v, g.near(v)]);
  const sorted = [...versions].sort(compareVersions);
  for (let i = 1; i < sorted.length; i++) pairs.push([sorted[i - 1]!, sorted[i]!]);
  pairs.push(...PAIRS.filter(([a, b]) => /^[0-9]/.test(a) && /^[0-9]/.test(b)).map(([a, b]) => [a, b] as [string, string]));

  it("is reflexive, antisymmetric and transitive on generated versions", () => {
    expect(pairs.length).toBeGreaterThan(300);
    for (const v of versions) expect(compareVersions(v, v), v).toBe(0);
    for (const [a, b] of pairs) expect(Math.sign(compareVersions(a, b)), `${a} vs ${b}`).toBe(-Math.sign(compareVersions(b, a)) || 0);
    // Transitivity: in the sorted list, every element is <= every later one.
    for (let i = 0; i < sorted.length; i += 7) for (let j = i + 1; j < sorted.length; j += 5) expect(compareVersions(sorted[i]!, sorted[j]!), `${sorted[i]} vs ${sorted[j]}`).toBeLessThanOrEqual(0);
  });

  // Random pairs, near neighbours, the sorted list's adjacent pairs and the hand-written pairs: all as dpkg decides.
  it.runIf(existsSync("/usr/bin/dpkg"))("agrees with dpkg --compare-versions on every pair", () => {
    const want = dpkgCompare(pairs);
    expect(want).toHaveLength(pairs.length);
    const wrong = pairs.map(([a, b], i) => ({ a, b, dpkg: want[i], kiln: Math.sign(compareVersions(a, b)) || 0 })).filter((x) => x.dpkg !== x.kiln);
    expect(wrong).toEqual([]);
    // Not all trivial: each outcome is common.
    for (const o of [-1, 0, 1]) expect(want.filter((w) => w === o).length, `outcome ${o}`).toBeGreaterThan(o === 0 ? 5 : 50);
  });
});
