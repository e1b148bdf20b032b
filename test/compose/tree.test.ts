import { describe, expect, it } from "vitest";
import type { TarEntry } from "../../src/core/tar-header.js";
import { Tree } from "../../src/compose/tree.js";

/** A layer's index entries: "dir/" a folder, "name -> target" a symlink, anything else a file. */
function layer(...names: string[]): TarEntry[] {
  return names.map((n, i) => {
    const base = { mode: 0o644, uid: 0, gid: 0, size: 0, linkname: "", devmajor: 0, devminor: 0, offset: i * 512 };
    if (n.endsWith("/")) return { ...base, name: n, type: "directory", mode: 0o755 };
    const [name, target] = n.split(" -> ");
    return target ? { ...base, name: name!, type: "symlink", linkname: target } : { ...base, name: n, type: "file", size: 1 };
  });
}

describe("layers applied with OCI whiteouts", () => {
  it("a .wh. entry removes the name (and all under it) from the layers below; .wh..wh..opq empties its folder of them", () => {
    const t = new Tree();
    t.applyLayer("", "/l1", layer("a/", "a/x", "a/y", "b/", "b/z", "c/", "c/deep/", "c/deep/f", "s -> a"));
    t.applyLayer("", "/l2", layer("a/.wh.x", "b/", "b/.wh..wh..opq", "b/new", ".wh.c", ".wh.s", "s/", "s/own"));
    expect([...t.nodes.keys()].sort()).toEqual(["a", "a/y", "b", "b/new", "s", "s/own"]);
    expect(t.nodes.get("s")?.type).toBe("directory"); // the symlink replaced by the new layer's folder
    expect(t.nodes.get("b/new")?.content).toEqual({ file: "/l2", offset: 3 * 512, size: 1 });
  });

  it("whiteouts apply to the layers below only: an entry of the same layer stays, under a prefix too", () => {
    const t = new Tree();
    t.applyLayer("containers/x/rootfs", "/l1", layer("etc/", "etc/old"));
    t.applyLayer("containers/x/rootfs", "/l2", layer("etc/.wh..wh..opq", "etc/kept", "etc/.wh.old"));
    expect([...t.nodes.keys()].sort()).toEqual(["containers/x/rootfs/etc", "containers/x/rootfs/etc/kept"]);
  });

  it("a file over a folder replaces the folder and what it held; a folder over a folder keeps its contents", () => {
    const t = new Tree();
    t.applyLayer("", "/l1", layer("d/", "d/f", "e/", "e/g"));
    t.applyLayer("", "/l2", layer("d", "e/"));
    expect([...t.nodes.keys()].sort()).toEqual(["d", "e", "e/g"]);
    expect(t.nodes.get("d")?.type).toBe("file");
  });
});
