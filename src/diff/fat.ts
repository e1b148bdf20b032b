import { open, readdir, lstat } from "node:fs/promises";
import { join } from "node:path";
import { run } from "../core/exec.js";
import { makeReadable, readFrom, type Scratch } from "./scratch.js";
import type { Entry, Tree } from "./types.js";

/** Volume id and label from the boot sector (FAT12/16 at 39/43, FAT32 at 67/71). */
async function bootSector(img: string, offset: number): Promise<Record<string, string>> {
  const fh = await open(img, "r");
  try {
    const b = Buffer.alloc(512);
    await fh.read(b, 0, 512, offset);
    const fat32 = b.readUInt16LE(22) === 0;
    const o = fat32 ? 64 : 36;
    const meta: Record<string, string> = { type: fat32 ? "FAT32" : b.toString("latin1", 54, 62).trim() || "FAT" };
    if (b[o + 2] === 0x29) {
      meta["volume id"] = b.readUInt32LE(o + 3).toString(16).padStart(8, "0");
      meta.label = b.toString("latin1", o + 7, o + 18).trim();
    }
    return meta;
  } finally {
    await fh.close();
  }
}

/** A FAT file system (at `offset` in `img`), copied out with `mcopy -s`; FAT has no modes or owners. */
export async function openFat(img: string, offset: number, scratch: Scratch): Promise<Tree> {
  const dest = await scratch.dir("fat");
  const env = { ...Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined)), MTOOLS_SKIP_CHECK: "1" };
  const image = offset ? `${img}@@${offset}` : img;
  const { stdout } = await run("mdir", ["-i", image, "-b", "-/", "::/"], { env }).catch(() => ({ stdout: "" }));
  if (stdout.trim()) await run("mcopy", ["-s", "-n", "-i", image, "::/*", `${dest}/`], { env });
  await makeReadable(dest);
  const entries = new Map<string, Entry>();
  const walk = async (rel: string): Promise<void> => {
    for (const d of await readdir(join(dest, rel), { withFileTypes: true })) {
      const p = `${rel}/${d.name}`;
      if (d.isDirectory()) {
        entries.set(p, { type: "dir", size: 0 });
        await walk(p);
      } else entries.set(p, { type: "file", size: (await lstat(join(dest, p))).size });
    }
  };
  await walk("");
  return { kind: "fat", entries, read: readFrom(dest), meta: await bootSector(img, offset) };
}
