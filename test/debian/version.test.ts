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

  // Where dpkg is installed, the sorted order must agree with dpkg --compare-versions, pair by adjacent pair.
  it.runIf(existsSync("/usr/bin/dpkg"))("sorts like dpkg --compare-versions", () => {
    const all = [...new Set(PAIRS.flatMap(([a, b]) => [a, b]).filter((v) => /^[0-9]/.test(v)))].sort(compareVersions);
    for (let i = 1; i < all.length; i++) {
      const [a, b] = [all[i - 1]!, all[i]!];
      const op = compareVersions(a, b) === 0 ? "eq" : "lt";
      expect(() => execFileSync("dpkg", ["--compare-versions", a, op, b]), `${a} ${op} ${b}`).not.toThrow();
    }
  });
});
