import { mkdir, open, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { sha256Hex } from "../core/hash.js";
import { indexTar } from "../compose/tarindex.js";
import { makeFat } from "../fs/fat.js";
import { MiB } from "./layout.js";

/**
 * The EFI system partition: every file under EFI/BOOT/ in the root file
 * system (the boot loader a package put there, as EVE's mkimage-raw-efi takes
 * them), plus grub.cfg (the rootfs's own EFI/BOOT/grub.cfg wins over `grubCfg`).
 */
export interface EspContents {
  /** EFI/BOOT/* files found in the rootfs. */
  files: string[];
  /** boot/cmdline of the rootfs (the image spec's kernel.cmdline). */
  cmdline?: string;
}

/**
 * The identity of what an ESP is made from: the rootfs's EFI/BOOT files and
 * boot/cmdline, by content. Keying the ESP on this (not on the whole rootfs)
 * keeps it cached when only a package unrelated to booting changed. Also
 * says whether the rootfs has boot/kernel, which grub boots.
 */
export async function espInputs(rootfsTar: string): Promise<{ digest: string; kernel: boolean }> {
  const { createHash } = await import("node:crypto");
  const h = createHash("sha256");
  const fh = await open(rootfsTar, "r");
  let kernel = false;
  try {
    for (const e of await indexTar(rootfsTar)) {
      const name = e.name.replace(/^\.?\/+/, "");
      if (name === "boot/kernel") kernel = true;
      if (e.type !== "file" || !(/^EFI\/BOOT\/[^/]+$/i.test(name) || name === "boot/cmdline")) continue;
      const buf = Buffer.alloc(e.size);
      await fh.read(buf, 0, e.size, e.offset);
      h.update(`${name}\0${e.size}\0`).update(buf);
    }
  } finally {
    await fh.close();
  }
  return { digest: h.digest("hex"), kernel };
}

export async function makeEsp(rootfsTar: string, out: string, o: { workDir: string; grubCfg: (c: EspContents) => string; sizeBytes: number; epoch: number }): Promise<{ files: string[] }> {
  const stage = join(o.workDir, "esp");
  const { rm } = await import("node:fs/promises");
  await rm(stage, { recursive: true, force: true });
  await mkdir(join(stage, "EFI", "BOOT"), { recursive: true });
  const files: string[] = [];
  let cmdline: string | undefined;
  const fh = await open(rootfsTar, "r");
  try {
    for (const e of await indexTar(rootfsTar)) {
      const name = e.name.replace(/^\.?\/+/, "");
      if (name === "boot/cmdline" && e.type === "file") {
        const b = Buffer.alloc(e.size);
        await fh.read(b, 0, e.size, e.offset);
        cmdline = b.toString("utf8").trim();
      }
      if (e.type !== "file" || !/^EFI\/BOOT\/[^/]+$/i.test(name)) continue;
      const buf = Buffer.alloc(e.size);
      await fh.read(buf, 0, e.size, e.offset);
      const dest = join(stage, "EFI", "BOOT", name.split("/").pop()!);
      await mkdir(dirname(dest), { recursive: true });
      await writeFile(dest, buf);
      files.push(`EFI/BOOT/${name.split("/").pop()}`);
    }
  } finally {
    await fh.close();
  }
  let cfg = "";
  if (!files.some((f) => /^EFI\/BOOT\/grub\.cfg$/i.test(f))) {
    cfg = o.grubCfg({ files: [...files], cmdline });
    await writeFile(join(stage, "EFI", "BOOT", "grub.cfg"), cfg);
    files.push("EFI/BOOT/grub.cfg");
  }
  const volumeId = sha256Hex(`esp:${files.join()}:${cfg}`).slice(0, 8);
  await makeFat(stage, out, { label: "EFI", sizeKiB: Math.max(o.sizeBytes, MiB) / 1024, volumeId, epoch: o.epoch, fat32: o.sizeBytes >= 33 * MiB });
  return { files: files.sort() };
}
