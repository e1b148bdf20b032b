import { createHash } from "node:crypto";
import { open } from "node:fs/promises";
import type { Tree } from "../tree.js";
import type { ImageFile } from "./inventory.js";

const CHUNK = 1 << 20;

/**
 * SHA-1 (SPDX requires it for every file) and SHA-256 of every regular file
 * of a composed tree, read once from where the tree keeps the bytes (ranges
 * of layer blobs, or bytes kiln made). Hard links count as the file they
 * point at. Sorted by path.
 */
export async function hashTreeFiles(tree: Tree, skip: (path: string) => boolean = () => false): Promise<ImageFile[]> {
  const out: ImageFile[] = [];
  const buf = Buffer.alloc(CHUNK);
  const handles = new Map<string, Awaited<ReturnType<typeof open>>>();
  try {
    for (const path of [...tree.nodes.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
      const node = tree.nodes.get(path)!;
      if ((node.type !== "file" && node.type !== "link") || skip(path)) continue;
      const file = node.type === "file" ? node : tree.resolveFile(node.linkname ?? "");
      const c = file?.content;
      const sha1 = createHash("sha1");
      const sha256 = createHash("sha256");
      let size = 0;
      if (c && "data" in c) {
        sha1.update(c.data);
        sha256.update(c.data);
        size = c.data.length;
      } else if (c) {
        let fh = handles.get(c.file);
        if (!fh) handles.set(c.file, (fh = await open(c.file, "r")));
        for (let done = 0; done < c.size; ) {
          const { bytesRead } = await fh.read(buf, 0, Math.min(CHUNK, c.size - done), c.offset + done);
          if (!bytesRead) throw new Error(`${c.file}: short read at ${c.offset + done}`);
          sha1.update(buf.subarray(0, bytesRead));
          sha256.update(buf.subarray(0, bytesRead));
          done += bytesRead;
        }
        size = c.size;
      } else if (!file) continue; // a hard link to nothing is dropped from the tar too
      out.push({ path, size, sha1: sha1.digest("hex"), sha256: sha256.digest("hex") });
    }
  } finally {
    await Promise.all([...handles.values()].map((h) => h.close()));
  }
  return out;
}
