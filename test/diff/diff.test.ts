import { execa } from "execa";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { kiln, tempDir, writeProject } from "../helpers/kiln.js";
import { EVELIKE } from "../compose/evelike.js";
import { stripModuleSignature } from "../../src/diff/eve.js";

const OUT = "out/amd64/kvm-generic";

/** A signed-looking module: body, signature, struct module_signature (sig_len 14), the magic. */
const KERNEL = [
  "kind: script",
  "script: |",
  '  printf "MZ fake kernel CERT-AAAA tail" > "$DESTDIR/kernel"',
  "  mkdir -p m/lib/modules/6.1.0/kernel",
  "  printf 'ELF module body' > m/lib/modules/6.1.0/kernel/virtio_blk.ko",
  "  printf 'SIGNATURE-AAAA\\000\\000\\002\\000\\000\\000\\000\\000\\000\\000\\000\\016~Module signature appended~\\n' >> m/lib/modules/6.1.0/kernel/virtio_blk.ko",
  "  printf 'CERT-AAAA' > m/lib/modules/6.1.0/signing_key.x509",
  '  tar -C m --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$DESTDIR/kernel.tar" lib',
  "",
].join("\n");

/** EVE-like, without etc/linuxkit.yml (the resolved spec names every package's key, so any package change shows there too). */
const BASE: Record<string, string> = {
  ...EVELIKE,
  // without SBOMs: they list every file's digest, so a changed file changes them too (that is right, but not what these tests look at)
  "kiln.yml": `${EVELIKE["kiln.yml"]!}images:\n  sbom: false\n`,
  "images/rootfs.yml.in": EVELIKE["images/rootfs.yml.in"]!.replace("  - path: etc/linuxkit.yml\n    metadata: yaml\n", ""),
  "pkg/kernel/build.yml": KERNEL,
};
const GETTY = "/containers/services/getty/lower/sbin/getty";
const SYSCTL = "/containers/onboot/000-sysctl/rootfs/sysctl.sh";

async function build(files: Record<string, string>, store: string, extra: string[] = [], targets = ["rootfs", "live-raw"]): Promise<string> {
  const dir = await writeProject(files);
  const r = await kiln(["-C", dir, "build", ...targets, ...extra], { store });
  expect(r.code, r.stderr).toBe(0);
  return join(dir, OUT);
}

const diff = (args: string[]) => kiln(["diff", ...args]);
const lines = (s: string) => s.split("\n").filter(Boolean);

