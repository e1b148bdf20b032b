import { createHash, randomBytes } from "node:crypto";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { hashTreeFiles } from "../../src/compose/sbom/files.js";
import { Tree } from "../../src/compose/tree.js";
import { tempDir } from "../helpers/kiln.js";

const hex = (alg: string, b: Buffer) => createHash(alg).update(b).digest("hex");

describe("file digests for the SBOM", () => {
  it("hashes ranges of a blob on worker threads (above 16 MiB) and inline, the same, and caches them per blob", async () => {
    const dir = await tempDir();
    const blob = join(dir, "blobs", "sha256", "a".repeat(64)); // a store blob's name: cached by it
    const { mkdir } = await import("node:fs/promises");
    await mkdir(join(dir, "blobs", "sha256"), { recursive: true });
    const bytes = randomBytes(24 << 20);
    await writeFile(blob, bytes);
    const ranges: [string, number, number][] = [["big/one", 0, 9 << 20], ["big/two", (9 << 20) + 512, 9 << 20], ["small", 100, 3000], ["empty", 0, 0]];
    const tree = new Tree();
    const seq = tree.nextLayer();
    for (const [path, offset, size] of ranges) tree.set(path, { type: "file", mode: 0o644, uid: 0, gid: 0, content: { file: blob, offset, size } }, seq);
    tree.set("made", { type: "file", mode: 0o644, uid: 0, gid: 0, content: { data: Buffer.from("kiln") } }, seq);
    tree.set("link", { type: "link", mode: 0o644, uid: 0, gid: 0, linkname: "small" }, seq);
    const cacheDir = join(dir, "file-hashes");
    const want = (path: string) => {
      const r = ranges.find((x) => x[0] === path);
      const b = r ? bytes.subarray(r[1], r[1] + r[2]) : path === "link" ? bytes.subarray(100, 3100) : Buffer.from("kiln");
      return { path, size: b.length, sha1: hex("sha1", b), sha256: hex("sha256", b) };
    };
    const expected = ["big/one", "big/two", "empty", "link", "made", "small"].map(want);
    expect(await hashTreeFiles(tree, () => false, cacheDir)).toEqual(expected); // 18 MiB to hash: threads
    expect(await readdir(cacheDir)).toEqual([`${"a".repeat(64)}.json`]);
    await writeFile(blob, Buffer.alloc(bytes.length)); // a blob never changes: the cache is believed
    expect(await hashTreeFiles(tree, () => false, cacheDir)).toEqual(expected);
    // a damaged cache file (a crash mid-write of an older kiln, a disk error) is hashed again and rewritten
    await writeFile(blob, bytes);
    await writeFile(join(cacheDir, `${"a".repeat(64)}.json`), '{"0:943');
    expect(await hashTreeFiles(tree, () => false, cacheDir)).toEqual(expected);
    expect(Object.keys(JSON.parse(await readFile(join(cacheDir, `${"a".repeat(64)}.json`), "utf8")) as object)).toHaveLength(4);
    const small = new Tree();
    small.set("small", { ...tree.nodes.get("small")! }, small.nextLayer());
    await writeFile(blob, bytes);
    expect(await hashTreeFiles(small, () => false)).toEqual([want("small")]); // inline, no cache
  });
});
