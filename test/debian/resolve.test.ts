import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { KilnError } from "../../src/core/errors.js";
import { parseDeb822Sources, parseSourcesList } from "../../src/debian/apt-sources.js";
import { parseRelations, parseStanzas } from "../../src/debian/control.js";
import { pathFilter } from "../../src/debian/glob.js";
import { formatLock, parseLock, type LockFile } from "../../src/debian/lockfile.js";
import { resolve, type ResolveRequest, Universe } from "../../src/debian/resolve.js";
import { tempDir } from "../helpers/kiln.js";

/** A small synthetic Packages index (amd64), written to disk and read back as kiln reads a mirror's. */
const PACKAGES = `
Package: libc6
Version: 2.36-9+deb12u13
Architecture: amd64
Multi-Arch: same
Priority: optional
Depends: libgcc-s1
Filename: pool/main/g/glibc/libc6_2.36-9+deb12u13_amd64.deb
Size: 100
SHA256: ${"1".repeat(64)}
Description: the C library
 with a continuation line

Package: libgcc-s1
Version: 12.2.0-14
Architecture: amd64
Multi-Arch: same
Depends: gcc-12-base (= 12.2.0-14), libc6 (>= 2.35)
Filename: pool/main/g/gcc-12/libgcc-s1_12.2.0-14_amd64.deb
Size: 10
SHA256: ${"2".repeat(64)}

Package: gcc-12-base
Version: 12.2.0-14
Architecture: amd64
Multi-Arch: same
Filename: pool/main/g/gcc-12/gcc-12-base_12.2.0-14_amd64.deb
Size: 10
SHA256: ${"3".repeat(64)}

Package: libc6
Version: 2.36-9+deb12u13
Architecture: arm64
Filename: pool/main/g/glibc/libc6_2.36-9+deb12u13_arm64.deb
Size: 100
SHA256: ${"4".repeat(64)}

Package: busybox-static
Version: 1:1.35.0-4+b3
Architecture: amd64
Depends: libc6 (>= 9.9)
Filename: pool/main/b/busybox/busybox-static_1.35.0-4+b3_amd64.deb
Size: 10
SHA256: ${"5".repeat(64)}

Package: app
Version: 1.0
Architecture: amd64
Pre-Depends: init-helper
Depends: missing-lib | libalt, mail-transport-agent, libfoo (>= 2.0), python3:any, awk, libc6:native, docs
Filename: pool/main/a/app/app_1.0_amd64.deb
Size: 10
SHA256: ${"6".repeat(64)}

Package: init-helper
Version: 1
Architecture: all
Filename: pool/main/i/init-helper/init-helper_1_all.deb
Size: 10
SHA256: ${"7".repeat(64)}

Package: libalt
Version: 3
Architecture: amd64
Filename: f
Size: 1
SHA256: ${"8".repeat(64)}

Package: exim4-daemon-light
Version: 4.96-15
Architecture: amd64
Priority: standard
Provides: mail-transport-agent
Conflicts: mail-transport-agent
Filename: f
Size: 1
SHA256: ${"9".repeat(64)}

Package: postfix
Version: 3.7.10-0+deb12u1
Architecture: amd64
Priority: optional
Provides: mail-transport-agent
Conflicts: mail-transport-agent
Filename: f
Size: 1
SHA256: ${"a".repeat(64)}

Package: libfoo
Version: 1.5
Architecture: amd64
Filename: f
Size: 1
SHA256: ${"b".repeat(64)}

Package: libfoo
Version: 2.1
Architecture: amd64
Filename: f
Size: 1
SHA256: ${"c".repeat(64)}

Package: python3
Version: 3.11.2-1+b1
Architecture: amd64
Multi-Arch: allowed
Filename: f
Size: 1
SHA256: ${"d".repeat(64)}

Package: perl
Version: 5.36.0-7
Architecture: amd64
Filename: f
Size: 1
SHA256: ${"e".repeat(64)}

Package: mawk
Version: 1.3.4
Architecture: amd64
Priority: required
Provides: awk
Filename: f
Size: 1
SHA256: ${"f".repeat(64)}

Package: docs
Version: 1
Architecture: all
Multi-Arch: foreign
Filename: f
Size: 1
SHA256: ${"0".repeat(64)}

Package: needs-perl-any
Version: 1
Architecture: amd64
Depends: perl:any
Filename: f
Size: 1
SHA256: ${"1".repeat(64)}

Package: needs-abi
Version: 1
Architecture: amd64
Depends: foo-abi (>= 2)
Filename: f
Size: 1
SHA256: ${"2".repeat(64)}

Package: foo-unversioned
Version: 9
Architecture: amd64
Provides: foo-abi
Filename: f
Size: 1
SHA256: ${"3".repeat(64)}

Package: foo-v2
Version: 1
Architecture: amd64
Provides: foo-abi (= 2.1)
Filename: f
Size: 1
SHA256: ${"4".repeat(64)}

Package: old-foo
Version: 1
Architecture: amd64
Depends: libfoo (<< 2.0)
Filename: f
Size: 1
SHA256: ${"5".repeat(64)}

Package: a-tool
Version: 1
Architecture: amd64
Conflicts: b-tool
Filename: f
Size: 1
SHA256: ${"6".repeat(64)}

Package: b-tool
Version: 1
Architecture: amd64
Filename: f
Size: 1
SHA256: ${"7".repeat(64)}

Package: picky
Version: 1
Architecture: amd64
Depends: a-tool | c-tool
Filename: f
Size: 1
SHA256: ${"8".repeat(64)}

Package: c-tool
Version: 1
Architecture: amd64
Filename: f
Size: 1
SHA256: ${"9".repeat(64)}

Package: breaker
Version: 1
Architecture: amd64
Breaks: libfoo (<< 3)
Filename: f
Size: 1
SHA256: ${"a".repeat(64)}

Package: base-files
Version: 12.4
Architecture: amd64
Essential: yes
Priority: required
Filename: f
Size: 1
SHA256: ${"b".repeat(64)}

Package: chain-top
Version: 1
Architecture: amd64
Depends: chain-mid
Filename: f
Size: 1
SHA256: ${"c".repeat(64)}

Package: chain-mid
Version: 1
Architecture: amd64
Depends: busybox-static
Filename: f
Size: 1
SHA256: ${"d".repeat(64)}
`;

