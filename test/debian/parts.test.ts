import { describe, expect, it } from "vitest";
import { KilnError } from "../../src/core/errors.js";
import { busyboxApplets } from "../../src/debian/busybox.js";
import { libcmp } from "../../src/debian/ldcache.js";
import { copyrightLicenses, installedPackage } from "../../src/debian/manifest.js";
import { normalizePath, relativeTarget, Tree } from "../../src/debian/tree.js";

/** A fake busybox: some bytes, the install location table (nibbles), more bytes, the name table. */
function fakeBusybox(applets: [string, number][], opts: { table?: boolean } = {}): Buffer {
  const names = [...applets].sort((a, b) => (a[0] < b[0] ? -1 : 1));
  const loc = Buffer.alloc(Math.ceil(names.length / 2));
  names.forEach(([, d], i) => (loc[i >> 1] = loc[i >> 1]! | (i & 1 ? d << 4 : d)));
  return Buffer.concat([Buffer.from("\x7fELF junk \xff\xee\xdd"), opts.table === false ? Buffer.alloc(0) : loc, Buffer.from("\xaa\xbb\0"), Buffer.from(`${names.map(([n]) => n).join("\0")}\0\0`, "latin1")]);
}

const COMMON: [string, number][] = [
  ["[", 3], ["[[", 3], ["ls", 1], ["cat", 1], ["cp", 1], ["sh", 1], ["mount", 1], ["init", 2], ["ifconfig", 2], ["reboot", 2],
  ["awk", 3], ["env", 3], ["find", 3], ["head", 3], ["chroot", 4], ["crond", 4], ["linuxrc", 0], ["zcat", 1],
];

describe("busybox applet table", () => {
  it("reads names and install directories from the binary", () => {
    const a = busyboxApplets(fakeBusybox(COMMON));
    expect(typeof a).not.toBe("string");
    const byName = Object.fromEntries((a as { name: string; dir: string }[]).map((x) => [x.name, x.dir]));
    expect(byName).toMatchObject({ "[": "/usr/bin", ls: "/bin", init: "/sbin", chroot: "/usr/sbin", linuxrc: "/", zcat: "/bin" });
    expect(Object.keys(byName)).toHaveLength(COMMON.length);
  });

  it("says why, instead of guessing, when the table is missing or the names are not busybox's", () => {
    expect(busyboxApplets(fakeBusybox(COMMON, { table: false }))).toMatch(/no install directory table/);
    expect(busyboxApplets(Buffer.from("\x7fELF nothing here"))).toMatch(/no applet name table/);
    // A table whose anchors disagree (ls in /usr/sbin) is not taken.
    expect(busyboxApplets(fakeBusybox(COMMON.map(([n, d]) => [n, n === "ls" ? 4 : d])))).toMatch(/no install directory table/);
  });
});

describe("ld.so.cache name order", () => {
  it("compares numbers as numbers, as glibc's _dl_cache_libcmp", () => {
    expect(libcmp("libc.so.10", "libc.so.6")).toBeGreaterThan(0);
    expect(libcmp("libc.so.6", "libc.so.6")).toBe(0);
    expect(libcmp("libfoo.so", "libfoo.so.1")).toBeLessThan(0);
    expect(libcmp("liba1", "libab")).toBeGreaterThan(0);
    expect(["libm.so.6", "libc.so.6", "libc.so.10", "ld-linux-x86-64.so.2"].sort((a, b) => libcmp(b, a))).toEqual(["libm.so.6", "libc.so.10", "libc.so.6", "ld-linux-x86-64.so.2"]);
  });
});

