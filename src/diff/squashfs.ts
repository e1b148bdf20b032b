import { open } from "node:fs/promises";
import { run } from "../core/exec.js";
import { parseLsMode } from "./modes.js";
import { normPath } from "./paths.js";
import { makeReadable, readFrom, type Scratch } from "./scratch.js";
import type { Entry, Tree } from "./types.js";

const COMPRESSION: Record<number, string> = { 1: "gzip", 2: "lzma", 3: "lzo", 4: "xz", 5: "lz4", 6: "zstd" };
const LINE = /^(\S{10})\s+(\d+)\/(\d+)\s+(?:(\d+),\s*(\d+)|(\d+))\s+\d{4}-\d\d-\d\d \d\d:\d\d (squashfs-root.*)$/;

/** Superblock facts: compression, block size, mkfs time, version. */
async function superblock(img: string, offset: number): Promise<Record<string, string>> {
  const fh = await open(img, "r");
  try {
    const b = Buffer.alloc(96);
    await fh.read(b, 0, 96, offset);
    return {
      compression: COMPRESSION[b.readUInt16LE(20)] ?? String(b.readUInt16LE(20)),
      "block size": String(b.readUInt32LE(12)),
      "mkfs time": new Date(b.readUInt32LE(8) * 1000).toISOString(),
      version: `${b.readUInt16LE(28)}.${b.readUInt16LE(30)}`,
    };
  } finally {
    await fh.close();
  }
}

/**
 * A squashfs (at `offset` in `img`): metadata from `unsquashfs -lln` (numeric
 * owners), contents of regular files extracted with `unsquashfs -d` (no root
 * needed: only regular files are extracted, owners are not applied).
 */
export async function openSquashfs(img: string, offset: number, scratch: Scratch): Promise<Tree> {
  const off = offset ? ["-o", String(offset)] : [];
  const { stdout } = await run("unsquashfs", ["-lln", ...off, img]);
  const entries = new Map<string, Entry>();
  for (const line of stdout.split("\n")) {
    const m = LINE.exec(line);
    if (!m) continue;
    const { type, mode } = parseLsMode(m[1]!);
    let name = m[7]!.slice("squashfs-root".length);
    const e: Entry = { type, mode, uid: Number(m[2]), gid: Number(m[3]), size: 0 };
    if (type === "symlink") {
      const i = name.indexOf(" -> ");
      e.link = name.slice(i + 4);
      name = name.slice(0, i);
    }
    if (m[4] !== undefined) e.dev = [Number(m[4]), Number(m[5])];
    else if (type === "file") e.size = Number(m[6]);
    const p = normPath(name);
    if (p !== "/") entries.set(p, e);
  }
  const dest = `${await scratch.dir("sq")}/root`;
  const files = [...entries].filter(([, e]) => e.type === "file").map(([p]) => p.slice(1));
  if (files.length) {
    const list = await scratch.file("sqlist", files.join("\n") + "\n");
    await run("unsquashfs", ["-n", "-q", "-no-xattrs", ...off, "-d", dest, "-ef", list, img]);
    await makeReadable(dest);
  }
  return { kind: "squashfs", entries, read: readFrom(dest), meta: await superblock(img, offset) };
}
