import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatLock, parseLock, readLock, writeLock } from "../../src/debian/lockfile.js";
import { jsonLines, kiln, tempDir, writeProject } from "../helpers/kiln.js";
import { layerOf, readTar, type TarEntry } from "../helpers/layers.js";
import { canSign, type DebSpec, makeMirror, type Mirror } from "./debs.js";

/*
 * How kiln installs .debs, against a mirror of small packages made by the
 * test (signed with a throwaway key) on 127.0.0.1: paths written by two
 * packages, entries that would leave the root, usrmerge, accounts, the
 * package list, a corrupted download and --offline with nothing cached.
 */

const COPYRIGHT = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: base\n\nFiles: *\nCopyright: 2023 kiln\nLicense: Expat\n\nFiles: lib/*\nCopyright: 2023 other\nLicense: GPL-2+\n\nLicense: Expat\n Permission is hereby granted, free of charge, ...\n";

const DEBS: DebSpec[] = [
  { name: "base", version: "1.0-1", fields: { Source: "basesrc (1.0-1)" }, files: [{ path: "/usr/bin/tool", body: "base\n", mode: 0o755 }, { path: "/etc/shared", type: "directory" }, { path: "/usr/share/doc/base/copyright", body: COPYRIGHT }] },
  { name: "other", version: "2.0", fields: { Depends: "base" }, files: [{ path: "/usr/bin/tool", body: "other\n", mode: 0o755 }, { path: "/etc/shared", type: "directory", mode: 0o700 }, { path: "/usr/bin/tool2", body: "x" }] },
  { name: "replacer", version: "1", fields: { Depends: "base", Replaces: "base (<< 2)" }, files: [{ path: "/usr/bin/tool", body: "replacer\n", mode: 0o755 }] },
  { name: "link-a", files: [{ path: "/usr/bin/sh", type: "symlink", linkname: "dash" }, { path: "/usr/share/doc/link-a/copyright", body: "see /usr/share/common-licenses/GPL-2 and /usr/share/common-licenses/Apache-2.0.\n" }] },
  { name: "link-b", fields: { Depends: "link-a" }, files: [{ path: "/usr/bin/sh", type: "symlink", linkname: "dash" }] },
  { name: "evil-abs", files: [{ path: "/etc/x", type: "symlink", linkname: "/tmp" }, { path: "/etc/x/evil", body: "pwned" }] },
  { name: "evil-dotdot", files: [{ path: "./../evil", raw: true, body: "pwned" }] },
  { name: "evil-rel", files: [{ path: "/etc/up", type: "symlink", linkname: "../../.." }, { path: "/etc/up/evil", body: "pwned" }] },
  { name: "plants-link", files: [{ path: "/opt/data", type: "symlink", linkname: "/srv" }] },
  { name: "uses-link", fields: { Depends: "plants-link" }, files: [{ path: "/opt/data/file", body: "x" }] },
  // trixie's base-files ships the merged-/usr links; a later package's /lib entries go through them.
  { name: "merged-base", files: [{ path: "/lib", type: "symlink", linkname: "usr/lib" }, { path: "/usr/lib", type: "directory" }] },
  { name: "libfoo", fields: { Depends: "merged-base" }, files: [{ path: "/lib/libfoo.so.1", body: "foo" }] },
  {
    name: "usr-a",
    files: [
      { path: "/bin/a", body: "a\n", mode: 0o755 },
      { path: "/bin/rel", type: "symlink", linkname: "../usr/share/a/data" },
      { path: "/sbin/b", type: "symlink", linkname: "/usr/bin/b" },
      { path: "/usr/bin/b", body: "b\n", mode: 0o755 },
      { path: "/lib/x86_64-linux-gnu/liba.so.1", body: "liba" },
      { path: "/usr/share/a/data", body: "data" },
    ],
  },
  { name: "usr-dup", fields: { Depends: "usr-a" }, files: [{ path: "/usr/bin/a", body: "different\n", mode: 0o755 }] },
];

const RECIPES: Record<string, string> = {
  conflict: "packages: [other]",
  allowed: "packages: [other]\noverwrite: [/usr/bin/*]",
  replaces: "packages: [replacer]",
  links: "packages: [link-b]",
  "evil-abs": "packages: [evil-abs]",
  "evil-dotdot": "packages: [evil-dotdot]",
  "evil-rel": "packages: [evil-rel]",
  "through-abs": "packages: [uses-link]",
  merged: "packages: [libfoo]",
  usr: "packages: [usr-a]\nusrmerge: true\naccounts: true",
  "usr-clash": "packages: [usr-dup]\nusrmerge: true",
};

let mirror: Mirror;
let dir = "";
let store = "";

const yml = (url: string, keyring?: string) => `name: inst\narchs: [amd64]\nsourceDateEpoch: 1700000000\ndebian:\n  mirror: ${url}\n  suite: kiln-test\n${keyring ? `  keyring: ${keyring}\n` : ""}`;

beforeAll(async () => {
  if (!canSign()) return;
  mirror = await makeMirror(DEBS);
  store = await tempDir("kiln-inst-store");
  dir = await writeProject({ "kiln.yml": yml(mirror.url, mirror.keyring), ...Object.fromEntries(Object.entries(RECIPES).map(([n, r]) => [`pkg/${n}/build.yml`, `kind: debian\n${r}\n`])) });
  const r = await kiln(["-C", dir, "lock"], { store });
  if (r.code !== 0) throw new Error(`kiln lock failed: ${r.stderr}`);
});
afterAll(async () => mirror?.close());

/** Build one package; its failure (code, message) or its layer. */
async function build(name: string, args: string[] = [], opts: { store?: string; project?: string } = {}): Promise<{ code: number; stderr: string; fail?: { code: string; message: string }; layer?: Map<string, TarEntry> }> {
  const s = opts.store ?? store;
  const r = await kiln(["-C", opts.project ?? dir, "--json", ...args, "build", `pkg/${name}`], { store: s });
  const fail = jsonLines(r.stdout).find((e) => e.type === "fail") as { code: string; message: string } | undefined;
  if (r.code !== 0) return { code: r.code, stderr: r.stderr, fail };
  const entries = await readTar(await layerOf(s, name));
  return { code: 0, stderr: r.stderr, layer: new Map(entries.map((e) => [e.name.replace(/\/$/, ""), e])) };
}

