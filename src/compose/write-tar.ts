import { rename, rm } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import { tempPathFor } from "../core/atomic.js";
import { type FollowHash, sha256Follow } from "../core/hash.js";
import { TarWriter } from "./tar-writer.js";
import type { Node, Tree } from "./tree.js";

export interface TarResult {
  /** Only when asked for: the tar's sha256, hashed on another thread as it is written; settles after the write. */
  sha256?: Promise<string>;
  size: number;
  entries: number;
  /** From the first entry planned to the tar complete on disk (the copy thread done; the SBOMs' wait included). */
  ms: number;
}

/**
 * Serialize a tree as a tar: entries sorted by path, parents before children,
 * every mtime = `mtime`, numeric owners only, no host data. Written under a
 * temp name and renamed, so a crash leaves no half tar at `out`. A hard link
 * whose target sorts after it (or is gone) is written as a copy, so every
 * reader can extract the archive in one pass.
 * The writer plans entries and its copy thread writes them meanwhile;
 * `late` files (the SBOMs, which are made while the tar is written) are
 * waited for when their turn comes, with what comes before them already sent
 * to the copy thread.
 */
export async function writeTreeTar(
  tree: Tree,
  out: string,
  mtime: number,
  opts: { sha256?: boolean; late?: Map<string, Promise<Buffer>>; /** waited for before the tar takes its name (work whose failure must leave no tar) */ before?: Promise<unknown> } = {},
): Promise<TarResult> {
  const t0 = performance.now();
  const paths = [...tree.nodes.keys()];
  const all = new Set(paths);
  for (const p of paths) {
    for (let i = p.indexOf("/"); i !== -1; i = p.indexOf("/", i + 1)) {
      const parent = p.slice(0, i);
      if (!all.has(parent)) {
        all.add(parent);
        tree.nodes.set(parent, { type: "directory", mode: 0o755, uid: 0, gid: 0, seq: 0 });
      }
    }
  }
  const sorted = [...all].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const tmp = tempPathFor(out);
  const w = new TarWriter(tmp);
  const written = new Set<string>();
  let follow: FollowHash | undefined;
  try {
    if (opts.sha256) w.followWith((follow = await sha256Follow(tmp)));
    let n = 0;
    for (const path of sorted) {
      // a turn of the event loop now and then: the SBOM, made meanwhile on this thread, waits for its reads
      if (++n % 512 === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      let node: Node = tree.nodes.get(path)!;
      if (node.type === "link") {
        const target = node.linkname ?? "";
        if (!written.has(target) || tree.nodes.get(target)?.type !== "file") {
          const file = tree.resolveFile(target);
          if (!file) continue; // a link to nothing: dropped, as unpacking would fail on it
          node = { ...file, mode: node.mode, uid: node.uid, gid: node.gid };
        }
      }
      const pending = opts.late?.get(path);
      if (pending) w.send();
      const c = pending ? { data: await pending } : node.content;
      const size = node.type === "file" ? (c ? ("data" in c ? c.data.length : c.size) : 0) : 0;
      w.add(
        {
          name: node.type === "directory" ? `${path}/` : path,
          type: node.type,
          mode: node.mode,
          uid: node.uid,
          gid: node.gid,
          size,
          mtime,
          linkname: node.type === "symlink" || node.type === "link" ? node.linkname : undefined,
          devmajor: node.devmajor,
          devminor: node.devminor,
          pax: node.xattrs ? Object.fromEntries(Object.entries(node.xattrs).map(([k, v]) => [`SCHILY.xattr.${k}`, v])) : undefined,
        },
        c,
      );
      written.add(path);
    }
    const res = await w.finish();
    const ms = performance.now() - t0;
    const sha256 = follow?.end(res.size);
    sha256?.catch(() => undefined); // the caller's to await; a failure before it does must not crash kiln
    await opts.before;
    await rename(tmp, out);
    return { ...res, entries: written.size, sha256, ms };
  } catch (err) {
    follow?.abort();
    await w.abort();
    await rm(tmp, { force: true });
    throw err;
  }
}