describe("kiln diff", () => {
  let a: string, a2: string, b: string, a4: string, b4: string, c: string, k: string;

  beforeAll(async () => {
    const store = await tempDir();
    const changed = { ...BASE, "pkg/getty/build.yml": BASE["pkg/getty/build.yml"]!.replace('contents: "#!/bin/sh\\n"', 'contents: "#!/bin/sh\\nexec getty\\n"') };
    a = await build(BASE, store);
    [a2, b] = await Promise.all([build(BASE, store), build(changed, store)]);
    const ext4 = ["--set", "ROOTFS_FORMAT=ext4"];
    [a4, b4] = await Promise.all([build(BASE, store, ext4, ["rootfs"]), build(changed, store, ext4, ["rootfs"])]);
    const owned = { ...BASE, "pkg/sysctl/build.yml": BASE["pkg/sysctl/build.yml"]!.replace('mode: "0755"', 'mode: "0700"\n    uid: 1') };
    const resigned = { ...BASE, "pkg/kernel/build.yml": KERNEL.replaceAll("AAAA", "BBBB") };
    [c, k] = await Promise.all([build(owned, store, [], ["rootfs.tar"]), build(resigned, store, [], ["rootfs.tar"])]);
  }, 80_000);

  it("rootfs.tar: exactly the changed file, exit 1", async () => {
    const r = await diff([join(a, "rootfs.tar"), join(b, "rootfs.tar")]);
    expect(r.code, r.stderr).toBe(1);
    expect(lines(r.stdout)).toEqual([`~ ${GETTY} (content)`]);
  });

  it("rootfs.img (squashfs): exactly the changed file", async () => {
    const r = await diff([join(a, "rootfs.img"), join(b, "rootfs.img")]);
    expect(r.code, r.stderr).toBe(1);
    expect(lines(r.stdout)).toEqual([`~ ${GETTY} (content)`]);
  });

  it("rootfs.img (ext4): the changed file, and the UUID derived from the content", async () => {
    const r = await kiln(["--json", "diff", join(a4, "rootfs.img"), join(b4, "rootfs.img")]);
    expect(r.code, r.stderr).toBe(1);
    const j = JSON.parse(r.stdout) as { kind: string; added: string[]; removed: string[]; changed: { path: string; fields: Record<string, unknown> }[]; filesystem: { fields: Record<string, unknown> }[] };
    expect(j.kind).toBe("ext4");
    expect(j.added).toEqual([]);
    expect(j.removed).toEqual([]);
    expect(j.changed.map((x) => [x.path, Object.keys(x.fields)])).toEqual([[GETTY, ["content"]]]);
    expect(Object.keys(j.filesystem[0]!.fields)).toEqual(["uuid"]);
  });

  it("ext4 and squashfs of the same tar hold the same files, modes, owners, links and devices", async () => {
    const r = await diff([join(a4, "rootfs.img"), join(a, "rootfs.img")]);
    expect(lines(r.stdout)).toEqual(["~ [file system] (format ext4→squashfs)", "- /lost+found"]);
  });

  it("live.raw: the file under each rootfs partition, plus the content-derived GUIDs", async () => {
    const r = await kiln(["--json", "diff", join(a, "live.raw"), join(b, "live.raw")]);
    expect(r.code, r.stderr).toBe(1);
    const j = JSON.parse(r.stdout) as { changed: { path: string }[]; added: string[]; removed: string[]; partitions: { name: string; fields: Record<string, unknown> }[] };
    expect(j.changed.map((x) => x.path)).toEqual([`imga:${GETTY}`, `imgb:${GETTY}`]);
    expect(j.added.concat(j.removed)).toEqual([]);
    for (const p of j.partitions) expect(Object.keys(p.fields)).toEqual(["guid"]);
    const text = await diff([join(a, "live.raw"), join(b, "live.raw")]);
    expect(text.stdout).toContain(`~ imga:${GETTY} (content)`);
  });

  it("identical builds: nothing, exit 0 (tar, squashfs, disk, qcow2)", async () => {
    for (const f of ["rootfs.tar", "rootfs.img", "live.raw"]) {
      const r = await diff([join(a, f), join(a2, f)]);
      expect([r.code, r.stdout, r.stderr]).toEqual([0, "", ""]);
    }
    const q = await tempDir();
    await execa("qemu-img", ["convert", "-O", "qcow2", join(a2, "live.raw"), join(q, "live.qcow2")]);
    const r = await diff([join(a, "live.raw"), join(q, "live.qcow2")]);
    expect([r.code, r.stdout]).toEqual([0, ""]);
  });

  it("a changed mode and owner are reported as such", async () => {
    const r = await diff([join(a, "rootfs.tar"), join(c, "rootfs.tar")]);
    expect(r.code).toBe(1);
    expect(lines(r.stdout)).toEqual([`~ ${SYSCTL} (mode 0755→0700, uid 0→1)`]);
  });

  it("--ignore hides a path (and everything under a folder)", async () => {
    const r = await diff(["--ignore", "/containers/services/**/getty", join(a, "rootfs.tar"), join(b, "rootfs.tar")]);
    expect([r.code, r.stdout]).toEqual([0, ""]);
    const r2 = await diff(["--ignore", "/containers/services", "--ignore", "/nothing", join(a, "rootfs.img"), join(b, "rootfs.img")]);
    expect([r2.code, r2.stdout]).toEqual([0, ""]);
  });

  it("--preset eve: modules differing only in their signature, the signing key and the key inside the kernel compare equal", async () => {
    const plain = await diff([join(a, "rootfs.tar"), join(k, "rootfs.tar")]);
    expect(plain.code).toBe(1);
    expect(lines(plain.stdout)).toEqual(["~ /boot/kernel (content)", "~ /lib/modules/6.1.0/kernel/virtio_blk.ko (content)", "~ /lib/modules/6.1.0/signing_key.x509 (content)"]);
    const eve = await diff(["--preset", "eve", join(a, "rootfs.tar"), join(k, "rootfs.tar")]);
    expect([eve.code, eve.stdout, eve.stderr]).toEqual([0, "", ""]);
    // a real change of a module is still seen
    const other = await diff(["--preset", "eve", join(a, "rootfs.tar"), join(b, "rootfs.tar")]);
    expect(lines(other.stdout)).toEqual([`~ ${GETTY} (content)`]);
  });

  it("stripModuleSignature removes signature, struct and magic, and leaves unsigned modules alone", () => {
    const sig = Buffer.concat([Buffer.from("body"), Buffer.from("SIG"), Buffer.from([0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 3]), Buffer.from("~Module signature appended~\n")]);
    expect(stripModuleSignature(sig).toString()).toBe("body");
    expect(stripModuleSignature(Buffer.from("plain")).toString()).toBe("plain");
  });

  it("bad input: a missing file or an unknown format is exit 2", async () => {
    const d = await tempDir();
    await writeFile(join(d, "x.txt"), "hello");
    expect((await diff([join(d, "nope"), join(a, "rootfs.tar")])).code).toBe(2);
    const r = await diff([join(d, "x.txt"), join(a, "rootfs.tar")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("E_DIFF_INPUT");
    expect((await diff([join(a, "live.raw"), join(a, "rootfs.tar")])).code).toBe(2);
  });
});
