import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type tar from "tar-stream";
import { tempPathFor } from "../core/atomic.js";
import type { Node, Tree } from "./tree.js";

export interface TarResult {
  sha256: string;
  size: number;
  entries: number;
}

type Hdr = Partial<tar.Header> & { name: string };

/**
 * Serialize a tree as a tar: entries sorted by path, parents before children,
 * every mtime = `mtime`, numeric owners only, no host data. Written under a
 * temp name and renamed, so a crash leaves no half tar at `out`. A hard link
 * whose target sorts after it (or is gone) is written as a copy, so every
 * reader can extract the archive in one pass.
 */
export async function writeTreeTar(tree: Tree, out: string, mtime: number): Promise<TarResult> {
  const { default: tarStream } = await import("tar-stream");
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
  const pack = tarStream.pack();
  const hash = createHash("sha256");
  let size = 0;
  const tmp = tempPathFor(out);
  const sink = pipeline(
    pack,
    new Transform({
      transform(chunk: Buffer, _e, cb) {
        hash.update(chunk);
        size += chunk.length;
        cb(null, chunk);
      },
    }),
    createWriteStream(tmp, { flags: "wx" }),
  );
  const date = new Date(mtime * 1000);
  const written = new Set<string>();
  try {
    for (const path of sorted) {
      let node: Node = tree.nodes.get(path)!;
      if (node.type === "link") {
        const target = node.linkname ?? "";
        if (!written.has(target) || tree.nodes.get(target)?.type !== "file") {
          const file = tree.resolveFile(target);
          if (!file) continue; // a link to nothing: dropped, as unpacking would fail on it
          node = { ...file, mode: node.mode, uid: node.uid, gid: node.gid };
        }
      }
      const h: Hdr = {
        name: node.type === "directory" ? `${path}/` : path,
        mode: node.mode,
        uid: node.uid,
        gid: node.gid,
        uname: "",
        gname: "",
        mtime: date,
        type: node.type,
      };
      if (node.type === "symlink") h.linkname = node.linkname;
      if (node.type === "link") h.linkname = node.linkname;
      if (node.type === "character-device" || node.type === "block-device") {
        h.devmajor = node.devmajor;
        h.devminor = node.devminor;
      }
      if (node.xattrs) h.pax = Object.fromEntries(Object.entries(node.xattrs).map(([k, v]) => [`SCHILY.xattr.${k}`, v]));
      if (node.type === "file") await fileEntry(pack, h, node);
      else await new Promise<void>((res, rej) => pack.entry(h as tar.Header, (err) => (err ? rej(err) : res())));
      written.add(path);
    }
    pack.finalize();
    await sink;
  } catch (err) {
    pack.destroy(err as Error);
    await sink.catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
  await rename(tmp, out);
  return { sha256: hash.digest("hex"), size, entries: written.size };
}

async function fileEntry(pack: tar.Pack, h: Hdr, node: Node): Promise<void> {
  const c = node.content;
  if (!c || "data" in c) {
    const data = c && "data" in c ? c.data : Buffer.alloc(0);
    await new Promise<void>((res, rej) => pack.entry({ ...h, size: data.length } as tar.Header, data, (err) => (err ? rej(err) : res())));
    return;
  }
  await new Promise<void>((res, rej) => {
    const entry = pack.entry({ ...h, size: c.size } as tar.Header, (err) => (err ? rej(err) : res()));
    if (c.size === 0) {
      entry.end(Buffer.alloc(0));
      return;
    }
    createReadStream(c.file, { start: c.offset, end: c.offset + c.size - 1, highWaterMark: 1 << 20 }).on("error", rej).pipe(entry);
  });
}
