import { execa } from "execa";
import { createHash } from "node:crypto";
import { readdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BIN, kiln, tempDir, writeProject } from "../helpers/kiln.js";
import { EVELIKE } from "../compose/evelike.js";

const OUT = "out/amd64/kvm-generic";
const sha = async (p: string) => createHash("sha256").update(await readFile(p)).digest("hex");

async function built(targets: string[], files: Record<string, string> = EVELIKE, extra: string[] = []) {
  const dir = await writeProject(files);
  const store = await tempDir();
  const r = await kiln(["-C", dir, ...extra, "build", ...targets], { store });
  return { dir, store, r, out: join(dir, OUT) };
}

describe("disk images", () => {
  it("live.raw: a valid GPT with EVE's partitions, names, types, attributes and contents", async () => {
    const { r, out } = await built(["live-raw"]);
    expect(r.code, r.stderr).toBe(0);
    const raw = join(out, "live.raw");
    const v = await execa("sgdisk", ["-v", raw]);
    expect(v.stdout).toContain("No problems found");
    const p = (await execa("sgdisk", ["-p", raw])).stdout;
    expect(p).toMatch(/^\s+1\s+2048\s+75775\s+36\.0 MiB\s+EF00\s+EFI System$/m);
    expect(p).toMatch(/^\s+2\s+\d+\s+\d+\s+.*8500\s+IMGA$/m);
    expect(p).toMatch(/^\s+3\s+\d+\s+\d+\s+.*8500\s+IMGB$/m);
    expect(p).toMatch(/^\s+4\s+\d+\s+\d+\s+.*CONFIG$/m);
    expect(p).toMatch(/^\s+5\s+\d+\s+\d+\s+8\.0 MiB\s+.*P3$/m);
    const conf = (await execa("sgdisk", ["-i", "4", raw])).stdout;
    expect(conf).toContain("Partition GUID code: 13307E62-CD9C-4920-8F9B-91B45828B798");
    const imga = (await execa("sgdisk", ["-i", "2", raw])).stdout;
    expect(imga).toContain("Attribute flags: 0102000000000000"); // gptprio: priority 2, successful
    // the IMGA partition holds rootfs.img byte for byte
    const start = Number(/First sector: (\d+)/.exec(imga)![1]);
    const img = await readFile(join(out, "rootfs.img"));
    const fh = await (await import("node:fs/promises")).open(raw, "r");
    const buf = Buffer.alloc(img.length);
    await fh.read(buf, 0, img.length, start * 512);
    await fh.close();
    expect(buf.equals(img)).toBe(true);
    // sparse: far fewer blocks than its size
    const st = await stat(raw);
    expect(st.blocks * 512).toBeLessThan(st.size / 2);
  });

  it("rootfs.img lists exactly the files, modes and owners of rootfs.tar (unsquashfs)", async () => {
    const { r, out } = await built(["rootfs"]);
    expect(r.code, r.stderr).toBe(0);
    const tarList = (await execa("tar", ["-tvf", join(out, "rootfs.tar"), "--numeric-owner"])).stdout.split("\n");
    const sq = (await execa("unsquashfs", ["-lln", join(out, "rootfs.img")])).stdout.split("\n").filter((l) => / squashfs-root\//.test(l));
    const norm = (line: string, squash: boolean) => {
      const f = line.trim().split(/\s+/);
      const name = squash ? line.slice(line.indexOf("squashfs-root/") + 14).replace(/ -> .*/, "") : f.slice(5).join(" ").replace(/ -> .*| link to .*/, "").replace(/\/$/, "");
      const mode = f[0]!.replace(/^h/, "-");
      return `${mode} ${f[1]} ${name}`;
    };
    const fromTar = tarList.filter(Boolean).map((l) => norm(l, false)).sort();
    const fromSquash = sq.map((l) => norm(l, true)).sort();
    expect(fromSquash).toEqual(fromTar);
    expect(fromSquash).toContain("crw------- 0/0 dev/ttyS9");
  });

  it("config.img is a FAT image of kiln's defaults overlaid by conf/, labelled EVE, 1 MiB", async () => {
    const { r, out } = await built(["config.img"]);
    expect(r.code, r.stderr).toBe(0);
    const img = join(out, "config.img");
    expect((await stat(img)).size).toBe(1024 * 1024);
    await execa("fsck.fat", ["-n", img]);
    const dir = (await execa("mdir", ["-i", img, "-/", "-b", "::/"], { env: { MTOOLS_SKIP_CHECK: "1" } })).stdout;
    expect(dir).toContain("::/server");
    expect(dir).toContain("::/onboard/key.pem");
    expect(dir).toContain("::/README.txt");
    const label = (await execa("fatlabel", [img])).stdout.trim();
    expect(label).toBe("EVE");
    expect((await execa("mtype", ["-i", img, "::/server"], { env: { MTOOLS_SKIP_CHECK: "1" } })).stdout).toBe("zedcloud.example.org");
  });

  it("the ESP holds the rootfs's EFI/BOOT files and a grub.cfg", async () => {
    const { r, out } = await built(["live-raw"]);
    expect(r.code, r.stderr).toBe(0);
    const raw = join(out, "live.raw");
    const env = { MTOOLS_SKIP_CHECK: "1" };
    const files = (await execa("mdir", ["-i", `${raw}@@1M`, "-/", "-b", "::/"], { env })).stdout;
    expect(files).toContain("::/EFI/BOOT/BOOTX64.EFI");
    expect(files).toContain("::/EFI/BOOT/grub.cfg");
    expect((await execa("mtype", ["-i", `${raw}@@1M`, "::/EFI/BOOT/BOOTX64.EFI"], { env })).stdout).toBe("MZ fake EFI loader");
  });

  it("converts to qcow2, vdi, parallels, vhdx and GCP, each readable by its tools", async () => {
    const { r, out } = await built(["live", "live-vdi", "live-parallels", "live-vhdx", "live-gcp"]);
    expect(r.code, r.stderr).toBe(0);
    for (const [f, fmt] of [["live.qcow2", "qcow2"], ["live.vdi", "vdi"], ["live.parallels", "parallels"], ["live.vhdx", "vhdx"]]) {
      await execa("qemu-img", ["check", join(out, f!)]);
      const info = JSON.parse((await execa("qemu-img", ["info", "--output=json", join(out, f!)])).stdout) as { format: string; "virtual-size": number };
      expect(info.format).toBe(fmt);
      expect(info["virtual-size"]).toBe((await stat(join(out, "live.raw"))).size);
      await execa("qemu-img", ["compare", "-q", join(out, "live.raw"), join(out, f!)]);
    }
    const gcp = (await execa("tar", ["-tzvf", join(out, "live.img.tar.gz")])).stdout.trim().split("\n");
    expect(gcp).toHaveLength(1);
    expect(gcp[0]).toMatch(/ 1073741824 .* disk\.raw$/);
    expect(await (await import("node:fs/promises")).readlink(join(out, "live.img"))).toBe("live.img.tar.gz");
  });

  it("installer.raw (efi, imga with /bits, conf_win) and installer.iso (El Torito EFI)", async () => {
    const { r, out } = await built(["installer", "installer-iso"]);
    expect(r.code, r.stderr).toBe(0);
    const raw = join(out, "installer.raw");
    expect((await execa("sgdisk", ["-v", raw])).stdout).toContain("No problems found");
    const p = (await execa("sgdisk", ["-p", raw])).stdout;
    expect(p).toMatch(/^\s+3\s+\d+\s+\d+\s+1024\.0 KiB\s+0700\s+CONFIG$/m);
    expect((await execa("sgdisk", ["-i", "3", raw])).stdout).toContain("EBD0A0A2-B9E5-4433-87C0-68B6B72699C7");
    const inst = (await execa("unsquashfs", ["-lln", join(out, "rootfs_installer.img")])).stdout;
    expect(inst).toMatch(/squashfs-root\/bits\/rootfs\.img/);
    expect(inst).toMatch(/squashfs-root\/bits\/config\.img/);
    expect(inst).toMatch(/squashfs-root\/bits\/efi\.img/);
    expect(inst).toMatch(/containers\/onboot\/000-installer\/lower\/install\.sh/);
    const iso = (await execa("xorriso", ["-indev", join(out, "installer.iso"), "-report_el_torito", "plain"], { reject: false })).stdout;
    expect(iso).toMatch(/El Torito boot img :\s+1\s+UEFI\s+y\s+none/);
    const ls = (await execa("xorriso", ["-indev", join(out, "installer.iso"), "-ls", "/"], { reject: false })).stdout;
    expect(ls).toContain("'installer.img'");
    expect(ls).toContain("'config.img'");
  });

  it("ROOTFS_FORMAT=ext4 gives an ext4 image that e2fsck accepts", async () => {
    const { r, dir } = await built(["rootfs", "ROOTFS_FORMAT=ext4"]);
    expect(r.code, r.stderr).toBe(0);
    const img = join(dir, OUT, "rootfs.img");
    await execa("e2fsck", ["-fn", img]);
    const ls = (await execa("debugfs", ["-R", "ls -l /bin", img])).stdout;
    expect(ls).toMatch(/100755 \(1\)\s+0\s+0\s+23 .* busybox/);
    const dev = (await execa("debugfs", ["-R", "stat /dev/ttyS9", img])).stdout;
    expect(dev).toMatch(/Type: character special/);
  });

  it("builds every output byte-identically twice, in other folders, time zones and umasks", async () => {
    const targets = ["live", "live-vdi", "live-vhdx", "live-gcp", "installer", "installer-iso", "rootfs", "ROOTFS_FORMAT=squashfs"];
    const sums: Record<string, string>[] = [];
    for (const [umask, tz] of [["022", "UTC"], ["077", "Pacific/Auckland"]]) {
      const dir = await writeProject(EVELIKE);
      const store = await tempDir();
      const r = await execa("sh", ["-c", `umask ${umask}; exec node ${BIN} -C ${dir} build ${targets.join(" ")}`], { reject: false, env: { KILN_STORE: store, TZ: tz } });
      expect(r.exitCode, r.stderr).toBe(0);
      const out = join(dir, OUT);
      const names = (await readdir(out)).filter((n) => n !== "live.img").sort();
      sums.push(Object.fromEntries(await Promise.all(names.map(async (n) => [n, await sha(join(out, n))] as const))));
    }
    expect(Object.keys(sums[0]!)).toEqual(expect.arrayContaining(["live.raw", "live.qcow2", "live.vdi", "live.vhdx", "live.img.tar.gz", "installer.raw", "installer.iso", "rootfs.img", "config.img", "rootfs.tar"]));
    expect(sums[1]).toEqual(sums[0]);
  });

  it("ROOTFS_FORMAT=erofs gives an erofs image that fsck.erofs accepts", async () => {
    const { r, out } = await built(["rootfs", "ROOTFS_FORMAT=erofs"]);
    expect(r.code, r.stderr).toBe(0);
    await execa("fsck.erofs", [join(out, "rootfs.img")]);
    const info = (await execa("dump.erofs", ["-S", join(out, "rootfs.img")])).stdout;
    expect(info).toMatch(/char dev count:\s+1/);
    expect((await readdir(out)).sort()).toEqual(["rootfs.cdx.json", "rootfs.img", "rootfs.img.provenance.json", "rootfs.spdx.json", "rootfs.tar", "rootfs.tar.provenance.json"]);
  });

  it("ext4 rootfs.img is byte-identical twice too", async () => {
    const a = await built(["rootfs", "ROOTFS_FORMAT=ext4"]);
    await new Promise((r) => setTimeout(r, 1100));
    const b = await built(["rootfs", "ROOTFS_FORMAT=ext4"]);
    expect(await sha(join(b.out, "rootfs.img"))).toBe(await sha(join(a.out, "rootfs.img")));
  });
});

describe("disk errors", () => {
  it("refuses a rootfs over its budget before writing any image, naming the largest contributors", async () => {
    const files: Record<string, string> = { ...EVELIKE, "kiln.yml": EVELIKE["kiln.yml"] + "images:\n  maxsize: 1\n", "pkg/big/build.yml": "kind: script\nscript: |\n  head -c 3000000 /dev/urandom > \"$DESTDIR/big.bin\"\n" };
    files["images/rootfs.yml.in"] = files["images/rootfs.yml.in"]!.replace("  - DEVNODES_TAG", "  - DEVNODES_TAG\n  - BIG_TAG");
    const { r, out } = await built(["live"], files);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error\[E_ROOTFS_TOO_BIG\]: the root file system's content is 2\.\d MiB, over the budget of 1\.0 MiB/);
    expect(r.stderr).toMatch(/2\.9 MiB {2}big\.bin/);
    const left = await readdir(out);
    expect(left.filter((n) => /\.(img|raw|qcow2)$/.test(n) || n.startsWith(".tmp"))).toEqual([]);
  });

  it("refuses overlapping and unknown partitions", async () => {
    const layout = [
      "disks:",
      "  live:",
      "    - {name: efi, type: efi, size: 36M, contents: efi}",
      "    - {name: imga, type: eve-rootfs, contents: rootfs, start: 10M}",
      "    - {name: conf, type: eve-konf, contents: config}",
      "",
    ].join("\n");
    const { r, out } = await built(["live-raw"], { ...EVELIKE, "kiln.yml": EVELIKE["kiln.yml"] + layout });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error[E_LAYOUT]");
    expect(r.stderr).toContain("partitions 'efi' and 'imga' overlap");
    expect(r.stderr).toContain("partition 'conf' has unknown type 'eve-konf'");
    expect((await readdir(out)).filter((n) => n.endsWith(".raw"))).toEqual([]);
  });

  it("names a missing host tool with the apt-get line", async () => {
    const dir = await writeProject(EVELIKE);
    const store = await tempDir();
    const { mkdir, symlink } = await import("node:fs/promises");
    // a PATH with everything but mksquashfs
    const bin = join(await tempDir(), "bin");
    await mkdir(bin);
    for (const t of ["bash", "sh", "tar", "bwrap", "node", "git", "sed", "install", "mkdir", "printf", "ln", "chmod", "cat", "head", "env"]) {
      const p = (await execa("sh", ["-c", `command -v ${t}`], { reject: false })).stdout.trim();
      if (p) await symlink(p, join(bin, t));
    }
    const r = await execa(process.execPath, [BIN, "-C", dir, "build", "rootfs"], { reject: false, env: { KILN_STORE: store, PATH: bin, NO_COLOR: "1" } });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(/error\[E_TOOL_MISSING\]: the host tool 'mksquashfs' is not installed[\s\S]*apt-get install -y squashfs-tools/);
    expect((await readdir(join(dir, OUT))).filter((n) => n.endsWith(".img"))).toEqual([]);
  });
});

describe("what a one-file edit rebuilds", () => {
  it("only the edited package and the stages below it; the ESP and config.img stay", async () => {
    const dir = await writeProject(EVELIKE);
    const store = await tempDir();
    expect((await kiln(["-C", dir, "build", "live"], { store })).code).toBe(0);
    await writeProject({ "pkg/xentools/build.yml": EVELIKE["pkg/xentools/build.yml"]! }, dir); // unchanged file rewritten: nothing to do
    const { writeFile } = await import("node:fs/promises");
    await writeFile(join(dir, "pkg/getty/build.yml"), EVELIKE["pkg/getty/build.yml"]!.replace('"#!/bin/sh\\n"', '"#!/bin/sh\\necho edited\\n"'));
    const r = await kiln(["-C", dir, "--json", "build", "live"], { store });
    expect(r.code, r.stderr).toBe(0);
    const events = r.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l) as { type: string; target?: string; cached?: boolean });
    const rebuilt = events.filter((e) => e.type === "done" && e.cached === false).map((e) => e.target!.split("/")[0] === "pkg" ? e.target : e.target!.split("/")[0]).sort();
    expect(rebuilt).toEqual(["live.qcow2", "live.raw", "pkg/getty", "rootfs", "rootfs.img"]);
    const kept = events.filter((e) => e.type === "done" && e.cached === true).map((e) => e.target!.split("/")[0]);
    expect(kept).toEqual(expect.arrayContaining(["config.img", "efi.img"]));
  });

  it("--profile dev rebuilds only rootfs.img and the disks, with lz4; --timings says where the time went", async () => {
    const { dir, store, r: first, out } = await built(["live"]);
    expect(first.code, first.stderr).toBe(0);
    const comp = async () => /Compression (\w+)/.exec((await execa("unsquashfs", ["-s", join(out, "rootfs.img")])).stdout)?.[1];
    expect(await comp()).toBe("gzip");
    const r = await kiln(["-C", dir, "--json", "build", "live", "--profile", "dev", "--timings"], { store });
    expect(r.code, r.stderr).toBe(0);
    expect(await comp()).toBe("lz4");
    // dev writes no provenance for the images it rebuilt (the release one would describe other bytes)
    const names = await readdir(out);
    expect(names).not.toContain("live.raw.provenance.json");
    expect(names).not.toContain("rootfs.img.provenance.json");
    expect(names).toContain("rootfs.tar.provenance.json");
    const events = r.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l) as { type: string; target?: string; cached?: boolean; stages?: { target: string; status: string; ms: number }[]; phases?: { name: string }[] });
    const rebuilt = events.filter((e) => e.type === "done" && e.cached === false).map((e) => e.target!.split("/")[0]).sort();
    expect(rebuilt).toEqual(["live.qcow2", "live.raw", "rootfs.img"]);
    const t = events.find((e) => e.type === "timings")!;
    expect(t.phases!.map((p) => p.name)).toEqual(["start-up", "load project", "images"]);
    expect(t.stages!.filter((s) => s.status === "built").map((s) => s.target.split("/")[0]).sort()).toEqual(rebuilt);
    // the table, in text mode; an unknown profile is refused with the known ones
    const text = await kiln(["-C", dir, "build", "live", "--profile", "dev", "--timings"], { store });
    expect(text.stdout).toMatch(/timings:\n.*PHASE \/ STAGE[\s\S]*start-up[\s\S]*stages? reused by key\s+cached[\s\S]*total/);
    const bad = await kiln(["-C", dir, "build", "live", "--profile", "fast"], { store });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown build profile 'fast'[\s\S]*one of: release, dev/);
    // a tar composed under dev is neither hashed nor given a provenance; a release build reusing it hashes it then
    await rm(join(out, "rootfs.tar"));
    const dev = await kiln(["-C", dir, "--json", "build", "rootfs.tar", "--profile", "dev"], { store });
    expect(dev.code, dev.stderr).toBe(0);
    type Done = { type: string; target?: string; cached?: boolean; ms?: number; parts?: { name: string; ms: number; bytes?: number }[] };
    const tarDone = (stdout: string) => stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Done).find((e) => e.type === "done" && e.target?.startsWith("rootfs/"));
    const composed = tarDone(dev.stdout)!;
    expect(composed.cached).toBe(false);
    // where the compose's time went: the layers applied, then the tar written (its size, for its speed)
    expect(composed.parts?.map((p) => p.name)).toEqual(["layers", "tar"]);
    expect(composed.parts![1]!.bytes).toBe((await stat(join(out, "rootfs.tar"))).size);
    expect(composed.parts!.reduce((n, p) => n + p.ms, 0)).toBeLessThanOrEqual(composed.ms! + 2);
    expect(await readdir(out)).not.toContain("rootfs.tar.provenance.json");
    const rel = await kiln(["-C", dir, "--json", "build", "rootfs.tar"], { store });
    expect(rel.code, rel.stderr).toBe(0);
    expect(tarDone(rel.stdout)?.cached).toBe(true);
    const prov = JSON.parse(await readFile(join(out, "rootfs.tar.provenance.json"), "utf8")) as { subject: { digest: { sha256: string } }[] };
    expect(prov.subject[0]!.digest.sha256).toBe(createHash("sha256").update(await readFile(join(out, "rootfs.tar"))).digest("hex"));
  });
});
