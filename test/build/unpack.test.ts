import { execa } from "execa";
import { existsSync } from "node:fs";
import { mkdir, readFile, readdir, readlink, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { unpackLayers } from "../../src/build/unpack.js";
import { MT, Store } from "../../src/store/layout.js";
import { tempDir } from "../helpers/kiln.js";

/** A layer blob in the store, made by GNU tar from `files` (paths → contents; "->target" makes a symlink). */
async function layer(store: Store, dir: string, files: Record<string, string>, extra: string[] = []) {
  const root = await tempDir();
  for (const [path, body] of Object.entries(files)) {
    await mkdir(join(root, path, ".."), { recursive: true });
    if (body.startsWith("->")) await symlink(body.slice(2), join(root, path));
    else await writeFile(join(root, path), body);
  }
  const tar = join(dir, `layer-${Math.random().toString(16).slice(2)}.tar`);
  await execa("tar", ["-cf", tar, "-C", root, ...extra, ...Object.keys(files)]);
  return store.putBytes(await readFile(tar), MT.layer);
}

describe("unpacking dependency layers into a build sysroot", () => {
  it("applies layers in order, remembers their headers per blob, and refuses entries that would land outside", async () => {
    const dir = await tempDir();
    const store = await Store.open(join(dir, "store"));
    const a = await layer(store, dir, { "usr/include/a.h": "int a;\n", "etc/conf": "first\n", "lib/link": "->../usr/include/a.h" });
    const b = await layer(store, dir, { "etc/conf": "second\n", "usr/lib/libb.a": "b" });
    const dest = join(dir, "sysroot");
    await unpackLayers(store, [a, b], dest);
    expect(await readFile(join(dest, "etc/conf"), "utf8")).toBe("second\n");
    expect(await readFile(join(dest, "usr/include/a.h"), "utf8")).toBe("int a;\n");
    expect(await readlink(join(dest, "lib/link"))).toBe("../usr/include/a.h");
    // the headers of both blobs are remembered in the store (as composing does), and believed next time
    const cached = (await readdir(join(store.kilnDir, "tar-index"))).sort();
    expect(cached).toEqual([a, b].map((d) => `${d.digest.slice("sha256:".length)}.json`).sort());
    await unpackLayers(store, [a, b], join(dir, "again"));
    expect(await readFile(join(dir, "again", "etc/conf"), "utf8")).toBe("second\n");

    // a symlink planted by an earlier layer must not carry a later entry outside the sysroot
    const plant = await layer(store, dir, { escape: `->${dir}` });
    const through = await layer(store, dir, { "escape/owned": "x" });
    await expect(unpackLayers(store, [plant, through], join(dir, "s2"))).rejects.toMatchObject({ code: "E_PATH_ESCAPE", message: expect.stringContaining("through the symlink escape") });
    expect(existsSync(join(dir, "owned"))).toBe(false);
    // nor a name with ".." in it (GNU tar keeps it as given with -P)
    const dots = await layer(store, dir, { "d/x": "x" }, ["--transform=s,^d/x,../x,", "-P"]);
    await expect(unpackLayers(store, [dots], join(dir, "s3"))).rejects.toMatchObject({ code: "E_PATH_ESCAPE", message: expect.stringContaining("outside its root: ../x") });
  });
});
