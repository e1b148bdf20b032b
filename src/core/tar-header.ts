import { Buffer } from "node:buffer";

/**
 * Tar headers (ustar, pax extended headers, GNU long names L/K): the parsing
 * shared by the file indexer (compose/tarindex.ts) and the stream walker
 * (core/tar-walk.ts).
 */
export interface TarEntry {
  name: string;
  type: "file" | "link" | "symlink" | "character-device" | "block-device" | "directory" | "fifo";
  mode: number;
  uid: number;
  gid: number;
  size: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** Offset of the data in the tar (file or stream). */
  offset: number;
  /** Extended attributes from pax SCHILY.xattr.* records. */
  xattrs?: Record<string, string>;
}

export const TYPES: Record<string, TarEntry["type"]> = {
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

export function str(buf: Buffer, off: number, len: number): string {
  const end = buf.indexOf(0, off);
  return buf.toString("utf8", off, end === -1 || end > off + len ? off + len : end);
}

export function num(buf: Buffer, off: number, len: number): number {
  if (buf[off]! & 0x80) {
    // base-256 (GNU) for big values
    let v = 0;
    for (let i = off + 1; i < off + len; i++) v = v * 256 + buf[i]!;
    return v;
  }
  const s = str(buf, off, len).trim();
  return s ? parseInt(s, 8) : 0;
}

export function parsePax(text: string): Record<string, string> {
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

/** Extension records before an entry: pax (x), GNU long name (L) and long link (K). */
export interface TarExtensions {
  pax: Record<string, string>;
  longName?: string;
  longLink?: string;
}

/** The size of an entry's data in the tar (header field; pax size for x/L/K records themselves is the field). */
export function headerSize(header: Buffer): number {
  return num(header, 124, 12);
}

export function typeflagOf(header: Buffer): string {
  return String.fromCharCode(header[156]!);
}

/** Fold an extension record's body into `ext`; false when the header is not one. */
export function readExtension(typeflag: string, body: Buffer, ext: TarExtensions): boolean {
  if (typeflag === "x") ext.pax = { ...ext.pax, ...parsePax(body.toString("utf8")) };
  else if (typeflag === "L") ext.longName = str(body, 0, body.length);
  else if (typeflag === "K") ext.longLink = str(body, 0, body.length);
  else return typeflag === "g";
  return true;
}

export const isExtension = (typeflag: string) => typeflag === "x" || typeflag === "g" || typeflag === "L" || typeflag === "K";

/** The entry a header describes (undefined for types kiln ignores), and the size of its data in the tar. */
export function headerEntry(header: Buffer, ext: TarExtensions, dataOff: number): { entry?: TarEntry; dataSize: number } {
  const typeflag = typeflagOf(header);
  const entrySize = headerSize(header);
  const pax = ext.pax;
  const prefix = header.toString("utf8", 257, 263).startsWith("ustar") ? str(header, 345, 155) : "";
  const base = str(header, 0, 100);
  const name = pax.path ?? ext.longName ?? (prefix ? `${prefix}/${base}` : base);
  const type = TYPES[typeflag];
  const dataSize = pax.size !== undefined ? Number(pax.size) : entrySize;
  if (!type) return { dataSize };
  const xattrs = Object.fromEntries(Object.entries(pax).filter(([k]) => k.startsWith("SCHILY.xattr.")).map(([k, v]) => [k.slice(13), v]));
  return {
    dataSize,
    entry: {
      name,
      type,
      mode: num(header, 100, 8) & 0o7777,
      uid: pax.uid !== undefined ? Number(pax.uid) : num(header, 108, 8),
      gid: pax.gid !== undefined ? Number(pax.gid) : num(header, 116, 8),
      size: pax.size !== undefined ? Number(pax.size) : type === "file" ? entrySize : 0,
      linkname: pax.linkpath ?? ext.longLink ?? str(header, 157, 100),
      devmajor: num(header, 329, 8),
      devminor: num(header, 337, 8),
      offset: dataOff,
      xattrs: Object.keys(xattrs).length ? xattrs : undefined,
    },
  };
}
