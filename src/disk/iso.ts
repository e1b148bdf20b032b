import { copyFile, mkdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { tempPathFor } from "../core/atomic.js";
import { run } from "../core/exec.js";
import { makeEsp } from "./esp.js";
import { MiB } from "./layout.js";

function isoDate(epoch: number): string {
  // YYYYMMDDhhmmsscc, UTC
  return new Date(epoch * 1000).toISOString().replace(/[-:T]/g, "").slice(0, 14) + "00";
}

/**
 * installer.iso: the installer's ESP as the El Torito EFI boot image
 * (efiboot.img), and the installer root file system and config.img as files.
 * xorriso gets fixed volume dates and a volume id derived from the content, so
 * two builds are identical.
 */
export async function makeIso(out: string, o: { tar: string; rootfsImg: string; configImg: string; workDir: string; epoch: number; volumeId: string }): Promise<void> {
  const root = join(o.workDir, "iso-root");
  await rm(root, { recursive: true, force: true });
  await mkdir(root, { recursive: true });
  const grubCfg = "# written by kiln: the installer ISO\nset timeout=0\nsearch --no-floppy --set=root --file /installer.img\nif [ -f /EFI/BOOT/grub.cfg ]; then configfile /EFI/BOOT/grub.cfg; fi\n";
  await makeEsp(o.tar, join(root, "efiboot.img"), { workDir: o.workDir, grubCfg: (c) => (c.files.includes("EFI/BOOT/kernel") ? `set timeout=0\nlinux /EFI/BOOT/kernel ${c.cmdline ?? ""}\n${c.files.includes("EFI/BOOT/initrd.img") ? "initrd /EFI/BOOT/initrd.img\n" : ""}boot\n` : grubCfg), sizeBytes: 16 * MiB, epoch: o.epoch });
  await copyFile(o.rootfsImg, join(root, "installer.img"));
  await copyFile(o.configImg, join(root, "config.img"));
  const tmp = tempPathFor(out);
  const date = isoDate(o.epoch);
  try {
    await run("xorriso", [
      "-as", "mkisofs",
      "-o", tmp,
      "-V", "KILN_INSTALLER",
      "-r", // rationalized Rock Ridge: owners 0, modes a+r, nothing from the host umask
      "-e", "efiboot.img",
      "-no-emul-boot",
      "--modification-date=" + date,
      root,
      "--",
      "-volume_date", "all_file_dates", `=${o.epoch}`,
      "-volume_date", "c", date,
      "-volume_date", "m", date,
      "-volume_date", "x", "default",
      "-volume_date", "f", "default",
      "-volume_date", "uuid", date,
    ], { env: { ...Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined)), SOURCE_DATE_EPOCH: String(o.epoch) } });
    await rename(tmp, out);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
