import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import tar from "tar-stream";
import { beforeAll, describe, expect, it } from "vitest";
import { built, jsonLines, kiln, tempDir, writeProject } from "../helpers/kiln.js";

/*
 * End to end against the real Debian mirror (bookworm), kept small: the
 * indexes of two architectures once (shared store) and busybox-static
 * (~0.9 MB) per architecture.
 */
const MIRROR = "http://deb.debian.org/debian";
const yml = (name: string, archs = "[amd64, arm64]", mirror = MIRROR) => `name: ${name}\narchs: ${archs}\nsourceDateEpoch: 1700000000\ndebian:\n  mirror: ${mirror}\n  suite: bookworm\n`;
const BB = "kind: debian\npackages: [busybox-static]\n";

interface Entry {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  linkname?: string | null;
  body: Buffer;
}

/** The layer tar of the image `ref` (ORG/NAME:TAG) in a store. */
async function layerBlob(store: string, ref: string): Promise<string> {
  const blob = (d: string) => join(store, "blobs", "sha256", d.slice(7));
  const idx = JSON.parse(await readFile(join(store, "index.json"), "utf8")) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
  const m = idx.manifests.find((x) => x.annotations?.["org.opencontainers.image.ref.name"] === ref);
  if (!m) throw new Error(`no image ${ref}`);
  const manifest = JSON.parse(await readFile(blob(m.digest), "utf8")) as { layers: { digest: string }[] };
  return blob(manifest.layers[0]!.digest);
}

/** The labels in the image config of `ref`. */
async function imageLabels(store: string, ref: string): Promise<Record<string, string>> {
  const blob = (d: string) => join(store, "blobs", "sha256", d.slice(7));
  const idx = JSON.parse(await readFile(join(store, "index.json"), "utf8")) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
  const m = idx.manifests.find((x) => x.annotations?.["org.opencontainers.image.ref.name"] === ref)!;
  const manifest = JSON.parse(await readFile(blob(m.digest), "utf8")) as { config: { digest: string } };
  return (JSON.parse(await readFile(blob(manifest.config.digest), "utf8")) as { config?: { Labels?: Record<string, string> } }).config?.Labels ?? {};
}

/** The layer of the image `ref`, entry by entry with bodies. */
async function layer(store: string, ref: string): Promise<Map<string, Entry>> {
  const ex = tar.extract();
  Readable.from(await readFile(await layerBlob(store, ref))).pipe(ex);
  const out = new Map<string, Entry>();
  for await (const e of ex) {
    const chunks: Buffer[] = [];
    for await (const c of e) chunks.push(c as Buffer);
    const h = e.header;
    out.set(h.name.replace(/\/$/, ""), { type: h.type ?? "file", mode: h.mode ?? 0, uid: h.uid ?? 0, gid: h.gid ?? 0, linkname: h.linkname, body: Buffer.concat(chunks) });
  }
  return out;
}

interface Lock {
  mirror: string;
  suite: string;
  recipes: Record<string, { request: { packages: string[] }; archs: Record<string, { name: string; version: string; architecture: string; filename: string; size: number; sha256: string }[]> }>;
}

let store = "";
let main = "";
let lockText = "";

beforeAll(async () => {
  store = await tempDir("kiln-deb-store");
  main = await writeProject({ "kiln.yml": yml("deb"), "pkg/bb/build.yml": BB, "pkg/motd/build.yml": "kind: files\nfiles:\n  - path: /etc/motd\n    contents: hi\n" });
});

/** Build with --json; the ref of each target from the result. */
async function build(dir: string, args: string[] = [], words: string[] = []): Promise<{ code: number; stdout: string; stderr: string; refs: Record<string, string> }> {
  const r = await kiln(["-C", dir, "--json", ...args, "build", ...words], { store });
  const res = jsonLines(r.stdout).find((e) => e.type === "result") as { data: { targets: { target: string; ref: string }[] } } | undefined;
  return { ...r, refs: Object.fromEntries((res?.data.targets ?? []).map((t) => [t.target, t.ref])) };
}

/** A second project sharing the store, with kiln.lock copied from the first (edited by `edit`). */
async function sibling(files: Record<string, string>, edit: (l: string) => string = (l) => l): Promise<string> {
  const dir = await writeProject(files);
  await writeFile(join(dir, "kiln.lock"), edit(lockText));
  return dir;
}

