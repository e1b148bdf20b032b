import { execa } from "execa";
import { mkdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { kiln, tempDir, writeProject } from "../helpers/kiln.js";
import { makeTarball, sha256 } from "./mirror.js";

/** A package without a tarball that installs one file: builds in a fraction of a second. */
const note = (name: string, body = "") =>
  `VERSION=1\nSUBPKG="${name}"\nprepare() { :; }\nbuild() { echo ${name} > out; }\ndeploy() {\n  mkdir -p "$PKGDEPLOYDIR/etc"\n  cp out "$PKGDEPLOYDIR/etc/${name}"\n  echo "etc/${name}" > "$PKGDEPLOYDIR/${name}.files"\n  : > "$PKGDEPLOYDIR/${name}.desc"\n}\n${body}`;

const LAYERS = {
  "product/p.layers": "one\n# a comment\ntwo\n",
  "layer/one/ROOTFS": "a\n",
  "layer/two/ROOTFS": "b a\n",
  "layer/one/LDPATH": "/lib\n",
  "layer/two/LDPATH": "/usr/lib\n/lib\n",
  "layer/one/TOOLCHAIN": "EXTRA=(x)\nFLAGS=\"-O1\"\n",
  "layer/two/TOOLCHAIN": "EXTRA+=(y)\nFLAGS=\"$FLAGS -g\"\n",
  "layer/one/INIT": 'SERVICES="a"\nGETTY_TTY="tty1 ttyS0"\n',
  "layer/two/INIT": 'SERVICES="$SERVICES b"\nHWCLOCK=yes\n',
  "layer/one/sysctl.conf": "one\n",
  "layer/two/sysctl.conf": "two\n",
  "layer/one/interfaces/port0": "one\n",
  "layer/two/interfaces/port1": "two\n",
  "layer/one/ifrename": "one\n",
  "pkg/a/build": note("a", 'check() { echo "${EXTRA[*]} $FLAGS"; }\n'),
  "pkg/b/build": note("b"),
};

async function run(files: Record<string, string>, args: string[] = []) {
  const dir = await writeProject(files);
  const cwd = await tempDir("pygos-cwd");
  const r = await kiln(["-C", dir, "build", "--product", "p", ...args], { store: await tempDir("pygos-store"), cwd });
  return { ...r, dir, root: join(cwd, "p") };
}

const tarText = async (tar: string, path: string) => (await execa("tar", ["-xOf", tar, path])).stdout;

describe("Pygos layers", () => {
  it("merges ROOTFS and LDPATH, evaluates TOOLCHAIN and INIT as shell in order, takes other files from the last layer", async () => {
    const files = { ...LAYERS, "pkg/a/build": note("a").replace("echo a > out", 'echo "${EXTRA[*]} $FLAGS" > out') };
    const r = await run(files);
    expect(r.code, r.stderr).toBe(0);
    const tar = join(r.root, "rootfs.tar");
    expect(await tarText(tar, "etc/a")).toBe("x y -O1 -g");
    expect(await tarText(tar, "etc/b")).toBe("b");
    expect(await tarText(tar, "etc/ld.so.conf")).toBe("/lib\n/usr/lib".trim());
    expect(await tarText(tar, "etc/sysctl.conf")).toBe("two");
    expect(await tarText(tar, "etc/netcfg/interfaces/port0")).toBe("one");
    expect(await tarText(tar, "etc/netcfg/interfaces/port1")).toBe("two");
    expect(await tarText(tar, "etc/netcfg/ifrename")).toBe("one");
    expect(await tarText(tar, "etc/kiln/init.conf")).toContain("SERVICES='a b'");
    expect((await tarText(tar, "etc/kiln/services")).split("\n")).toEqual(["agetty@tty1", "agetty@ttyS0", "hwclock", "a", "b", "sysctl"]);
  });

  it("names the file and line of a ROOTFS entry nobody provides and of a missing layer", async () => {
    const r = await run({ ...LAYERS, "layer/two/ROOTFS": "b\nnope\n" });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error[E_PYGOS_ROOTFS]: ROOTFS names 'nope', which no build script provides");
    expect(r.stderr).toContain("layer/two/ROOTFS:2");
    const l = await run({ ...LAYERS, "product/p.layers": "one\ntwoo\n" });
    expect(l.code).toBe(2);
    expect(l.stderr).toContain("error[E_PYGOS_LAYER]");
    expect(l.stderr).toContain("product/p.layers:2:1");
  });
});

describe("Pygos package errors", () => {
  it("a wrong SHA256SUM: E_SOURCE_CHECKSUM at the script's line, with the log", async () => {
    const up = await tempDir("pygos-up");
    await mkdir(join(up, "t-1"));
    await writeFile(join(up, "t-1", "x"), "x");
    await makeTarball(up, "t-1", join(up, "t-1.tar.gz"));
    const good = await sha256(join(up, "t-1.tar.gz"));
    const script = (sum: string) => `VERSION=1\nSRCDIR=t-1\nTARBALL=t-1.tar.gz\nURL="file://${up}"\nSHA256SUM="${sum}"\n` + note("a").replace(/^VERSION=1\n/, "");
    const r = await run({ ...LAYERS, "layer/two/ROOTFS": "a\n", "pkg/a/build": script("0".repeat(64)) });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("E_SOURCE_CHECKSUM");
    expect(r.stderr).toContain(`has sha256 ${good}`);
    expect(r.stderr).toContain("(pkg/a/build:5)");
    expect(r.stderr).toMatch(/log: \S+\/p\/log\//);
    const ok = await run({ ...LAYERS, "layer/two/ROOTFS": "a\n", "pkg/a/build": script(good) });
    expect(ok.code, ok.stderr).toBe(0);
  });

  it("a missing function: E_PYGOS_FUNCTION naming the script and the log", async () => {
    const r = await run({ ...LAYERS, "pkg/b/build": note("b").replace(/deploy\(\) \{[\s\S]*\n\}\n/, "") });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("E_PYGOS_FUNCTION pkg/b/build defines no function deploy()");
    const log = /log: (\S+\/log\/b-\w+\.log\.gz)/.exec(r.stderr)?.[1];
    expect(log).toBeTruthy();
    expect((await stat(log!)).size).toBeGreaterThan(0);
  });

  it("a failing build(): E_PYGOS_STEP at the function's line, the output's tail and the step's log", async () => {
    const r = await run({ ...LAYERS, "pkg/b/build": note("b").replace("build() { echo b > out; }", "build() { echo 'it went boom' >&2; exit 3; }") });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("E_PYGOS_STEP build() of pkg/b/build failed with exit code 3  (pkg/b/build:4)");
    expect(r.stderr).toContain("it went boom");
    const log = /log: (\S+\/log\/b-build\.log\.gz)/.exec(r.stderr)?.[1];
    expect(log).toBeTruthy();
    expect((await execa("zcat", [log!])).stdout).toContain("it went boom");
    // the independent package still finished
    expect((await stat(join(r.root, "log", "a-deploy.log.gz"))).size).toBeGreaterThan(0);
  });
});
