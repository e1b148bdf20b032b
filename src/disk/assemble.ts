import { createReadStream } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { tempPathFor } from "../core/atomic.js";
import { sha256Hex } from "../core/hash.js";
import { derivedGuid, gptWrites, SECTOR } from "./gpt.js";
import type { Partition } from "./layout.js";

export interface DiskContent {
  /** The image written at the partition's start (absent: left empty). */
  file?: string;
  /** sha256 of the file, for the derived GUIDs. */
  sha256?: string;
}

const CHUNK = 1 << 20;

function allZero(buf: Buffer, n: number): boolean {
  for (let i = 0; i < n; i++) if (buf[i] !== 0) return false;
  return true;
}

/**
 * Write a GPT disk image: a sparse file of the final size, each partition's
 * image copied to its offset (all-zero chunks skipped, so they stay holes),
 * then the protective MBR and both GPT copies. Disk and partition GUIDs are
 * derived from the layout and the contents unless the layout gives them.
 * Written under a temp name and renamed.
 */
export async function writeDisk(out: string, parts: Partition[], diskSize: number, contents: Record<string, DiskContent>): Promise<{ guid: string; parts: (Partition & { guid: string })[] }> {
  const seed = sha256Hex(JSON.stringify(parts.map((p) => [p.name, p.type, p.start, p.size, String(p.attributes), contents[p.name]?.sha256 ?? ""])));
  const placed = parts.map((p) => ({ ...p, guid: p.guid ?? derivedGuid(sha256Hex(`${seed}:part:${p.name}`)) }));
  const diskGuid = derivedGuid(sha256Hex(`${seed}:disk`));
  const tmp = tempPathFor(out);
  const fh = await open(tmp, "wx");
  try {
    await fh.truncate(diskSize);
    for (const p of placed) {
      const c = contents[p.name];
      if (!c?.file) continue;
      let pos = p.start;
      for await (const chunk of createReadStream(c.file, { highWaterMark: CHUNK }) as AsyncIterable<Buffer>) {
        if (pos + chunk.length > p.start + p.size) throw new Error(`content of ${p.name} is larger than the partition`);
        if (!allZero(chunk, chunk.length)) await fh.write(chunk, 0, chunk.length, pos);
        pos += chunk.length;
      }
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