describe("debian packages against deb.debian.org", () => {
  it("kiln lock pins busybox-static for amd64 and arm64, and keeps pins on a second run", async () => {
    const r = await kiln(["-C", main, "lock"], { store });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/pkg\/bb\s+amd64\s+locked\s+1 package/);
    if (existsSync("/usr/bin/gpgv") && existsSync("/usr/share/keyrings/debian-archive-keyring.gpg")) expect(r.stdout).toContain("InRelease verified by gpgv");
    lockText = await readFile(join(main, "kiln.lock"), "utf8");
    const lock = JSON.parse(lockText) as Lock;
    expect(lock).toMatchObject({ mirror: MIRROR, suite: "bookworm" });
    const bb = lock.recipes.bb!;
    expect(bb.request.packages).toEqual(["busybox-static"]);
    for (const arch of ["amd64", "arm64"]) {
      const [deb, ...rest] = bb.archs[arch]!;
      expect(rest).toEqual([]);
      expect(deb).toMatchObject({ name: "busybox-static", architecture: arch });
      expect(deb!.version).toMatch(/^1:1\.35\.0-4/);
      expect(deb!.filename).toMatch(new RegExp(`^pool/main/b/busybox/busybox-static_1\\.35\\.0-4.*_${arch}\\.deb$`));
      expect(deb!.size).toBeGreaterThan(100_000);
      expect(deb!.sha256).toMatch(/^[0-9a-f]{64}$/);
    }
    // Nothing missing: the second run touches no network (--offline proves it) and changes nothing.
    const again = await kiln(["-C", main, "--offline", "lock"], { store });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/pkg\/bb\s+arm64\s+kept/);
    expect(await readFile(join(main, "kiln.lock"), "utf8")).toBe(lockText);
    const check = await kiln(["-C", main, "check-update"], { store });
    expect(check.code, check.stderr).toBe(0);
    expect(check.stdout).toContain("kiln.lock is current");
  });

  it("builds a layer with /bin/busybox (root, 0755) and a dpkg status", async () => {
    const r = await build(main);
    expect(r.code, r.stderr).toBe(0);
    expect(built(r.stdout)).toEqual(["pkg/bb", "pkg/motd"]);
    const amd = await layer(store, r.refs["pkg/bb"]!);
    const busybox = amd.get("bin/busybox")!;
    expect(busybox).toMatchObject({ type: "file", uid: 0, gid: 0, mode: 0o755 });
    expect(busybox.body.subarray(0, 4).toString("latin1")).toBe("\x7fELF");
    expect(busybox.body.readUInt16LE(18)).toBe(0x3e); // x86-64
    expect(amd.get("usr/share/doc/busybox-static/copyright")).toMatchObject({ type: "file", mode: 0o644, uid: 0 });
    const status = amd.get("var/lib/dpkg/status")!.body.toString("utf8");
    expect(status).toMatch(/^Package: busybox-static\nStatus: install ok installed\n/);
    expect(status).toMatch(/^Architecture: amd64$/m);
    expect(amd.get("var/lib/dpkg/info/busybox-static.list")!.body.toString()).toContain("/bin/busybox\n");
    if (existsSync("/usr/bin/dpkg")) {
      // dpkg itself reads the database kiln wrote, and checks every file against the package's md5sums.
      const root = await tempDir("kiln-deb-root");
      execFileSync("tar", ["-xf", await layerBlob(store, r.refs["pkg/bb"]!), "-C", root]);
      const admin = [`--root=${root}`, `--admindir=${root}/var/lib/dpkg`];
      expect(execFileSync("dpkg-query", [...admin, "-W", "-f", "${Package} ${Version} ${Status}\\n"], { encoding: "utf8" })).toMatch(/^busybox-static 1:1\.35\.0-4\S* install ok installed\n$/);
      expect(execFileSync("dpkg", [...admin, "--verify"], { encoding: "utf8" })).toBe("");
      expect(execFileSync("dpkg", [...admin, "--search", "/bin/busybox"], { encoding: "utf8" })).toBe("busybox-static: /bin/busybox\n");
    }
  });

  it("builds arm64 from arm64 .debs: an aarch64 busybox (ELF e_machine 0xB7)", async () => {
    const r = await build(main, [], ["ZARCH=arm64"]);
    expect(r.code, r.stderr).toBe(0);
    expect(built(r.stdout)).toEqual(["pkg/bb", "pkg/motd"]);
    const l = await layer(store, r.refs["pkg/bb"]!);
    const busybox = l.get("bin/busybox")!;
    expect(busybox.body.subarray(0, 4).toString("latin1")).toBe("\x7fELF");
    expect(busybox.body[4]).toBe(2); // ELFCLASS64
    expect(busybox.body.readUInt16LE(18)).toBe(0xb7); // EM_AARCH64
    expect(l.get("var/lib/dpkg/status")!.body.toString()).toMatch(/^Architecture: arm64$/m);
    // --arch is the same as ZARCH: the same keys, so everything is cached now.
    const z = await kiln(["-C", main, "--json", "--arch", "arm64", "build"], { store });
    expect(z.code, z.stderr).toBe(0);
    expect(built(z.stdout)).toEqual([]);
  });

  it("builds offline from the download cache in another project, with an unreachable mirror", async () => {
    const dir = await sibling({ "kiln.yml": yml("deb-offline", "[amd64, arm64]", "http://127.0.0.1:9/debian"), "pkg/bb/build.yml": `${BB}# another project\n` });
    const r = await build(dir, ["--offline"]);
    expect(r.code, r.stderr).toBe(0);
    expect(built(r.stdout)).toEqual(["pkg/bb"]);
    expect((await layer(store, r.refs["pkg/bb"]!)).get("bin/busybox")?.mode).toBe(0o755);
  });

  it("keeps only `paths` (and the parents of what is kept)", async () => {
    const dir = await sibling({ "kiln.yml": yml("deb-paths"), "pkg/bb/build.yml": `${BB}paths: [/bin/busybox, /var/lib/dpkg/status]\n` });
    const r = await build(dir, ["--offline"]);
    expect(r.code, r.stderr).toBe(0);
    const l = await layer(store, r.refs["pkg/bb"]!);
    expect([...l.keys()].sort()).toEqual(["bin", "bin/busybox", "var", "var/lib", "var/lib/dpkg", "var/lib/dpkg/status"]);
    expect(l.get("bin/busybox")).toMatchObject({ mode: 0o755, uid: 0 });
  });

  it("refuses a lock entry with a wrong sha256, and says so with E_DEBIAN_CHECKSUM", async () => {
    const lock = JSON.parse(lockText) as Lock;
    const real = lock.recipes.bb!.archs.amd64![0]!.sha256;
    const dir = await sibling({ "kiln.yml": yml("deb-bad"), "pkg/bb/build.yml": BB }, (l) => l.replace(real, "0".repeat(64)));
    const r = await kiln(["-C", dir, "--json", "build"], { store });
    expect(r.code).toBe(1);
    expect(jsonLines(r.stdout).find((e) => e.type === "fail")).toMatchObject({ target: "pkg/bb", code: "E_DEBIAN_CHECKSUM" });
    expect(r.stderr).toContain(`has sha256 ${real}, but kiln.lock pins ${"0".repeat(64)}`);
  });

  it("says E_DEBIAN_GONE with kiln lock --update when the mirror no longer has a pinned version", async () => {
    const real = (JSON.parse(lockText) as Lock).recipes.bb!.archs.amd64![0]!.sha256;
    const dir = await sibling({ "kiln.yml": yml("deb-gone"), "pkg/bb/build.yml": BB }, (l) => l.replace(real, "2".repeat(64)).replace(/busybox-static_1\.35\.0-4[^"]*_amd64\.deb/, "busybox-static_1.35.0-0kiln1_amd64.deb").replace(/"version": "1:1\.35\.0-4[^"]*", "architecture": "amd64"/, '"version": "1:1.35.0-0kiln1", "architecture": "amd64"'));
    const r = await kiln(["-C", dir, "build"], { store });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/E_DEBIAN_GONE busybox-static 1:1\.35\.0-0kiln1 is no longer on http:\/\/deb\.debian\.org\/debian/);
    expect(r.stderr).toContain("kiln lock --update");
  });

  it("refuses to plan a debian package without a matching lock entry, at the recipe", async () => {
    const none = await writeProject({ "kiln.yml": yml("deb-none"), "pkg/bb/build.yml": BB });
    const r = await kiln(["-C", none, "plan"], { store });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/error\[E_DEBIAN_UNLOCKED\]: pkg\/bb is a debian package, but the project has no kiln.lock/);
    expect(r.stderr).toContain("pkg/bb/build.yml:2:");
    expect(r.stderr).toContain("kiln lock");
    const changed = await sibling({ "kiln.yml": yml("deb-changed"), "pkg/bb/build.yml": "kind: debian\npackages: [busybox-static, libc6]\n" });
    const c = await kiln(["-C", changed, "build"], { store });
    expect(c.code).toBe(2);
    expect(c.stderr).toContain('no longer matches its recipe (packages ["busybox-static"] → ["busybox-static","libc6"])');
  });

  it("puts the locked .debs into the key: a changed pin rebuilds exactly the package using it", async () => {
    const plan = async () => Object.fromEntries((JSON.parse((await kiln(["-C", main, "--json", "plan"], { store })).stdout) as { targets: { target: string; action: string; reason: string }[] }).targets.map((t) => [t.target, t]));
    expect((await plan())["pkg/bb"]).toMatchObject({ action: "cached" });
    const lock = JSON.parse(lockText) as Lock;
    const real = lock.recipes.bb!.archs.amd64![0]!.sha256;
    await writeFile(join(main, "kiln.lock"), lockText.replace(real, "1".repeat(64)));
    try {
      const p = await plan();
      expect(p["pkg/bb"]).toMatchObject({ action: "build" });
      expect(p["pkg/bb"]!.reason).toMatch(/source debian:busybox-static_1:1\.35\.0-4\S*_amd64 changed/);
      expect(p["pkg/motd"]).toMatchObject({ action: "cached" });
    } finally {
      await writeFile(join(main, "kiln.lock"), lockText);
    }
  });

  it("resolves a real dependency closure: libc6 pulls libgcc-s1 (lock only, from the cached index)", async () => {
    const dir = await writeProject({ "kiln.yml": yml("deb-libc", "[amd64]"), "pkg/libc/build.yml": "kind: debian\npackages: [libc6]\n" });
    const r = await kiln(["-C", dir, "--offline", "lock"], { store });
    expect(r.code, r.stderr).toBe(0);
    const debs = (JSON.parse(await readFile(join(dir, "kiln.lock"), "utf8")) as Lock).recipes.libc!.archs.amd64!.map((d) => d.name);
    expect(debs).toEqual(expect.arrayContaining(["libc6", "libgcc-s1", "gcc-12-base"]));
    expect(debs.length).toBeLessThan(6);
    expect(debs.indexOf("gcc-12-base")).toBeLessThan(debs.indexOf("libgcc-s1"));
  });

  it("explains what cannot be resolved, and an architecture the suite lacks", async () => {
    const dir = await writeProject({ "kiln.yml": yml("deb-unsat", "[amd64]"), "pkg/x/build.yml": "kind: debian\npackages: [\"busybox-static (>= 9:0)\"]\n" });
    const r = await kiln(["-C", dir, "--offline", "lock"], { store });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/error\[E_DEBIAN_RESOLVE\]: pkg\/x \(amd64\): busybox-static \(>= 9:0\): no version satisfies; bookworm main \(amd64\) has 1:1\.35\.0-4/);
    expect(r.stderr).toContain("pkg/x/build.yml:2:");
    const rv = await writeProject({ "kiln.yml": yml("deb-rv", "[riscv64]"), "pkg/bb/build.yml": BB });
    const rr = await kiln(["-C", rv, "lock"], { store });
    expect(rr.code).toBe(1);
    expect(rr.stderr).toMatch(/E_DEBIAN_INDEX\]: bookworm has no riscv64 packages/);
  });

  it.runIf(existsSync("/usr/bin/gpgv"))("refuses an InRelease whose signature the keyring does not vouch for", async () => {
    const dir = await writeProject({ "kiln.yml": `${yml("deb-key", "[amd64]")}  keyring: empty.gpg\n`, "empty.gpg": "", "pkg/bb/build.yml": BB });
    const r = await kiln(["-C", dir, "lock"], { store });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error\[E_DEBIAN_INDEX\]: the signature of http:\/\/deb\.debian\.org\/debian\/dists\/bookworm\/InRelease does not verify with \S*empty\.gpg/);
    expect(existsSync(join(dir, "kiln.lock"))).toBe(false);
  });
});