describe("tree paths", () => {
  const tree = () => {
    const t = new Tree();
    t.links.set("/lib", { target: "usr/lib", owner: "base-files" });
    t.links.set("/etc/x", { target: "/tmp", owner: "evil" });
    t.links.set("/a", { target: "b", owner: "p" });
    t.links.set("/b", { target: "a", owner: "p" });
    return t;
  };
  const refused = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      if (e instanceof KilnError && e.code === "E_DEBIAN_PATH") return e.message;
      throw e;
    }
    throw new Error("not refused");
  };

  it("installs through relative links inside the image and refuses the rest", () => {
    const t = tree();
    expect(t.installPath("/lib/x86_64-linux-gnu/libc.so.6", "libc6", "./lib/x86_64-linux-gnu/libc.so.6")).toBe("/usr/lib/x86_64-linux-gnu/libc.so.6");
    expect(t.installPath("/lib", "libc6", "./lib/")).toBe("/lib");
    expect(refused(() => t.installPath("/etc/x/evil", "pkg", "./etc/x/evil"))).toBe("pkg: the entry ./etc/x/evil would be written through the absolute symlink /etc/x -> /tmp (from evil)");
    expect(refused(() => t.installPath("/a/file", "p", "./a/file"))).toMatch(/symlink loop/);
    t.links.set("/usr/up", { target: "../..", owner: "q" });
    expect(refused(() => t.installPath("/usr/up/f", "q", "./usr/up/f"))).toBe("q: the entry ./usr/up/f would be written through the symlink /usr/up -> ../.., which leaves the root");
  });

  it("resolves like a chroot for lookups, and makes relative link targets", () => {
    const t = tree();
    expect(t.resolve("/etc/x/y")).toBe("/tmp/y");
    // As the kernel does: ".." after a symlink is taken from where the link leads.
    expect(t.resolve("/lib/../etc")).toBe("/usr/etc");
    expect(t.resolve("/a")).toBeUndefined();
    expect(normalizePath("/a/./b/../c/")).toBe("/a/c");
    expect(normalizePath("/a/../..")).toBeUndefined();
    expect(relativeTarget("/usr/bin/rel", "/usr/share/a/data")).toBe("../share/a/data");
    expect(relativeTarget("/bin", "/usr/bin")).toBe("usr/bin");
  });
});

describe("package list", () => {
  it("reads licenses from machine-readable copyright files, and guesses from common-licenses otherwise", () => {
    const dep5 = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: GPL-2+ or Artistic\n\nFiles: debian/*\nLicense: GPL-2+ or Artistic\n\nFiles: src/x.c\nLicense: BSD-3-clause\n Redistribution ...\n\nLicense: BSD-3-clause\n text\n";
    expect(copyrightLicenses(dep5)).toEqual({ licenses: ["GPL-2+ or Artistic", "BSD-3-clause"], licenseFrom: "copyright-format" });
    expect(copyrightLicenses("This is free software; see /usr/share/common-licenses/LGPL-2.1.\nPermission is hereby granted, free of charge, to any person\n")).toEqual({ licenses: ["LGPL-2.1", "Expat"], licenseFrom: "guess" });
    expect(copyrightLicenses("All rights reserved.")).toEqual({ licenses: [], licenseFrom: "none" });
    expect(copyrightLicenses(undefined)).toEqual({ licenses: [], licenseFrom: "none" });
  });

  it("takes the source package and its version from Source:, else the binary's", () => {
    expect(installedPackage("Package: libc6\nSource: glibc\nVersion: 2.36-9\nArchitecture: amd64\n", undefined)).toMatchObject({ source: "glibc", sourceVersion: "2.36-9" });
    expect(installedPackage("Package: bb\nSource: busybox (1:1.35.0-4)\nVersion: 1:1.35.0-4+b1\nArchitecture: arm64\n", undefined)).toMatchObject({ name: "bb", version: "1:1.35.0-4+b1", architecture: "arm64", source: "busybox", sourceVersion: "1:1.35.0-4" });
    expect(installedPackage("Package: x\nVersion: 1\nArchitecture: all\n", undefined)).toMatchObject({ source: "x", sourceVersion: "1" });
  });
});
