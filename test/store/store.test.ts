import { execa } from "execa";
import { readdir, readFile, writeFile, chmod, stat } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BIN, built, jsonLines, KILN_YML, kiln, tempDir, writeProject } from "../helpers/kiln.js";
import { refs } from "../helpers/layers.js";

const SIMPLE = {
  "kiln.yml": KILN_YML,
  "pkg/base/build.yml": "kind: files\nfiles:\n  - path: /etc/os-release\n    contents: \"ID=kiln\\n\"\n",
  "pkg/app/build.yml": "kind: script\ndepends: [base]\nscript: |\n  mkdir -p \"$DESTDIR/usr/bin\"\n  printf '#!/bin/sh\\necho app\\n' > \"$DESTDIR/usr/bin/app\"\n  chmod +x \"$DESTDIR/usr/bin/app\"\n",
};

async function refOf(store: string, pkg: string): Promise<string> {
  return (await refs(store)).find((r) => r.startsWith(`kiln/${pkg}:`))!;
}

describe("the OCI store", () => {
  it("is read by skopeo and unpacked by umoci as it is", async () => {
    const dir = await writeProject(SIMPLE);
    const store = await tempDir();
    expect((await kiln(["-C", dir, "build"], { store })).code).toBe(0);
    const ref = await refOf(store, "app");
    const insp = await execa("skopeo", ["inspect", `oci:${store}:${ref}`]);
    const info = JSON.parse(insp.stdout) as { Architecture: string; Os: string; Layers: string[]; Labels: Record<string, string> };
    expect(info).toMatchObject({ Architecture: "amd64", Os: "linux" });
    expect(info.Layers).toHaveLength(1);
    expect(info.Labels["dev.kiln.package"]).toBe("app");
    const bundle = join(await tempDir(), "bundle");
    await execa("umoci", ["unpack", "--rootless", "--image", `${store}:${ref}`, bundle]);
    const app = join(bundle, "rootfs/usr/bin/app");
    expect(await readFile(app, "utf8")).toContain("echo app");
    expect((await stat(app)).mode & 0o777).toBe(0o755);
    const copy = await tempDir();
    await execa("skopeo", ["copy", `oci:${store}:${ref}`, `oci:${copy}:x`]);
    const raw = (await execa("skopeo", ["inspect", "--raw", `oci:${store}:${ref}`])).stdout;
    const index = JSON.parse(await readFile(join(store, "index.json"), "utf8")) as { manifests: { digest: string; annotations: Record<string, string> }[] };
    const digest = index.manifests.find((m) => m.annotations["org.opencontainers.image.ref.name"] === ref)!.digest;
    expect(raw).toBe(await readFile(join(store, "blobs/sha256", digest.slice(7)), "utf8"));
    // skopeo recompresses layers on copy, but the image config (with the uncompressed diff_ids) is carried as is.
    const config = (manifest: string) => (JSON.parse(manifest) as { config: { digest: string } }).config.digest;
    expect(config((await execa("skopeo", ["inspect", "--raw", `oci:${copy}:x`])).stdout)).toBe(config(raw));
  });

  it("fsck finds a corrupt blob and a missing one; --repair removes them and the next build heals", async () => {
    const dir = await writeProject(SIMPLE);
    const store = await tempDir();
    expect((await kiln(["-C", dir, "build"], { store })).code).toBe(0);
    const clean = await kiln(["store", "fsck"], { store });
    expect(clean.code, clean.stdout + clean.stderr).toBe(0);
    expect(clean.stdout).toMatch(/\d+ blobs and 2 images checked: no problems/);

    const blobs = join(store, "blobs/sha256");
    const names = await readdir(blobs);
    const sizes = await Promise.all(names.map(async (n) => [n, (await stat(join(blobs, n))).size] as const));
    const biggest = sizes.sort((a, b) => b[1] - a[1])[0]![0];
    await chmod(join(blobs, biggest), 0o644);
    await writeFile(join(blobs, biggest), "garbage");
    const bad = await kiln(["--json", "store", "fsck"], { store });
    expect(bad.code).toBe(3);
    const report = JSON.parse(bad.stdout) as { problems: { message: string }[] };
    expect(report.problems.map((p) => p.message).join("\n")).toContain(`blob sha256:${biggest} is corrupt`);

    const layerOfApp = JSON.parse((await execa("skopeo", ["inspect", `oci:${store}:${await refOf(store, "base")}`])).stdout).Layers[0] as string;
    const { rm } = await import("node:fs/promises");
    await rm(join(blobs, layerOfApp.slice(7)), { force: true });
    const missing = await kiln(["store", "fsck"], { store });
    expect(missing.code).toBe(3);
    expect(missing.stdout).toMatch(new RegExp(`image kiln/base:\\w+ needs ${layerOfApp} \\(layer of kiln/base:\\w+\\), which is missing`));
    const fixed = await kiln(["store", "fsck", "--repair"], { store });
    expect(fixed.code).toBe(0);
    expect((await kiln(["store", "fsck"], { store })).code).toBe(0);
    const rebuilt = await kiln(["-C", dir, "--json", "build"], { store });
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    expect(built(rebuilt.stdout).length).toBeGreaterThan(0);
    expect((await kiln(["store", "fsck"], { store })).code).toBe(0);
  });

  it("gc keeps what refs use, drops what they do not, and honours --older-than", async () => {
    const dir = await writeProject(SIMPLE);
    const store = await tempDir();
    expect((await kiln(["-C", dir, "build"], { store })).code).toBe(0);
    const before = (await readdir(join(store, "blobs/sha256"))).length;
    const { writeFile: wf, utimes } = await import("node:fs/promises");
    const orphan = join(store, "blobs/sha256", "f".repeat(64));
    await wf(orphan, "orphan");
    const old = new Date(Date.now() - 2 * 3600_000);
    await utimes(orphan, old, old);
    // the SBOM digest and tar header caches of each blob: the orphan's go with it, a live blob's stay
    const { mkdir: md } = await import("node:fs/promises");
    const live = (await readdir(join(store, "blobs/sha256"))).find((b) => b !== "f".repeat(64))!;
    await md(join(store, "kiln/file-hashes"), { recursive: true });
    await wf(join(store, "kiln/file-hashes", `${"f".repeat(64)}.json`), "{}");
    await wf(join(store, "kiln/file-hashes", `${live}.json`), "{}");
    await md(join(store, "kiln/tar-index"), { recursive: true });
    await wf(join(store, "kiln/tar-index", `${"f".repeat(64)}-512-1024.json`), "{}");
    await wf(join(store, "kiln/tar-index", `${live}.json`), "{}");
    await wf(join(store, "kiln/tar-index", `${live}-0-2048.json`), "{}");
    const gc = await kiln(["--json", "store", "gc"], { store });
    expect(gc.code, gc.stderr).toBe(0);
    expect(JSON.parse(gc.stdout)).toMatchObject({ blobs: 1, refs: [] });
    expect((await readdir(join(store, "blobs/sha256"))).length).toBe(before);
    expect(await readdir(join(store, "kiln/file-hashes"))).toEqual([`${live}.json`]);
    // (the build itself remembered the headers of the layers it unpacked for a sysroot: those blobs live on too)
    const blobs = new Set(await readdir(join(store, "blobs/sha256")));
    const index = await readdir(join(store, "kiln/tar-index"));
    expect(index).toEqual(expect.arrayContaining([`${live}-0-2048.json`, `${live}.json`]));
    expect(index.filter((f) => !blobs.has(f.slice(0, 64)))).toEqual([]);
    expect((await kiln(["store", "fsck"], { store })).code).toBe(0);
    const dry = await kiln(["--json", "store", "gc", "--older-than", "0", "--dry-run"], { store });
    expect(JSON.parse(dry.stdout).refs).toEqual([]);
    const ls = await kiln(["--json", "store", "ls"], { store });
    expect((JSON.parse(ls.stdout) as { images: unknown[] }).images).toHaveLength(2);
  });

  it("lets two kiln processes build into one store at once, with the same results", async () => {
    const files: Record<string, string> = { "kiln.yml": KILN_YML };
    for (let i = 0; i < 8; i++) {
      files[`pkg/p${i}/build.yml`] = `kind: script\n${i ? `depends: [p${i - 1}]\n` : ""}script: |\n  sleep 0.2\n  echo ${i} > "$DESTDIR/p${i}"\n`;
    }
    const dir = await writeProject(files);
    const store = await tempDir();
    const [a, b] = await Promise.all([kiln(["-C", dir, "--json", "--out", join(dir, "outA"), "build"], { store }), kiln(["-C", dir, "--json", "--out", join(dir, "outB"), "build"], { store })]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    // Every package was built by exactly one of the two; the other waited and took its result.
    expect([...built(a.stdout), ...built(b.stdout)].sort()).toEqual(Object.keys(files).filter((f) => f.startsWith("pkg/")).map((f) => f.slice(0, -"/build.yml".length)).sort());
    const digests = (out: string) => jsonLines(out).filter((e) => e.type === "result").map((e) => (e.data as { targets: { digest: string }[] }).targets.map((t) => t.digest).join());
    expect(digests(a.stdout)).toEqual(digests(b.stdout));
    expect((await refs(store)).length).toBe(8);
    expect((await kiln(["store", "fsck"], { store })).code).toBe(0);
  });

  it("survives kill -9 in the middle of a build: the next build is correct and fsck is clean", async () => {
    const files: Record<string, string> = { "kiln.yml": KILN_YML };
    for (let i = 0; i < 6; i++) files[`pkg/k${i}/build.yml`] = `kind: script\nscript: |\n  head -c 2000000 /dev/zero > "$DESTDIR/blob${i}"\n  sleep 0.3\n`;
    const dir = await writeProject(files);
    const store = await tempDir();
    const child = execa("node", [BIN, "-C", dir, "--json", "-j", "2", "build"], { env: { KILN_STORE: store }, reject: false });
    let seen = 0;
    child.stdout!.on("data", (b: Buffer) => {
      seen += (b.toString().match(/"type":"done"/g) ?? []).length;
      if (seen >= 1) child.kill("SIGKILL");
    });
    const killed = await child;
    expect(killed.signal).toBe("SIGKILL");
    const again = await kiln(["-C", dir, "--json", "build"], { store });
    expect(again.code, again.stderr).toBe(0);
    expect((await refs(store)).length).toBe(6);
    const fsck = await kiln(["store", "fsck"], { store });
    expect(fsck.code, fsck.stdout).toBe(0);
    expect(fsck.stdout).toContain("no problems");
    // Leftover temp files of the dead process are garbage that gc removes.
    await kiln(["store", "gc"], { store });
    expect(await readdir(join(store, "kiln/tmp"))).toEqual([]);
  });

  it("stops on SIGTERM: children die, nothing partial is kept, exit 130", async () => {
    const dir = await writeProject({
      "kiln.yml": KILN_YML,
      "pkg/slow/build.yml": "kind: script\nscript: |\n  echo $$ > \"$BUILDDIR/../pid\"\n  touch \"$DESTDIR/started\"\n  sleep 30\n",
    });
    const store = await tempDir();
    const child = execa("node", [BIN, "-C", dir, "--json", "--keep-work", "build"], { env: { KILN_STORE: store }, reject: false });
    await new Promise<void>((resolve) => child.stdout!.on("data", (b: Buffer) => b.toString().includes('"type":"start"') && resolve()));
    await new Promise((r) => setTimeout(r, 500));
    child.kill("SIGTERM");
    const res = await child;
    expect(res.exitCode).toBe(130);
    expect(res.stderr).toContain("E_INTERRUPTED");
    expect(await refs(store)).toEqual([]);
    expect(await readdir(join(store, "kiln/tmp"))).toEqual([]);
    const ps = await execa("pgrep", ["-f", "sleep 30"], { reject: false });
    expect(ps.stdout.trim()).toBe("");
  });
});

describe("index.json", () => {
  it("keeps every ref when many are set at once (one write for those that arrive together), and sees another writer's changes", async () => {
    const { Store } = await import("../../src/store/layout.js");
    const dir = await tempDir();
    const store = await Store.open(dir);
    const desc = (i: number) => ({ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: `sha256:${String(i).padStart(64, "0")}`, size: i + 1 }) as Parameters<typeof store.setRef>[1];
    const writes: number[] = [];
    const { watch } = await import("node:fs");
    const w = watch(dir, (_e, name) => name === "index.json" && writes.push(Date.now()));
    await Promise.all(Array.from({ length: 40 }, (_, i) => store.setRef(`kiln/p${i}:tag`, desc(i))));
    w.close();
    const idx = JSON.parse(await readFile(join(dir, "index.json"), "utf8")) as { manifests: { digest: string; size: number; annotations: Record<string, string> }[] };
    const names = idx.manifests.map((m) => m.annotations["org.opencontainers.image.ref.name"]);
    expect(names).toHaveLength(40);
    expect(new Set(names).size).toBe(40);
    for (const m of idx.manifests) expect(m.size).toBe(Number(/p(\d+)/.exec(m.annotations["org.opencontainers.image.ref.name"]!)![1]) + 1);
    expect(writes.length).toBeLessThan(40); // refs set together share writes
    // another process replaces index.json: the next change starts from its content, not from this one's memory
    const other = await Store.open(dir);
    await other.setRef("kiln/p0:tag", desc(100));
    await store.setRef("kiln/extra:tag", desc(7));
    const after = JSON.parse(await readFile(join(dir, "index.json"), "utf8")) as typeof idx;
    expect(after.manifests).toHaveLength(41);
    expect(after.manifests.find((m) => m.annotations["org.opencontainers.image.ref.name"] === "kiln/p0:tag")?.size).toBe(101);
    // a rewrite of the same length in the same clock tick (same size and mtime) is still seen: a new file, a new inode
    const index = join(dir, "index.json");
    const mine = await stat(index, { bigint: true }); // `store` wrote this one last, and keeps it
    await other.setRef("kiln/p1:tag", desc(7)); // size 2 → 8, digest …1 → …7: the same length
    expect((await stat(index)).size).toBe(Number(mine.size));
    const ns = mine.mtimeNs;
    await execa("touch", ["-m", "-d", `@${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, "0")}`, index]); // to the nanosecond
    expect((await stat(index, { bigint: true })).mtimeNs).toBe(ns);
    const seen = (await store.readIndex()).manifests.find((m) => m.annotations?.["org.opencontainers.image.ref.name"] === "kiln/p1:tag");
    expect(seen?.size).toBe(8);
  });
});
