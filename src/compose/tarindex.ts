import { open } from "node:fs/promises";

/**
 * A header-only reader for tar files: it lists each entry with the byte range
 * of its data and skips the data by seeking. Hand-written because tar-stream
 * (like every streaming tar parser) must read through all data to reach the
 * next header; composing a rootfs only needs the headers first, then copies
 * the winning entries' bytes straight from the layer files.
 * Understands ustar, pax extended headers (path, linkpath, size, uid, gid,
 * mtime) and GNU long names (L/K).
 */
export interface TarIndexEntry {
  name: string;
  type: "file" | "link" | "symlink" | "character-device" | "block-device" | "directory" | "fifo";
  mode: number;
  uid: number;
  gid: number;
  size: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** Offset of the data in the tar file. */
  offset: number;
  /** Extended attributes from pax SCHILY.xattr.* records. */
  xattrs?: Record<string, string>;
}

const TYPES: Record<string, TarIndexEntry["type"]> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "1": "link",
  "2": "symlink",
  "3": "character-device",
  "4": "block-device",
  "5": "directory",
  "6": "fifo",
};

function str(buf: Buffer, off: number, len: number): string {
  const end = buf.indexOf(0, off);
  return buf.toString("utf8", off, end === -1 || end > off + len ? off + len : end);
}

function num(buf: Buffer, off: number, len: number): number {
  if (buf[off]! & 0x80) {
    // base-256 (GNU) for big values
    let v = 0;
    for (let i = off + 1; i < off + len; i++) v = v * 256 + buf[i]!;
    return v;
  }
  const s = str(buf, off, len).trim();
  return s ? parseInt(s, 8) : 0;
}

function parsePax(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  const buf = Buffer.from(text, "utf8");
  while (i < buf.length) {
    const sp = buf.indexOf(0x20, i);
    if (sp === -1) break;
    const len = parseInt(buf.toString("utf8", i, sp), 10);
    if (!len) break;
    const rec = buf.toString("utf8", sp + 1, i + len - 1);
    const eq = rec.indexOf("=");
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

/** Index the tar at `path`, or the tar stored inside it at [start, start+length) (a kernel.tar inside a layer). */
export async function indexTar(path: string, start = 0, length?: number): Promise<TarIndexEntry[]> {
  const fh = await open(path, "r");
  try {
    const size = length === undefined ? (await fh.stat()).size : start + length;
    const out: TarIndexEntry[] = [];
    const header = Buffer.alloc(512);
    let pos = start;
    let pax: Record<string, string> = {};
    let longName: string | undefined;
    let longLink: string | undefined;
    while (pos + 512 <= size) {
      await fh.read(header, 0, 512, pos);
      if (header.every((b) => b === 0)) break;
      const typeflag = String.fromCharCode(header[156]!);
      const entrySize = num(header, 124, 12);
      const dataOff = pos + 512;
      const next = dataOff + Math.ceil(entrySize / 512) * 512;
      if (typeflag === "x" || typeflag === "g" || typeflag === "L" || typeflag === "K") {
        const body = Buffer.alloc(entrySize);
        await fh.read(body, 0, entrySize, dataOff);
        if (typeflag === "x") pax = { ...pax, ...parsePax(body.toString("utf8")) };
        else if (typeflag === "L") longName = str(body, 0, entrySize);
        else if (typeflag === "K") longLink = str(body, 0, entrySize);
        pos = next;
        continue;
      }
      const prefix = header.toString("utf8", 257, 263).startsWith("ustar") ? str(header, 345, 155) : "";
      const base = str(header, 0, 100);
      const name = pax.path ?? longName ?? (prefix ? `${prefix}/${base}` : base);
      const type = TYPES[typeflag];
      if (type) {
        const xattrs = Object.fromEntries(Object.entries(pax).filter(([k]) => k.startsWith("SCHILY.xattr.")).map(([k, v]) => [k.slice(13), v]));
        out.push({
          name,
          type,
          mode: num(header, 100, 8) & 0o7777,
          uid: pax.uid !== undefined ? Number(pax.uid) : num(header, 108, 8),
          gid: pax.gid !== undefined ? Number(pax.gid) : num(header, 116, 8),
          size: pax.size !== undefined ? Number(pax.size) : type === "file" ? entrySize : 0,
          linkname: pax.linkpath ?? longLink ?? str(header, 157, 100),
          devmajor: num(header, 329, 8),
          devminor: num(header, 337, 8),
          offset: dataOff,
          xattrs: Object.keys(xattrs).length ? xattrs : undefined,
        });
      }
      const realSize = pax.size !== undefined ? Number(pax.size) : entrySize;
      pos = dataOff + Math.ceil(realSize / 512) * 512;
      pax = {};
      longName = undefined;
      longLink = undefined;
    }
    return out;
  } finally {
    await fh.close();
  }
}
