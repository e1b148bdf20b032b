import { describe, expect, it } from "vitest";
import { jsonLines, kiln, tempDir, writeProject } from "../helpers/kiln.js";

/* kiln verify-reproducible: two isolated builds, every output compared by sha256, the first difference shown by kiln diff. */

const PROJECT = {
  "kiln.yml": "name: vr\narchs: [amd64]\nsourceDateEpoch: 1700000000\n",
  "pkg/etc/build.yml": 'kind: files\nfiles:\n  - {path: /etc/motd, contents: "hello\\n", mode: "0644"}\n',
  "pkg/app/build.yml": [
    "kind: script",
    "depends: [etc]",
    "script: |",
    '  mkdir -p "$DESTDIR/usr/share/app" "$DESTDIR/etc"',
    '  cp "$SYSROOT/etc/motd" "$DESTDIR/usr/share/app/motd"',
    '  tar -C "$DESTDIR/usr/share/app" --sort=name --mtime=@"$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner -cf "$DESTDIR/etc/app.tar" .',
    "",
  ].join("\n"),
  "images/rootfs.yml.in": 'init:\n  - ETC_TAG\n  - APP_TAG\nfiles:\n  - path: etc/issue\n    contents: "vr\\n"\n    mode: "0644"\n',
};

describe("kiln verify-reproducible", () => {
  it("builds the default target (live) twice and finds every output identical", async () => {
    const dir = await writeProject(PROJECT);
    const r = await kiln(["-C", dir, "--json", "verify-reproducible"], { store: await tempDir("kiln-vr-store") });
    expect(r.code, r.stderr).toBe(0);
    const res = jsonLines(r.stdout).pop() as { type: string; data: { identical: boolean; outputs: { path: string; a: string; b: string }[] } };
    expect(res.data.identical).toBe(true);
    const names = res.data.outputs.map((o) => o.path.split("/").pop());
    for (const n of ["rootfs.tar", "rootfs.img", "config.img", "efi.img", "live.raw", "live.qcow2", "rootfs.spdx.json", "rootfs.cdx.json", "rootfs.tar.provenance.json", "live.qcow2.provenance.json"]) expect(names).toContain(n);
    for (const o of res.data.outputs) expect(o.a).toBe(o.b);
  }, 180_000);

  it("fails on a package that writes the time and a random number, naming the package and the file", async () => {
    const dir = await writeProject({
      ...PROJECT,
      "pkg/stamp/build.yml": 'kind: script\nscript: |\n  mkdir -p "$DESTDIR/etc"\n  echo "$(date +%s%N) $RANDOM" > "$DESTDIR/etc/build-stamp"\n',
      "images/rootfs.yml.in": PROJECT["images/rootfs.yml.in"].replace("  - APP_TAG\n", "  - APP_TAG\n  - STAMP_TAG\n"),
    });
    const r = await kiln(["-C", dir, "verify-reproducible", "rootfs"], { store: await tempDir("kiln-vr-store") });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error\[E_NOT_REPRODUCIBLE\]: \d+ of \d+ outputs and 1 package image differ between two builds of the same inputs; first: amd64\/kvm-generic\/rootfs\.tar/);
    expect(r.stderr).toMatch(/package kiln\/stamp:[0-9a-f]{40}: sha256:/);
    expect(r.stderr).toContain("kiln diff of package kiln/stamp:");
    expect(r.stderr).toContain("~ /etc/build-stamp (content)");
    expect(r.stderr).toContain("kiln diff of amd64/kvm-generic/rootfs.tar:");
    expect(r.stderr).not.toContain("/etc/motd");
    expect(r.stderr).toContain("--keep");
  }, 180_000);

  it("keeps both trees with --keep and says where they are", async () => {
    const dir = await writeProject(PROJECT);
    const r = await kiln(["-C", dir, "verify-reproducible", "rootfs.tar", "--keep"], { store: await tempDir("kiln-vr-store") });
    expect(r.code, r.stderr).toBe(0);
    const kept = /kept: (\S+) (\S+)/.exec(r.stdout);
    expect(kept).not.toBeNull();
    const { stat, rm } = await import("node:fs/promises");
    for (const k of [kept![1]!, kept![2]!]) expect((await stat(k)).isDirectory()).toBe(true);
    await rm(kept![1]!.replace(/\/a$/, ""), { recursive: true, force: true });
  }, 180_000);
});