/** `dpkg-deb -c` of a .deb: path → type, mode, owner, size and link target, in the layer's terms. */
function dpkgContents(deb: string): Map<string, { type: string; mode: number; uid: number; gid: number; size: number; linkname?: string }> {
  const ids: Record<string, number> = { root: 0 };
  const out = new Map<string, { type: string; mode: number; uid: number; gid: number; size: number; linkname?: string }>();
  for (const line of execFileSync("dpkg-deb", ["-c", deb], { encoding: "utf8", maxBuffer: 64 << 20 }).split("\n")) {
    const m = /^(\S)(\S{9}) (\S+)\/(\S+)\s+(\d+) \S+ \S+ (.*)$/.exec(line);
    if (!m) continue;
    const [, t, perm, user, group, size, rest] = m;
    let name = rest!;
    let linkname: string | undefined;
    if (t === "l") [name, linkname] = rest!.split(" -> ") as [string, string];
    if (t === "h") [name, linkname] = rest!.split(" link to ") as [string, string];
    const path = name.replace(/^\.\//, "").replace(/\/$/, "");
    if (!path) continue;
    let mode = 0;
    for (let i = 0; i < 3; i++) {
      const [r, w, x] = perm!.slice(i * 3, i * 3 + 3);
      const shift = 6 - i * 3;
      if (r === "r") mode |= 4 << shift;
      if (w === "w") mode |= 2 << shift;
      if (x === "x" || x === "s" || x === "t") mode |= 1 << shift;
      if (x === "s" || x === "S" || x === "t" || x === "T") mode |= [0o4000, 0o2000, 0o1000][i]!;
    }
    const type = { d: "directory", "-": "file", l: "symlink", h: "link", c: "character-device", b: "block-device", p: "fifo" }[t!]!;
    out.set(path, { type, mode, uid: ids[user!] ?? -1, gid: ids[group!] ?? -1, size: Number(size), linkname: linkname?.replace(/^\.\//, "") });
  }
  return out;
}

/** Extract a layer into a fresh folder with the host's tar. */
async function extract(blob: string): Promise<string> {
  const root = await tempDir("kiln-deb-root");
  execFileSync("tar", ["-xf", blob, "-C", root]);
  return root;
}

/** `ldconfig -p` of a cache, without the lines naming the file and its generator. */
const ldconfigP = (cache: string) => execFileSync("ldconfig", ["-p", "-C", cache], { encoding: "utf8" }).split("\n").filter((l) => l.startsWith("\t"));

describe("what maintainer scripts would do, and the dpkg-deb view (bookworm)", () => {
  let sys = "";
  const refs: Record<string, Record<string, string>> = {};
  const SYS = "kind: debian\npackages: [busybox-static, base-passwd]\nusrmerge: true\nbusyboxLinks: true\naccounts: true\n";
  const LIBS = "kind: debian\npackages: [busybox-static, libc6]\nldconfig: true\n";

  beforeAll(async () => {
    sys = await writeProject({ "kiln.yml": yml("deb-sys"), "pkg/sys/build.yml": SYS, "pkg/libs/build.yml": LIBS });
    // The indexes are cached by the first test of this file.
    const l = await kiln(["-C", sys, "--offline", "lock"], { store });
    if (l.code !== 0) throw new Error(l.stderr);
    for (const arch of ["amd64", "arm64"]) {
      const r = await build(sys, [], [`ZARCH=${arch}`]);
      if (r.code !== 0) throw new Error(r.stderr);
      refs[arch] = r.refs;
    }
  });

  it.runIf(existsSync("/usr/bin/dpkg-deb"))("has every entry of each .deb as dpkg-deb -c lists it: type, mode, owner, size, link target", async () => {
    const lock = JSON.parse(await readFile(join(sys, "kiln.lock"), "utf8")) as Lock;
    const l = await layer(store, refs.amd64!["pkg/libs"]!);
    const made = new Set(["etc/ld.so.cache", "etc/ld.so.conf"]);
    const expected = new Map<string, ReturnType<typeof dpkgContents> extends Map<string, infer V> ? V : never>();
    for (const d of lock.recipes.libs!.archs.amd64!) for (const [p, e] of dpkgContents(join(store, "kiln", "downloads", d.sha256))) if (!expected.has(p) || e.type !== "directory") expected.set(p, e);
    expect(expected.size).toBeGreaterThan(300);
    for (const [p, want] of expected) {
      const got = l.get(p);
      expect(got, p).toBeDefined();
      expect({ type: got!.type, mode: got!.mode, uid: got!.uid, gid: got!.gid }, p).toEqual({ type: want.type, mode: want.mode, uid: want.uid, gid: want.gid });
      if (want.type === "file") expect(got!.body.length, p).toBe(want.size);
      if (want.type === "symlink") expect(got!.linkname, p).toBe(want.linkname);
    }
    const extra = [...l.keys()].filter((p) => !expected.has(p) && !made.has(p) && !/^var(\/lib(\/(dpkg|kiln)(\/.*)?)?)?$/.test(p));
    expect(extra).toEqual([]);
  });

  it.runIf(existsSync("/usr/sbin/ldconfig") && process.arch === "x64")("writes the ld.so.cache the host's ldconfig writes for amd64, and an AArch64 one for arm64", async () => {
    const root = await extract(await layerBlob(store, refs.amd64!["pkg/libs"]!));
    const ours = ldconfigP(join(root, "etc", "ld.so.cache"));
    execFileSync("ldconfig", ["-X", "-r", root, "-C", "/etc/host.cache"]);
    expect(ours).toEqual(ldconfigP(join(root, "etc", "host.cache")));
    expect(ours).toContainEqual(expect.stringMatching(/^\tlibc\.so\.6 \(libc6,x86-64\) => \/lib\/x86_64-linux-gnu\/libc\.so\.6$/));
    const arm = await extract(await layerBlob(store, refs.arm64!["pkg/libs"]!));
    const a = ldconfigP(join(arm, "etc", "ld.so.cache"));
    expect(a.length).toBeGreaterThan(15);
    for (const line of a) expect(line).toMatch(/^\t\S+ \(libc6,AArch64\) => \/lib\/aarch64-linux-gnu\/\S+$/);
    expect(a).toContain("\tld-linux-aarch64.so.1 (libc6,AArch64) => /lib/aarch64-linux-gnu/ld-linux-aarch64.so.1");
    // The same libraries as amd64, but for the loader's own name and libmvec (x86-64 only in glibc 2.36).
    const names = (ls: string[]) => ls.map((x) => x.trim().split(" ")[0]!).filter((n) => !n.startsWith("ld-linux") && !n.startsWith("libmvec")).sort();
    expect(names(a)).toEqual(names(ours));
  });

  it("usrmerge, busyboxLinks (read from the binary, any arch) and accounts from base-passwd", async () => {
    const amd = await layer(store, refs.amd64!["pkg/sys"]!);
    const arm = await layer(store, refs.arm64!["pkg/sys"]!);
    for (const l of [amd, arm]) {
      for (const d of ["bin", "sbin", "lib"]) expect(l.get(d)).toMatchObject({ type: "symlink", linkname: `usr/${d}` });
      expect(l.get("usr/bin/busybox")).toMatchObject({ type: "file", mode: 0o755 });
      const master = l.get("usr/share/base-passwd/passwd.master")!.body.toString();
      expect(l.get("etc/passwd")!.body.toString()).toBe(master.replace(/^([^:]*):\*:/gm, "$1:x:"));
      expect(l.get("etc/shadow")).toMatchObject({ mode: 0o640, gid: 42 });
      expect(l.get("etc/shadow")!.body.toString()).toMatch(/^root:\*:19675:0:99999:7:::\n/);
    }
    // The package list, for SBOMs: in the layer, and as a label where the scheduler takes builder labels.
    const list = JSON.parse(amd.get("var/lib/kiln/debian-packages.json")!.body.toString()) as { name: string; source: string; licenses: string[] }[];
    expect(list.map((p) => p.name)).toEqual(expect.arrayContaining(["base-passwd", "busybox-static", "libc6"]));
    expect(list.find((p) => p.name === "busybox-static")).toMatchObject({ source: "busybox", licenses: ["GPL-2"] });
    const label = (await imageLabels(store, refs.amd64!["pkg/sys"]!))["dev.kiln.debian.packages"];
    if (label) expect(JSON.parse(label)).toEqual(list);
    const links = (l: Map<string, Entry>) => [...l].filter(([, e]) => e.type === "symlink" && e.linkname === "/bin/busybox").map(([p]) => p).sort();
    expect(links(arm)).toEqual(links(amd));
    if (process.arch === "x64") {
      // What the amd64 busybox itself says: every applet but itself is a link, in its directory (merged into /usr).
      const root = await extract(await layerBlob(store, refs.amd64!["pkg/sys"]!));
      const full = execFileSync(join(root, "usr/bin/busybox"), ["--list-full"], { encoding: "utf8" }).trim().split("\n");
      expect(full.length).toBeGreaterThan(200);
      const want = full.filter((p) => p !== "bin/busybox").map((p) => p.replace(/^(s?bin)\//, "usr/$1/")).sort();
      expect(links(amd)).toEqual(want);
    }
  });
});
