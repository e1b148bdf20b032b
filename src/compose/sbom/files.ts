import { createHash } from "node:crypto";
import { closeSync, openSync, readSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../../core/atomic.js";
import { runWorker } from "../../core/hash.js";
import { blobHexOf } from "../../store/layout.js";
import type { Tree } from "../tree.js";
import type { ImageFile } from "./inventory.js";

/** Below this many bytes to hash, threads cost more than they save. */
const THREADED_MIN = 16 << 20;

/** A byte range of a layer blob to hash. */
interface Range {
  file: string;
  offset: number;
  size: number;
}

/**
 * The SHA-1 and SHA-256 of each range, on worker threads (up to one per core,
 * the ranges split by bytes): after a package build the new layers' files are
 * not in the cache yet, and hashing 400 MB twice on the main thread took ~1 s
 * while the tar was being written; on other threads it runs beside that.
 */
async function hashRanges(ranges: Range[]): Promise<[string, string][]> {
  const total = ranges.reduce((n, r) => n + r.size, 0);
  if (total < THREADED_MIN) return hashRangesSync(ranges, { createHash, openSync, readSync, closeSync });
  const { availableParallelism } = await import("node:os");
  const n = Math.max(1, Math.min(2, availableParallelism(), ranges.length));
  const groups: Range[][] = [];
  let at = 0;
  for (let g = 0; g < n; g++) {
    const group: Range[] = [];
    let bytes = 0;
    while (at < ranges.length && (g === n - 1 || bytes < total / n)) {
      bytes += ranges[at]!.size;
      group.push(ranges[at++]!);
    }
    groups.push(group);
  }
  const code = `
    const { parentPort, workerData } = require("node:worker_threads");
    const { createHash } = require("node:crypto");
    const { openSync, readSync, closeSync } = require("node:fs");
    parentPort.postMessage((${hashRangesSync.toString()})(workerData, { createHash, openSync, readSync, closeSync }));`;
  return (await Promise.all(groups.map((group) => runWorker<[string, string][]>(code, group)))).flat();
}

/** What hashRangesSync uses, passed in: it also runs on a worker thread, as its own source text. */
interface HashDeps {
  createHash: typeof createHash;
  openSync: typeof openSync;
  readSync: typeof readSync;
  closeSync: typeof closeSync;
}

/** The SHA-1 and SHA-256 of each range. Self-contained (no outer names): hashRanges sends its text to the workers. */
function hashRangesSync(ranges: Range[], fs: HashDeps): [string, string][] {
  const buf = Buffer.allocUnsafe(1 << 20);
  const fds = new Map<string, number>();
  try {
    return ranges.map((r) => {
      let fd = fds.get(r.file);
      if (fd === undefined) fds.set(r.file, (fd = fs.openSync(r.file, "r")));
      const a = fs.createHash("sha1");
      const b = fs.createHash("sha256");
      for (let done = 0; done < r.size; ) {
        const k = fs.readSync(fd, buf, 0, Math.min(buf.length, r.size - done), r.offset + done);
        if (k <= 0) throw new Error(`${r.file}: short read at ${r.offset + done}`);
        a.update(buf.subarray(0, k));
        b.update(buf.subarray(0, k));
        done += k;
      }
      return [a.digest("hex"), b.digest("hex")] as [string, string];
    });
  } finally {
    for (const fd of fds.values()) fs.closeSync(fd);
  }
}

/**
 * SHA-1 (SPDX requires it for every file) and SHA-256 of every regular file
 * of a composed tree, read once from where the tree keeps the bytes (ranges
 * of layer blobs, or bytes kiln made). Hard links count as the file they
 * point at. Sorted by path. Digests of blob ranges are cached per blob; the
 * others are computed on worker threads (hashRanges).
 */
export async function hashTreeFiles(tree: Tree, skip: (path: string) => boolean = () => false, cacheDir?: string): Promise<ImageFile[]> {
  const out: ImageFile[] = [];
  const cache = new BlobHashCache(cacheDir);
  const todo: { at: number; range: Range }[] = [];
  await cache.load(tree.sources()); // every layer's digests read at once; then each lookup is a map read
  for (const path of [...tree.nodes.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
    const node = tree.nodes.get(path)!;
    if ((node.type !== "file" && node.type !== "link") || skip(path)) continue;
    const file = node.type === "file" ? node : tree.resolveFile(node.linkname ?? "");
    if (!file) continue; // a hard link to nothing is dropped from the tar too
    const c = file.content;
    if (!c || "data" in c) {
      const data = c?.data ?? Buffer.alloc(0);
      out.push({ path, size: data.length, sha1: createHash("sha1").update(data).digest("hex"), sha256: createHash("sha256").update(data).digest("hex") });
      continue;
    }
    const hit = cache.get(c.file, c.offset, c.size);
    if (hit) {
      out.push({ path, size: c.size, sha1: hit[0], sha256: hit[1] });
      continue;
    }
    todo.push({ at: out.length, range: { file: c.file, offset: c.offset, size: c.size } });
    out.push({ path, size: c.size, sha1: "", sha256: "" });
  }
  const digests = await hashRanges(todo.map((t) => t.range));
  todo.forEach((t, i) => {
    const [sha1, sha256] = digests[i]!;
    Object.assign(out[t.at]!, { sha1, sha256 });
    cache.set(t.range.file, t.range.offset, t.range.size, [sha1, sha256]);
  });
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
  /** The loaded digests by file path (a blob's path), so that a lookup is one map read. */
  private readonly byFile = new Map<string, { digest: string; entries: Record<string, [string, string]> }>();
  private readonly dirty = new Set<string>();

  constructor(private readonly dir: string | undefined) {}

  private async entries(digest: string): Promise<Record<string, [string, string]>> {
    let e = this.loaded.get(digest);
    if (!e) {
      const text = await readFile(join(this.dir!, `${digest}.json`), "utf8").catch(() => "{}");
      try {
        e = JSON.parse(text) as Record<string, [string, string]>;
      } catch {
        e = {}; // damaged: hashed again and rewritten, as if it were not there
      }
      this.loaded.set(digest, e);
    }
    return e;
  }

  /** Read the digests of these files' blobs, all at once; `get` and `set` know only these files. */
  async load(files: Iterable<string>): Promise<void> {
    if (!this.dir) return;
    const blobs = new Map<string, string>();
    for (const f of files) {
      const d = blobHexOf(f);
      if (d) blobs.set(f, d);
    }
    await Promise.all([...blobs].map(async ([file, digest]) => this.byFile.set(file, { digest, entries: await this.entries(digest) })));
  }

  get(file: string, offset: number, size: number): [string, string] | undefined {
    return this.byFile.get(file)?.entries[`${offset}:${size}`];
  }

  set(file: string, offset: number, size: number, digests: [string, string]): void {
    const b = this.byFile.get(file);
    if (!b) return;
    b.entries[`${offset}:${size}`] = digests;
    this.dirty.add(b.digest);
  }

  async save(): Promise<void> {
    for (const d of this.dirty) await writeFileAtomic(join(this.dir!, `${d}.json`), JSON.stringify(this.loaded.get(d)), { sync: false });
  }
}
