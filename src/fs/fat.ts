import { cp, mkdir, readdir, rename, rm, stat, utimes } from "node:fs/promises";
import { join } from "node:path";
import { tempPathFor } from "../core/atomic.js";
import { run } from "../core/exec.js";

/** Set every mtime/atime under dir to the epoch (mcopy -m carries mtimes into the FAT). */
export async function clampTimes(dir: string, epoch: number): Promise<void> {
  for (const name of await readdir(dir)) {
    const p = join(dir, name);
    if ((await stat(p)).isDirectory()) await clampTimes(p, epoch);
    await utimes(p, epoch, epoch);
  }
  await utimes(dir, epoch, epoch);
}

export interface FatOptions {
  label: string;
  /** Size in KiB. */
  sizeKiB: number;
  /** 8 hex digits, derived from the content by the caller. */
  volumeId: string;
  epoch: number;
  /** FAT32 (an ESP of 33 MiB or more); smaller images get mkfs.vfat's choice (FAT12/16). */
  fat32?: boolean;
}

/**
 * A FAT image of a folder, without mounting: mkfs.vfat --invariant with a
 * volume id derived from the content, then mcopy -s -m of the folder whose
 * times were set to the epoch. Written under a temp name and renamed.
 */
export async function makeFat(dir: string, out: string, o: FatOptions): Promise<void> {
  const tmp = tempPathFor(out);
  const env = { ...Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined)), MTOOLS_SKIP_CHECK: "1", SOURCE_DATE_EPOCH: String(o.epoch), TZ: "UTC" };
  try {
    await run("mkfs.vfat", ["--invariant", ...(o.fat32 ? ["-F", "32"] : []), "-i", o.volumeId, "-n", o.label, "-C", tmp, String(o.sizeKiB)], { env });
    await clampTimes(dir, o.epoch);
    const names = (await readdir(dir)).sort();
    if (names.length) await run("mcopy", ["-s", "-m", "-p", "-Q", "-i", tmp, ...names.map((n) => join(dir, n)), "::/"], { env });
    await rename(tmp, out);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Copy defaults then the project's folder over them (the project wins). */
export async function overlay(dirs: string[], into: string): Promise<void> {
  await rm(into, { recursive: true, force: true });
  await mkdir(into, { recursive: true });
  for (const d of dirs) {
    if (await stat(d).then((s) => s.isDirectory(), () => false)) await cp(d, into, { recursive: true, force: true, dereference: true });
  }
}
