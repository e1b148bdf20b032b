import { createReadStream, createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import type tar from "tar-stream";
import { hashingTap } from "../core/hash.js";
import { type Descriptor, MT, type Store } from "../store/layout.js";

/** tar-stream's typings require every header field; it fills the ones we leave out. */
type Hdr = Partial<tar.Header> & { name: string };

/** One entry of a layer. `path` is in-image and relative ("etc/motd"), never with "..". */
export interface LayerEntry {
  path: string;
  type: "file" | "directory" | "symlink" | "link" | "character-device" | "block-device" | "fifo";
  devmajor?: number;
  devminor?: number;
  mode: number;
  uid: number;
  gid: number;
  /** For files: where the bytes come from. */
  source?: string | Buffer;
  size?: number;
  /** For symlinks: the target; for hard links: the in-image path linked to. */
  linkname?: string;
}

/** Normalize an in-image path to the relative form tar uses. */
export function tarPath(p: string): string {
  return p.replace(/^\/+/, "").replace(/\/+$/, "");
}

/**
 * Sort entries, add any missing parent directories (root-owned, 0755), and
 * drop duplicates (the later entry wins, as when layers stack).
 */
export function normalizeEntries(entries: LayerEntry[]): LayerEntry[] {
  const byPath = new Map<string, LayerEntry>();
  for (const e of entries) byPath.set(tarPath(e.path), { ...e, path: tarPath(e.path) });
  for (const p of [...byPath.keys()]) {
    const parts = p.split("/");
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join("/");
      if (!byPath.has(parent)) byPath.set(parent, { path: parent, type: "directory", mode: 0o755, uid: 0, gid: 0 });
    }
  }
  byPath.delete("");
  return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * Stream entries into an uncompressed tar layer in the store. Every header is
 * fixed by the caller's data plus `mtime`: no host user names, no atime/ctime,
 * sorted order, so equal inputs give equal bytes.
 */
export async function writeLayer(store: Store, entries: LayerEntry[], mtime: number): Promise<Descriptor> {
  const sorted = normalizeEntries(entries);
  // Loaded here, not at start-up: a no-op build never writes a layer.
  const { default: tarStream } = await import("tar-stream");
  const pack = tarStream.pack();
  const tap = hashingTap();
  const tmp = store.tempPath("layer");
  const done = pipeline(pack, tap.stream, createWriteStream(tmp, { flags: "wx", mode: 0o444 }));
  const date = new Date(mtime * 1000);
  try {
    for (const e of sorted) {
      const header: Hdr = { name: e.type === "directory" ? `${e.path}/` : e.path, mode: e.mode, uid: e.uid, gid: e.gid, uname: "", gname: "", mtime: date, type: e.type };
      if (e.type === "file") {
        const src = e.source ?? Buffer.alloc(0);
        if (Buffer.isBuffer(src)) {
          await entry(pack, { ...header, size: src.length }, src);
        } else {
          await fileEntry(pack, { ...header, size: e.size }, src);
        }
      } else if (e.type === "symlink" || e.type === "link") {
        await entry(pack, { ...header, linkname: e.type === "link" ? tarPath(e.linkname ?? "") : e.linkname });
      } else {
        await entry(pack, { ...header, devmajor: e.devmajor ?? 0, devminor: e.devminor ?? 0 });
      }
    }
    pack.finalize();
    await done;
  } catch (err) {
    pack.destroy(err as Error);
    await done.catch(() => undefined);
    const { rm } = await import("node:fs/promises");
    await rm(tmp, { force: true });
    throw err;
  }
  return store.ingestFile(tmp, tap.digest(), tap.size(), MT.layer);
}

function entry(pack: tar.Pack, header: Hdr, body?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const cb = (err?: Error | null) => (err ? reject(err) : resolve());
    if (body) pack.entry(header as tar.Header, body, cb);
    else pack.entry(header as tar.Header, cb);
  });
}

async function fileEntry(pack: tar.Pack, header: Hdr, path: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const sink = pack.entry(header as tar.Header, (err) => (err ? reject(err) : resolve()));
    createReadStream(path).on("error", reject).pipe(sink);
  });
}
