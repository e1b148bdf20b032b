import { execa } from "execa";
import { copyFile, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { BIN, built, jsonLines, kiln, tempDir } from "../helpers/kiln.js";
import { debianOrig, FIXTURE, fixtureTree, makeTarball, serveDir, sha256 } from "./mirror.js";

/**
 * The fixture tree (test/fixtures/pygos): zlib from Debian's orig tarball
 * (split into zlib and zlib-dev), hello linking it (DEPENDS="zlib-dev", a
 * patch, run_configure, a TOOLCHAIN variable and a layer config file), a
 * script that sources another, and a RELEASEPKG; products host (TC_KIND=host)
 * and arm (Debian's aarch64 cross compiler).
 */
let tree: string;
let store: string;
let cwd: string;
let vars: Record<string, string>;

beforeAll(async () => {
  const mirror = await tempDir("pygos-mirror");
  await mkdir(join(mirror, "zlib"), { recursive: true });
  await mkdir(join(mirror, "hello"), { recursive: true });
  const zlib = await debianOrig("zlib", await tempDir("pygos-apt"));
  await copyFile(zlib, join(mirror, "zlib", "zlib_1.2.13.dfsg.orig.tar.bz2"));
  await makeTarball(join(FIXTURE, "upstream"), "hello-1.0", join(mirror, "hello", "hello-1.0.tar.gz"));
  // check_update scrapes the listing: one newer zlib is listed (never downloaded).
  const url = await serveDir(mirror, { zlib: ["zlib_1.3.1.dfsg.orig.tar.bz2"] });
  vars = {
    MIRROR: url,
    ZLIB_SHA256: await sha256(join(mirror, "zlib", "zlib_1.2.13.dfsg.orig.tar.bz2")),
    HELLO_SHA256: await sha256(join(mirror, "hello", "hello-1.0.tar.gz")),
  };
  tree = await fixtureTree(join(await tempDir("pygos-tree"), "pygos"), vars);
  store = await tempDir("pygos-store");
  cwd = await tempDir("pygos-out");
});

const build = (product: string, extra: string[] = []) => kiln(["-C", tree, "--json", "build", "--product", product, ...extra], { store, cwd });
/** `kiln plan` with the global --product after the command, from the folder the product was built in (no --out). */
const plan = async (product: string) => {
  const r = await kiln(["-C", tree, "--json", "plan", "--product", product], { store, cwd });
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { targets: { target: string; action: string; reason: string }[] }).targets;
};
const explain = (product: string, target: string) => kiln(["-C", tree, "explain", "--product", product, target], { store, cwd });
const listing = async (img: string) => (await execa("unsquashfs", ["-l", "-d", "", img])).stdout.split("\n").map((l) => l.trim());
const tarText = async (tar: string, path: string) => (await execa("tar", ["-xOf", tar, path])).stdout;

