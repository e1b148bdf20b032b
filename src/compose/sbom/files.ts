import { createHash } from "node:crypto";
import { open, readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../../core/atomic.js";
import type { Tree } from "../tree.js";
import type { ImageFile } from "./inventory.js";

const CHUNK = 1 << 20;

/**
 * SHA-1 (SPDX requires it for every file) and SHA-256 of every regular file
 * of a composed tree, read once from where the tree keeps the bytes (ranges
 * of layer blobs, or bytes kiln made). Hard links count as the file they
 * point at. Sorted by path.
 */
export async function hashTreeFiles(tree: Tree, skip: (path: string) => boolean = () => false, cacheDir?: string): Promise<ImageFile[]> {
  const out: ImageFile[] = [];
  const cache = new BlobHashCache(cacheDir);
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
        const hit = await cache.get(c.file, c.offset, c.size);
        if (hit) {
          out.push({ path, size: c.size, sha1: hit[0], sha256: hit[1] });
          continue;
        }
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
      const digests: [string, string] = [sha1.digest("hex"), sha256.digest("hex")];
      if (c && !("data" in c)) cache.set(c.file, c.offset, c.size, digests);
      out.push({ path, size, sha1: digests[0], sha256: digests[1] });
    }
  } finally {
    await Promise.all([...handles.values()].map((h) => h.close()));
  }
  await cache.save();
  return out;
}

/**
 * File digests by (layer blob, offset, size), kept per blob in the store
 * (kiln/file-hashes/<blob digest>.json). A blob's name is its sha256, so its
 * bytes never change: after a one-package edit only the new layer's files are
 * hashed again, not the whole image.
 */
class BlobHashCache {
  private readonly loaded = new Map<string, Record<string, [string, string]>>();
  private readonly dirty = new Set<string>();

  constructor(private readonly dir: string | undefined) {}

  /** The blob's digest when `file` is a store blob (…/blobs/sha256/<hex>), else undefined (not cached). */
  private digestOf(file: string): string | undefined {
    return /\/blobs\/sha256\/([0-9a-f]{64})$/.exec(file)?.[1];
  }

  private async entries(digest: string): Promise<Record<string, [string, string]>> {
    let e = this.loaded.get(digest);
    if (!e) {
      e = JSON.parse(await readFile(join(this.dir!, `${digest}.json`), "utf8").catch(() => "{}")) as Record<string, [string, string]>;
      this.loaded.set(digest, e);
    }
    return e;
  }

  async get(file: string, offset: number, size: number): Promise<[string, string] | undefined> {
    const d = this.dir && this.digestOf(file);
    return d ? (await this.entries(d))[`${offset}:${size}`] : undefined;
  }

  set(file: string, offset: number, size: number, digests: [string, string]): void {
    const d = this.dir && this.digestOf(file);
    if (!d) return;
    const e = this.loaded.get(d);
    if (!e) return;
    e[`${offset}:${size}`] = digests;
    this.dirty.add(d);
  }

  async save(): Promise<void> {
    for (const d of this.dirty) await writeFileAtomic(join(this.dir!, `${d}.json`), JSON.stringify(this.loaded.get(d)), { sync: false });
  }
}