describe.runIf(canSign())("installing .debs from a local mirror", () => {
  it("reports two packages writing one path, with both names, and lets `overwrite` pick the later one", async () => {
    const c = await build("conflict");
    expect(c.code).toBe(1);
    expect(c.fail).toMatchObject({ code: "E_DEBIAN_CONFLICT" });
    expect(c.fail!.message).toBe("pkg/conflict (amd64): /usr/bin/tool is written by two packages: /usr/bin/tool: file of base, then file of other");
    const a = await build("allowed");
    expect(a.code, a.stderr).toBe(0);
    expect(a.layer!.get("usr/bin/tool")!.body).toBe("other\n");
    // A shared directory is fine; it keeps the first package's mode.
    expect(a.layer!.get("etc/shared")).toMatchObject({ type: "directory", mode: 0o755 });
  });

  it("lets a package that declares Replaces win, and accepts identical symlinks", async () => {
    const r = await build("replaces");
    expect(r.code, r.stderr).toBe(0);
    expect(r.layer!.get("usr/bin/tool")!.body).toBe("replacer\n");
    const l = await build("links");
    expect(l.code, l.stderr).toBe(0);
    expect(l.layer!.get("usr/bin/sh")).toMatchObject({ type: "symlink", linkname: "dash" });
  });

  it("refuses entries that would leave the root, naming the package and the entry", async () => {
    const abs = await build("evil-abs");
    expect(abs.fail).toMatchObject({ code: "E_DEBIAN_PATH", message: "pkg/evil-abs (amd64): evil-abs: the entry ./etc/x/evil would be written through the absolute symlink /etc/x -> /tmp" });
    const dotdot = await build("evil-dotdot");
    expect(dotdot.fail).toMatchObject({ code: "E_DEBIAN_PATH", message: "pkg/evil-dotdot (amd64): evil-dotdot: the entry ./../evil leaves the root" });
    const rel = await build("evil-rel");
    expect(rel.fail).toMatchObject({ code: "E_DEBIAN_PATH", message: "pkg/evil-rel (amd64): evil-rel: the entry ./etc/up/evil would be written through the symlink /etc/up -> ../../.., which leaves the root" });
    // A symlink planted by an earlier package counts too, and is named with its package.
    const through = await build("through-abs");
    expect(through.fail).toMatchObject({ code: "E_DEBIAN_PATH", message: "pkg/through-abs (amd64): uses-link: the entry ./opt/data/file would be written through the absolute symlink /opt/data -> /srv (from plants-link)" });
    expect(abs.stderr).toContain("pkg/evil-abs/build.yml:2:");
  });

  it("writes through a relative directory symlink inside the image, as dpkg does on merged /usr", async () => {
    const r = await build("merged");
    expect(r.code, r.stderr).toBe(0);
    expect(r.layer!.get("lib")).toMatchObject({ type: "symlink", linkname: "usr/lib" });
    expect(r.layer!.get("usr/lib/libfoo.so.1")!.body).toBe("foo");
    expect(r.layer!.has("lib/libfoo.so.1")).toBe(false);
    // dpkg's database keeps the package's own path.
    expect(r.layer!.get("var/lib/dpkg/info/libfoo.list")!.body).toContain("/lib/libfoo.so.1\n");
  });

  it("usrmerge moves /bin, /sbin, /lib into /usr with relative links; accounts writes the minimal set", async () => {
    const r = await build("usr");
    expect(r.code, r.stderr).toBe(0);
    const l = r.layer!;
    for (const d of ["bin", "sbin", "lib"]) expect(l.get(d)).toMatchObject({ type: "symlink", linkname: `usr/${d}` });
    expect(l.has("lib64")).toBe(false);
    expect(l.get("usr/bin/a")).toMatchObject({ type: "file", mode: 0o755, body: "a\n" });
    expect(l.get("usr/lib/x86_64-linux-gnu/liba.so.1")!.body).toBe("liba");
    // A moved relative link still reaches its target; /sbin/b -> /usr/bin/b moved as it is.
    expect(l.get("usr/bin/rel")).toMatchObject({ type: "symlink", linkname: "../share/a/data" });
    expect(l.get("usr/sbin/b")).toMatchObject({ type: "symlink", linkname: "/usr/bin/b" });
    expect([...l.keys()].filter((p) => /^(bin|sbin|lib)\//.test(p))).toEqual([]);
    expect(l.get("etc/passwd")).toMatchObject({ mode: 0o644, uid: 0, body: "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n" });
    expect(l.get("etc/group")!.body).toBe("root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n");
    // pwconv's shadow: locked passwords, last change on the day of SOURCE_DATE_EPOCH (1700000000 → day 19675).
    expect(l.get("etc/shadow")).toMatchObject({ mode: 0o640, body: "root:*:19675:0:99999:7:::\ndaemon:*:19675:0:99999:7:::\nnobody:*:19675:0:99999:7:::\n" });
    expect(l.get("etc/gshadow")!.body).toBe("root:*::\ndaemon:*::\nnogroup:*::\n");
    const clash = await build("usr-clash");
    expect(clash.fail).toMatchObject({ code: "E_DEBIAN_CONFLICT" });
    expect(clash.fail!.message).toContain("usrmerge: /bin/a (from usr-a) and /usr/bin/a (from usr-dup) are different files");
  });

  it("lists the installed packages with source and licenses in /var/lib/kiln/debian-packages.json", async () => {
    const r = await build("replaces");
    const list = JSON.parse(r.layer!.get("var/lib/kiln/debian-packages.json")!.body) as unknown[];
    expect(list).toEqual([
      { name: "base", version: "1.0-1", architecture: "amd64", source: "basesrc", sourceVersion: "1.0-1", licenses: ["Expat", "GPL-2+"], licenseFrom: "copyright-format" },
      { name: "replacer", version: "1", architecture: "amd64", source: "replacer", sourceVersion: "1", licenses: [], licenseFrom: "none" },
    ]);
    const l = await build("links");
    expect(JSON.parse(l.layer!.get("var/lib/kiln/debian-packages.json")!.body)).toContainEqual(expect.objectContaining({ name: "link-a", licenses: ["GPL-2", "Apache-2.0"], licenseFrom: "guess" }));
  });

  it("says which file a corrupted download is (E_DEBIAN_CHECKSUM), and what --offline lacks with an empty cache", async () => {
    const fresh = await tempDir("kiln-inst-fresh");
    const off = await kiln(["-C", dir, "--offline", "lock", "--update"], { store: fresh });
    expect(off.code).toBe(1);
    expect(off.stderr).toMatch(/E_DEBIAN_INDEX\]: the index of kiln-test from http:\/\/127\.0\.0\.1:\d+ is not cached and --offline forbids downloading it/);
    const b = await build("links", ["--offline"], { store: fresh });
    expect(b.fail).toMatchObject({ code: "E_SOURCE_FETCH" });
    expect(b.fail!.message).toMatch(/^link-a 1\.0 \(pool\/main\/l\/link-a\/link-a_1\.0_amd64\.deb\) is not in the download cache, and --offline forbids downloading it from http:\/\/127\.0\.0\.1:\d+$/);
    const file = join(mirror.dir, mirror.pool["link-a"]!);
    const good = await readFile(file);
    const bad = Buffer.from(good);
    bad[bad.length - 10] = bad[bad.length - 10]! ^ 0xff;
    await writeFile(file, bad);
    try {
      const c = await build("links", [], { store: fresh });
      expect(c.fail).toMatchObject({ code: "E_DEBIAN_CHECKSUM" });
      expect(c.fail!.message).toMatch(new RegExp(`^link-a 1\\.0 \\(http://127\\.0\\.0\\.1:\\d+/${mirror.pool["link-a"]!.replace(/\./g, "\\.")}\\) has sha256 [0-9a-f]{64}, but kiln\\.lock pins [0-9a-f]{64}$`));
    } finally {
      await writeFile(file, good);
    }
  });

  it("reads and writes kiln.lock byte for byte (write → read → write)", async () => {
    const text = await readFile(join(dir, "kiln.lock"), "utf8");
    expect(formatLock(parseLock(text))).toBe(text);
    const copy = await tempDir("kiln-lock-copy");
    await writeLock(copy, (await readLock(dir))!);
    expect(await readFile(join(copy, "kiln.lock"), "utf8")).toBe(text);
    await writeLock(copy, (await readLock(copy))!);
    expect(await readFile(join(copy, "kiln.lock"), "utf8")).toBe(text);
  });
});