describe("a Pygos product", () => {
  it("builds its packages into binary packages and a root file system, in a build root in the current folder", async () => {
    const r = await build("host");
    expect(r.code, r.stderr).toBe(0);
    expect(built(r.stdout).filter((t) => t.startsWith("pkg/"))).toEqual(["pkg/hello", "pkg/motd-board", "pkg/release", "pkg/zlib"]);
    const root = join(cwd, "host");
    // Pygos's layout: shared download/ and src/, per product log/ (one gzipped log per step) and repo/.
    expect((await stat(join(cwd, "download", "zlib_1.2.13.dfsg.orig.tar.bz2"))).size).toBeGreaterThan(1_000_000);
    for (const step of ["prepare", "build", "deploy"]) expect((await stat(join(root, "log", `zlib-${step}.log.gz`))).size).toBeGreaterThan(0);
    const dev = JSON.parse(await readFile(join(root, "repo", "zlib-dev.json"), "utf8")) as { ref: string; requires: string[]; source: string };
    expect(dev).toMatchObject({ source: "zlib", requires: ["zlib"] });
    expect(dev.ref).toMatch(/^kiln\/bin\/zlib-dev:[0-9a-f]{40}$/);

    // The image has what ROOTFS names (and what their .desc requires), not the -dev split.
    const files = await listing(join(root, "rootfs.img"));
    for (const f of ["/bin/hello", "/lib/libz.so.1", "/lib/libz.so.1.2.13", "/etc/motd", "/etc/kiln/init.conf", "/etc/kiln/services", "/etc/ld.so.conf", "/etc/netcfg/ifrename", "/etc/netcfg/interfaces/port0", "/etc/netcfg/interfaces/port1", "/etc/nftables.rules", "/etc/sysctl.conf"]) {
      expect(files).toContain(f);
    }
    expect(files).not.toContain("/include/zlib.h");
    expect(files).not.toContain("/lib/libz.a");

    const tar = join(root, "rootfs.tar");
    const verbose = (await execa("tar", ["-tvf", tar])).stdout;
    expect(verbose).toMatch(/-rw-r----- 0\/10 .* etc\/hello\.conf/); // owner and mode from hello.files
    expect(await tarText(tar, "etc/hello.conf")).toBe("greeting-file=host"); // the last layer's copy
    expect(await tarText(tar, "etc/motd")).toBe("Welcome to Pygos on the host board"); // motd-board's build() over the sourced script
    expect(await tarText(tar, "etc/kiln/init.conf")).toContain(`SERVICES='syslogd sshd'`);
    expect(await tarText(tar, "etc/kiln/init.conf")).toContain(`MODULES=([0]="virtio_net" [1]="e1000")`);
    expect((await tarText(tar, "etc/kiln/services")).split("\n")).toEqual(["agetty@tty1", "dhcpcd@port1", "ntpdate", "syslogd", "sshd", "nftables", "sysctl"]);

    // The program runs, linked against the packaged zlib, patched once, configured for the host triplet.
    const x = await tempDir("pygos-x");
    await execa("tar", ["-xf", tar, "-C", x]);
    const hello = await execa(join(x, "bin/hello"), { env: { LD_LIBRARY_PATH: join(x, "lib") } });
    expect(hello.stdout).toBe("hello from base (zlib 1.2.13) [patched]");
    expect((await execa("file", ["-L", join(x, "bin/hello")])).stdout).toMatch(/x86-64/);
    const args = (await readFile(join(x, "share/hello/configure.args"), "utf8")).split("\n");
    expect(args).toEqual(expect.arrayContaining(["--host=x86_64-linux-gnu", "--build=x86_64-linux-gnu", "--prefix=", "--libdir=/lib"]));

    // RELEASEPKG packages the image.
    const release = (await execa("tar", ["-tzf", join(root, "release.tar.gz")])).stdout.split("\n");
    expect(release).toEqual(["install.sh", "rootfs.img"]);

    // A second build runs nothing, and a plan says so: RELEASEPKG is keyed by the image, which the plan finds in the store.
    const again = await build("host");
    expect(again.code, again.stderr).toBe(0);
    expect(built(again.stdout)).toEqual([]);
    const noop = await plan("host");
    // the product's packages only (pkg/motd is sourced by motd-board, not built)
    expect(noop.map((t) => `${t.target} ${t.action}`).sort()).toEqual(["pkg/hello cached", "pkg/motd-board cached", "pkg/release cached", "pkg/zlib cached"]);
    const ex = await explain("host", "release");
    expect(ex.code, ex.stderr).toBe(0);
    expect(ex.stdout).toContain("no input changed since the last build");
  });

  it("puts the product's root file system into the same disks as an image spec's (live.raw, live.qcow2)", async () => {
    const r = await build("host", ["live"]);
    expect(r.code, r.stderr).toBe(0);
    const root = join(cwd, "host");
    // nothing of the product is built again; the disks are made around its rootfs.img
    const done = r.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { type: string; target?: string; cached?: boolean; message?: string });
    expect(done.filter((e) => e.type === "done" && e.cached === false && e.target!.startsWith("pkg/"))).toEqual([]);
    // this test product installs no kernel: the disks are made, with a warning that they will not start
    expect(done.filter((e) => e.type === "warn").map((e) => e.message)).toEqual(["rootfs.tar has no boot/kernel, which grub boots: the disks made from it will not start (an image spec gets one from kernel.image)"]);
    const gpt = (await execa("sgdisk", ["-p", join(root, "live.raw")])).stdout;
    for (const name of ["EFI System", "IMGA", "IMGB", "CONFIG", "P3"]) expect(gpt).toContain(name);
    // IMGA holds exactly the product's rootfs.img
    const info = (await execa("sgdisk", ["-i", "2", join(root, "live.raw")])).stdout;
    const first = Number(/First sector: (\d+)/.exec(info)![1]);
    const img = await readFile(join(root, "rootfs.img"));
    const fh = await (await import("node:fs/promises")).open(join(root, "live.raw"), "r");
    const part = Buffer.alloc(img.length);
    await fh.read(part, 0, img.length, first * 512);
    await fh.close();
    expect(part.equals(img)).toBe(true);
    expect((await execa("qemu-img", ["info", "--output=json", join(root, "live.qcow2")])).stdout).toContain('"format": "qcow2"');
    // an installer needs an installer image spec, which a product has not
    const bad = await build("host", ["installer"]);
    expect(bad.code).toBe(2);
    expect(bad.stdout + bad.stderr).toMatch(/has no installer image spec/);
  });

  it("builds the same bytes from an empty store in other folders, with another TZ and umask", async () => {
    // The first build (the test above: this process's TZ and umask) against a second one elsewhere.
    const tree2 = await fixtureTree(join(await tempDir("pygos-tree-again"), "elsewhere", "pygos"), vars);
    const store2 = await tempDir("pygos-store-again");
    const cwd2 = join(await tempDir("pygos-out-again"), "deeper", "folder");
    await mkdir(cwd2, { recursive: true });
    const r = await execa("sh", ["-c", 'umask 077 && exec node "$@"', "sh", BIN, "-C", tree2, "--json", "build", "--product", "host"], {
      cwd: cwd2,
      reject: false,
      env: { NO_COLOR: "1", CI: "1", KILN_STORE: store2, TZ: "Pacific/Kiritimati", KILN_DOWNLOADS: join(store2, "downloads") },
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const digests = async (root: string) => {
      const out: Record<string, string> = {};
      for (const f of ["rootfs.tar", "rootfs.img", "release.tar.gz"]) out[f] = await sha256(join(root, f));
      for (const name of ["zlib", "zlib-dev", "hello", "motd-board", "release"]) {
        out[`layer ${name}`] = (JSON.parse(await readFile(join(root, "repo", `${name}.json`), "utf8")) as { layer: { digest: string } }).layer.digest;
      }
      return out;
    };
    const [a, b] = [await digests(join(cwd, "host")), await digests(join(cwd2, "host"))];
    expect(Object.keys(a)).toHaveLength(8);
    expect(b).toEqual(a);
  });

  it("rebuilds only the packages that read a changed TOOLCHAIN variable or layer file", async () => {
    const toolchain = join(tree, "layer/base/TOOLCHAIN");
    await writeFile(toolchain, (await readFile(toolchain, "utf8")).replace("hello from base", "hello again"));
    // plan and explain, given the product, find its records and name the variable.
    const planned = await plan("host");
    expect(planned.filter((t) => t.action === "build").map((t) => t.target)).toEqual(["pkg/hello", "pkg/release"]);
    expect(planned.find((t) => t.target === "pkg/hello")!.reason).toContain("recipe.reads.HELLO_GREETING changed: hello from base → hello again");
    expect(planned.find((t) => t.target === "pkg/release")!.reason).toContain("after building pkg/hello");
    const why = await explain("host", "pkg/hello");
    expect(why.code, why.stderr).toBe(0);
    expect(why.stdout).toContain("recipe.reads.HELLO_GREETING changed: hello from base → hello again");
    const r = await build("host");
    expect(r.code, r.stderr).toBe(0);
    // hello reads HELLO_GREETING; zlib and motd-board do not. The image and the release over it follow.
    expect(built(r.stdout)).toEqual(["pkg/hello", "pkg/release", "rootfs.img/host", "rootfs.tar/host"]);
    const x = await tempDir("pygos-x");
    await execa("tar", ["-xf", join(cwd, "host", "rootfs.tar"), "-C", x]);
    expect((await execa(join(x, "bin/hello"), { env: { LD_LIBRARY_PATH: join(x, "lib") } })).stdout).toBe("hello again (zlib 1.2.13) [patched]");

    await writeFile(join(tree, "layer/host/hello.conf"), "greeting-file=changed\n");
    const whyConf = await explain("host", "hello");
    expect(whyConf.stdout).toMatch(/recipe\.layerFiles\.hello\.conf[^\n]* changed/);
    const conf = await build("host");
    expect(built(conf.stdout).filter((t) => t.startsWith("pkg/"))).toEqual(["pkg/hello", "pkg/release"]);
    expect(built((await build("host")).stdout)).toEqual([]);
    expect((await plan("host")).filter((t) => t.action === "build")).toEqual([]);
  });

  it("cross-builds the same packages for aarch64 with Debian's cross compiler, reusing the prepared sources", async () => {
    const r = await build("arm");
    expect(r.code, r.stderr).toBe(0);
    const x = await tempDir("pygos-x");
    await execa("tar", ["-xf", join(cwd, "arm", "rootfs.tar"), "-C", x]);
    for (const f of ["bin/hello", "lib/libz.so.1.2.13"]) expect((await execa("file", ["-L", join(x, f)])).stdout).toMatch(/ARM aarch64/);
    expect(await listing(join(cwd, "arm", "rootfs.img"))).toContain("/bin/hello");
    // src/ is shared: prepare ran for the host product, not again for arm.
    await expect(stat(join(cwd, "arm", "log", "hello-prepare.log.gz"))).rejects.toThrow();
    expect((await stat(join(cwd, "arm", "log", "hello-build.log.gz"))).size).toBeGreaterThan(0);
    const summary = jsonLines(r.stdout).find((e) => e.type === "result") as { data: { arch: string } };
    expect(summary.data.arch).toBe("arm64");
  });

  it("prints each script's check_update answer", async () => {
    const r = await kiln(["-C", tree, "--product", "host", "check-update"], { store, cwd });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^zlib\s+1\.2\.13\s+1\.3\.1\s+update$/m);
    expect(r.stdout).toMatch(/^hello\s+1\.0\s+1\.0\s+current$/m);
    expect(r.stdout).toMatch(/^motd\s+1\s+-\s+no check_update$/m);
  });
});
