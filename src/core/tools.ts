import { access, constants, stat } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { KilnError } from "./errors.js";

/** Which Debian package provides each host tool, for the hint in E_TOOL_MISSING and `kiln doctor`. */
export const TOOL_PACKAGES: Record<string, string> = {
  bash: "bash",
  bwrap: "bubblewrap",
  tar: "tar",
  skopeo: "skopeo",
  umoci: "umoci",
  mksquashfs: "squashfs-tools",
  sqfstar: "squashfs-tools",
  unsquashfs: "squashfs-tools",
  "mkfs.ext4": "e2fsprogs",
  debugfs: "e2fsprogs",
  e2fsck: "e2fsprogs",
  fakeroot: "fakeroot",
  "mkfs.erofs": "erofs-utils",
  "fsck.fat": "dosfstools",
  "mkfs.vfat": "dosfstools",
  mcopy: "mtools",
  sfdisk: "fdisk",
  sgdisk: "gdisk",
  "qemu-img": "qemu-utils",
  "qemu-system-x86_64": "qemu-system-x86",
  xorriso: "xorriso",
  "grub-mkimage": "grub-common",
};

const found = new Map<string, string>();

export function aptHint(tools: string[]): string {
  const pkgs = [...new Set(tools.map((t) => TOOL_PACKAGES[t] ?? t))].sort();
  const sudo = process.getuid?.() === 0 ? "" : "sudo ";
  return `install it with: ${sudo}apt-get install -y ${pkgs.join(" ")}`;
}

/** Look a tool up on PATH without spawning anything. Returns null when absent. */
export async function whichTool(tool: string): Promise<string | null> {
  if (tool.includes("/")) return tool;
  const cached = found.get(tool);
  if (cached) return cached;
  const dirs = (process.env.PATH ?? "/usr/bin:/bin").split(delimiter).concat(["/usr/sbin", "/sbin"]);
  for (const dir of dirs) {
    const p = join(dir, tool);
    try {
      await access(p, constants.X_OK);
      if ((await stat(p)).isFile()) {
        found.set(tool, p);
        return p;
      }
    } catch {
      // not here
    }
  }
  return null;
}

export async function findTool(tool: string): Promise<string> {
  const p = await whichTool(tool);
  if (!p) {
    throw new KilnError("E_TOOL_MISSING", `the host tool '${tool}' is not installed`, { hint: aptHint([tool]) });
  }
  return p;
}

/** Ask a tool for its version (first line of `--version`); the answer enters cache keys. */
export async function probeVersion(path: string): Promise<string> {
  const { execa } = await import("execa");
  const res = await execa(path, ["--version"], { reject: false, encoding: "utf8", timeout: 10_000 });
  const text = `${res.stdout}\n${res.stderr}`.trim();
  const line = text.split("\n").find((l) => /\d/.test(l)) ?? text.split("\n")[0] ?? "";
  return line.trim();
}
