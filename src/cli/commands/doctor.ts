import type { Command } from "commander";
import { ExitCode } from "../../core/codes.js";
import { native } from "../../core/native.js";
import { probeVersion, TOOL_PACKAGES, whichTool } from "../../core/tools.js";
import { action, type Invocation } from "../main.js";
import { table } from "../output.js";

/** Tools by what needs them; later stages add their rows here. */
const NEEDED: { tool: string; for: string; required: boolean; package?: string }[] = [
  { tool: "bash", for: "script packages", required: true },
  { tool: "tar", for: "unpacking source archives", required: true },
  { tool: "bwrap", for: "isolating build scripts (no network, read-only host)", required: false },
  { tool: "mksquashfs", for: "rootfs.img (squashfs, the default)", required: false },
  { tool: "mkfs.ext4", for: "rootfs.img (ROOTFS_FORMAT=ext4)", required: false },
  { tool: "debugfs", for: "rootfs.img (ext4: fixed inode times)", required: false },
  { tool: "fakeroot", for: "rootfs.img (ext4, erofs: owners without root)", required: false },
  { tool: "mkfs.erofs", for: "rootfs.img (ROOTFS_FORMAT=erofs)", required: false },
  { tool: "mkfs.vfat", for: "config.img and the EFI partition", required: false },
  { tool: "mcopy", for: "config.img and the EFI partition", required: false },
  { tool: "qemu-img", for: "live.qcow2, .vdi, .parallels, .vhdx", required: false },
  { tool: "xorriso", for: "installer.iso", required: false },
  { tool: "xz", for: "debian packages: unpacking .debs (data.tar.xz)", required: false, package: "xz-utils" },
  { tool: "zstd", for: "debian packages: unpacking .debs (data.tar.zst)", required: false },
  { tool: "gpgv", for: "debian packages: checking InRelease signatures (kiln lock)", required: false },
  { tool: "skopeo", for: "tests: reading the store with a standard OCI tool", required: false },
  { tool: "umoci", for: "tests: unpacking store images with a standard OCI tool", required: false },
];

export function registerDoctor(program: Command): void {
  const cmd = program.command("doctor").description("check the host tools kiln uses and print the command that installs what is missing");
  cmd.action(
    action(cmd, async (_inv: Invocation) => {
      const rows = await Promise.all(
        NEEDED.map(async (n) => {
          const path = await whichTool(n.tool);
          return { ...n, package: n.package ?? TOOL_PACKAGES[n.tool] ?? n.tool, path, version: path ? await probeVersion(path) : undefined };
        }),
      );
      const missing = rows.filter((r) => !r.path);
      const sudo = process.getuid?.() === 0 ? "" : "sudo ";
      const lines = [table([["TOOL", "STATUS", "USED FOR"], ...rows.map((r) => [r.tool, r.path ? `ok (${r.version?.slice(0, 40)})` : r.required ? "MISSING" : "missing", r.for])])];
      const copy = native()
        ? "native module: ok (composing writes file bytes on a copy thread, large files in the kernel with copy_file_range)"
        : process.env.KILN_NATIVE === "0"
          ? "native module: off (KILN_NATIVE=0): images are composed through a buffer"
          : "native module: not built: images are composed through a buffer, more slowly (`npm run build` compiles it; it needs a C compiler)";
      lines.push("", copy);
      if (missing.length) lines.push("", `install with: ${sudo}apt-get install -y ${[...new Set(missing.map((m) => m.package))].join(" ")}`);
      return { data: { tools: rows, native: !!native() }, text: lines.join("\n"), exit: missing.some((m) => m.required) ? ExitCode.Environment : ExitCode.Ok };
    }),
  );
}
