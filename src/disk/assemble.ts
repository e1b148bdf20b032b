import { closeSync, openSync, readSync, writeSync } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { tempPathFor } from "../core/atomic.js";
import { sha256Hex } from "../core/hash.js";
import { derivedGuid, gptWrites, SECTOR } from "./gpt.js";
import type { Partition } from "./layout.js";

export interface DiskContent {
  /** The image written at the partition's start (absent: left empty). */
  file?: string;
  /** The content's identity (a digest, or the key it was made from), for the derived GUIDs. */
  id?: string;
}

const CHUNK = 4 << 20;
const ZERO = Buffer.alloc(CHUNK);

/**
 * Copy a partition image to its offset with large synchronous reads and
 * writes (a loop of async 1 MiB copies was as slow as dd); all-zero chunks are
 * skipped so they stay holes (Buffer.compare is a memcmp).
 */
function copyInto(outFd: number, file: string, start: number, limit: number, name: string): void {
  const buf = Buffer.allocUnsafe(CHUNK);
  const fd = openSync(file, "r");
  try {
    for (let pos = 0; ; ) {
      const n = readSync(fd, buf, 0, CHUNK, pos);
      if (n <= 0) break;
      if (pos + n > limit) throw new Error(`content of ${name} is larger than the partition`);
      if (Buffer.compare(buf.subarray(0, n), ZERO.subarray(0, n)) !== 0) {
        for (let off = 0; off < n; ) off += writeSync(outFd, buf, off, n - off, start + pos + off);
      }
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Write a GPT disk image: a sparse file of the final size, each partition's
 * image copied to its offset (all-zero chunks skipped, so they stay holes),
 * then the protective MBR and both GPT copies. Disk and partition GUIDs are
 * derived from the layout and the contents unless the layout gives them.
 * Written under a temp name and renamed.
 */
export async function writeDisk(out: string, parts: Partition[], diskSize: number, contents: Record<string, DiskContent>): Promise<{ guid: string; parts: (Partition & { guid: string })[] }> {
  const seed = sha256Hex(JSON.stringify(parts.map((p) => [p.name, p.type, p.start, p.size, String(p.attributes), contents[p.name]?.id ?? ""])));
  const placed = parts.map((p) => ({ ...p, guid: p.guid ?? derivedGuid(sha256Hex(`${seed}:part:${p.name}`)) }));
  const diskGuid = derivedGuid(sha256Hex(`${seed}:disk`));
  const tmp = tempPathFor(out);
  const fh = await open(tmp, "wx");
  try {
    await fh.truncate(diskSize);
    for (const p of placed) {
      const c = contents[p.name];
      if (c?.file) copyInto(fh.fd, c.file, p.start, p.size, p.name);
    }
    for (const w of gptWrites({
      sectors: BigInt(diskSize / SECTOR),
      guid: diskGuid,
      partitions: placed.map((p) => ({
        type: p.type,
        guid: p.guid,
        name: p.label,
        firstLba: BigInt(p.start / SECTOR),
        lastLba: BigInt((p.start + p.size) / SECTOR - 1),
        attributes: p.attributes,
      })),
    })) {
      await fh.write(w.data, 0, w.data.length, w.offset);
    }
    await fh.close();
    await rename(tmp, out);
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
  return { guid: diskGuid, parts: placed };
}