let u: Universe;
beforeAll(async () => {
  const dir = await tempDir("kiln-deb-index");
  await writeFile(join(dir, "Packages"), PACKAGES);
  u = Universe.fromStanzas("amd64", parseStanzas(await readFile(join(dir, "Packages"), "utf8")), "test (amd64)");
});

const names = (req: ResolveRequest) => resolve(u, req).packages.map((p) => `${p.name}=${p.version}`);
function fails(req: ResolveRequest): KilnError {
  try {
    resolve(u, req);
  } catch (err) {
    if (err instanceof KilnError) return err;
    throw err;
  }
  throw new Error("resolve did not fail");
}

describe("deb822 and relations", () => {
  it("parses stanzas with continuation lines, and relation fields with alternatives, versions and qualifiers", () => {
    const s = parseStanzas(PACKAGES);
    expect(s[0]!.Description).toBe("the C library\nwith a continuation line");
    expect(parseRelations("a (>= 1:2.0~rc1) | b:any, c [amd64], d [!amd64], e:native (<< 3) <!nocheck>", "amd64")).toEqual([
      [{ name: "a", op: ">=", version: "1:2.0~rc1" }, { name: "b", arch: "any" }],
      [{ name: "c" }],
      [{ name: "e", arch: "native", op: "<<", version: "3" }],
    ]);
  });
});

