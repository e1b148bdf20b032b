import { open } from "node:fs/promises";
import { indexTar, type TarIndexEntry } from "../compose/tarindex.js";
import type { Entry, Tree } from "./types.js";
import { normPath } from "./paths.js";

const TYPES: Record<TarIndexEntry["type"], Entry["type"]> = {
  file: "file",
  link: "file",
  symlink: "symlink",
  "character-device": "char",
  "block-device": "block",
  directory: "dir",
  fifo: "fifo",
};

/**
 * A tar read by its headers only (src/compose/tarindex.ts); content is read by
 * ranged reads from the tar, nothing is extracted. Hard links are compared as
 * the files they point at; a later entry for the same path wins, as on unpack.
 */
export async function openTar(path: string): Promise<Tree> {
  const index = await indexTar(path);
  const entries = new Map<string, Entry>();
  const data = new Map<string, { offset: number; size: number }>();
  for (const e of index) {
    const p = normPath(e.name);
    if (p === "/") continue;
    const entry: Entry = { type: TYPES[e.type], mode: e.mode, uid: e.uid, gid: e.gid, size: e.type === "file" ? e.size : 0 };
    if (e.type === "symlink") entry.link = e.linkname;
    if (e.type === "character-device" || e.type === "block-device") entry.dev = [e.devmajor, e.devminor];
    if (e.xattrs) entry.xattrs = e.xattrs;
    if (e.type === "link") {
      const target = data.get(normPath(e.linkname));
      entry.size = target?.size ?? 0;
      data.set(p, target ?? { offset: 0, size: 0 });
    } else if (e.type === "file") data.set(p, { offset: e.offset, size: e.size });
    entries.set(p, entry);
  }
  return {
    kind: "tar",
    entries,
    meta: {},
    async read(p) {
      const d = data.get(p);
      if (!d || !d.size) return Buffer.alloc(0);
      const fh = await open(path, "r");
      try {
        const buf = Buffer.alloc(d.size);
        await fh.read(buf, 0, d.size, d.offset);
        return buf;
      } finally {
        await fh.close();
      }
    },
  };
}