describe("resolver (synthetic index)", () => {
  it("closes over Depends and Pre-Depends, in install order, using only this arch and all", () => {
    expect(names({ packages: ["libc6"] })).toEqual(["gcc-12-base=12.2.0-14", "libgcc-s1=12.2.0-14", "libc6=2.36-9+deb12u13"]);
    const app = names({ packages: ["app"] });
    // First satisfiable alternative; a virtual package by its best provider (Priority, then name);
    // the newest libfoo that fits; :any on Multi-Arch: allowed; awk through Provides; arch all and Multi-Arch: foreign.
    expect(app).toEqual(expect.arrayContaining(["init-helper=1", "libalt=3", "exim4-daemon-light=4.96-15", "libfoo=2.1", "python3=3.11.2-1+b1", "mawk=1.3.4", "docs=1", "libc6=2.36-9+deb12u13"]));
    expect(app).not.toContain("postfix=3.7.10-0+deb12u1");
    expect(app.at(-1)).toBe("app=1.0");
    expect(app.indexOf("init-helper=1")).toBeLessThan(app.indexOf("app=1.0"));
  });

  it("prefers what is already chosen, and honours version constraints on requests and virtual packages", () => {
    expect(names({ packages: ["postfix", "app"] })).toContain("postfix=3.7.10-0+deb12u1");
    expect(names({ packages: ["postfix", "app"] })).not.toContain("exim4-daemon-light=4.96-15");
    expect(names({ packages: ["old-foo"] })).toEqual(["libfoo=1.5", "old-foo=1"]);
    expect(names({ packages: ["libfoo (<< 2)"] })).toEqual(["libfoo=1.5"]);
    // Only a versioned Provides satisfies a versioned dependency.
    expect(names({ packages: ["needs-abi"] })).toEqual(["foo-v2=1", "needs-abi=1"]);
  });

  it("skips an alternative that conflicts with the chosen set", () => {
    expect(names({ packages: ["b-tool", "picky"] })).toEqual(["b-tool=1", "c-tool=1", "picky=1"]);
  });

  it("explains an unsatisfiable chain from the request", () => {
    const e = fails({ packages: ["chain-top"] });
    expect(e.code).toBe("E_DEBIAN_RESOLVE");
    expect(e.message).toBe("chain-top → chain-mid → busybox-static → libc6 (>= 9.9): no version satisfies; test (amd64) has 2.36-9+deb12u13");
    expect(fails({ packages: ["busybox-static"] }).message).toBe("busybox-static → libc6 (>= 9.9): no version satisfies; test (amd64) has 2.36-9+deb12u13");
    expect(fails({ packages: ["libfo"] }).message).toBe("libfo: not in test (amd64); did you mean 'libfoo'?");
    expect(fails({ packages: ["needs-perl-any"] }).message).toMatch(/needs-perl-any → perl:any: ':any' needs Multi-Arch: allowed, but perl is Multi-Arch: no/);
    expect(fails({ packages: ["libc6:arm64"] }).message).toMatch(/libc6:arm64: no arm64 package/);
  });

  it("reports Conflicts and Breaks in the chosen set", () => {
    const e = fails({ packages: ["a-tool", "b-tool"] });
    expect(e.code).toBe("E_DEBIAN_RESOLVE");
    expect(e.message).toBe("b-tool: a-tool 1 (chosen via a-tool) declares Conflicts: b-tool");
    const b = fails({ packages: ["libfoo", "breaker"] });
    expect(b.message).toBe("breaker: breaker 1 declares Breaks: libfoo (<< 3), and libfoo 2.1 is chosen (via libfoo)");
  });

  it("leaves out excluded packages and Essential ones unless asked", () => {
    const r = resolve(u, { packages: ["libc6"], exclude: ["libgcc-s1"] });
    expect(r.packages.map((p) => p.name)).toEqual(["libc6"]);
    expect(r.skipped).toEqual(["libc6 → libgcc-s1 (excluded)"]);
    // Excluding one alternative drops the dependency, rather than installing another alternative.
    expect(names({ packages: ["app"], exclude: ["missing-lib"] })).not.toContain("libalt=3");
    expect(resolve(u, { packages: ["app"], exclude: ["missing-lib"] }).skipped).toEqual(["app → missing-lib | libalt (excluded)"]);
    expect(names({ packages: ["libalt", "app"], exclude: ["missing-lib"] })).toContain("libalt=3");
    expect(names({ packages: ["init-helper"] })).toEqual(["init-helper=1"]);
    expect(names({ packages: ["init-helper"], essential: true })).toEqual(["base-files=12.4", "init-helper=1"]);
  });
});

describe("apt sources, paths globs, lock format", () => {
  it("reads one-line and deb822 apt sources", () => {
    const deb822 = "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb-src\nURIs: http://x/debian\nSuites: bookworm\n\nTypes: deb\nEnabled: no\nURIs: http://off/debian\nSuites: sid\n";
    expect(parseDeb822Sources(deb822, "debian.sources")).toEqual([
      { uri: "http://deb.debian.org/debian", suites: ["bookworm", "bookworm-updates"], components: ["main"], signedBy: "/usr/share/keyrings/debian-archive-keyring.gpg", file: "debian.sources" },
    ]);
    expect(parseSourcesList("# comment\ndeb-src http://a/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://ftp.de.debian.org/debian/ trixie main contrib # x\n", "sources.list")).toEqual([
      { uri: "http://ftp.de.debian.org/debian/", suites: ["trixie"], components: ["main", "contrib"], signedBy: "/k.gpg", file: "sources.list" },
    ]);
  });

  it("matches paths globs, keeping what is under a matched directory", () => {
    const keep = pathFilter(["/boot/vmlinuz-*", "/lib/modules/**/virtio*.ko", "/etc/ssl"]);
    expect(keep("/boot/vmlinuz-6.1.0-26-amd64")).toBe(true);
    expect(keep("/boot/config-6.1.0-26-amd64")).toBe(false);
    expect(keep("/lib/modules/6.1.0/kernel/drivers/virtio/virtio_ring.ko")).toBe(true);
    expect(keep("/lib/modules/virtio.ko")).toBe(true);
    expect(keep("/lib/modules/6.1.0/kernel/fs/ext4/ext4.ko")).toBe(false);
    expect(keep("/etc/ssl/certs/ca.pem")).toBe(true);
    expect(pathFilter(undefined)("/anything")).toBe(true);
  });

  it("writes kiln.lock deterministically, one package per line, and reads it back", () => {
    const lock: LockFile = {
      lockVersion: 1,
      mirror: "http://deb.debian.org/debian",
      suite: "bookworm",
      components: ["main"],
      recipes: {
        zz: { request: { packages: ["b"], exclude: [], essential: false }, archs: { arm64: [], amd64: [] } },
        aa: { request: { packages: ["a (>= 1)"], exclude: ["x"], essential: true }, archs: { amd64: [{ name: "a", version: "1:1.0-1", architecture: "amd64", filename: "pool/main/a/a/a_1.0-1_amd64.deb", size: 3, sha256: "f".repeat(64) }] } },
      },
    };
    const text = formatLock(lock);
    expect(text.indexOf('"aa"')).toBeLessThan(text.indexOf('"zz"'));
    expect(text.indexOf('"amd64": []')).toBeLessThan(text.indexOf('"arm64": []'));
    expect(text).toContain(`{"name": "a", "version": "1:1.0-1", "architecture": "amd64", "size": 3, "sha256": "${"f".repeat(64)}", "filename": "pool/main/a/a/a_1.0-1_amd64.deb"}`);
    expect(formatLock(parseLock(text))).toBe(text);
    expect(() => parseLock(text.replace("f".repeat(64), "xyz"))).toThrow(/sha256 is not 64 lower-case hex digits/);
    expect(() => parseLock("<<<<<<< HEAD\n")).toThrow(/not valid JSON/);
  });
});
