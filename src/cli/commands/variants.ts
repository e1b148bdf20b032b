import type { Command } from "commander";
import { resolve } from "node:path";
import { loadProject } from "../../config/project.js";
import { allVariants } from "../../variant/knobs.js";
import { action, type Invocation } from "../main.js";
import { table } from "../output.js";

export function registerVariants(program: Command): void {
  const cmd = program.command("variants").description("list the variant matrix: every allowed ZARCH × HV × PLATFORM (× FLAVOR) and the ROOTFS_FORMATs it allows (the default first)");
  cmd.action(
    action(cmd, async (inv: Invocation) => {
      const project = await loadProject(resolve(inv.globals.dir ?? "."));
      const vs = allVariants(project).map((v) => ({ arch: v.arch, hv: v.hv, platform: v.platform, flavor: v.flavor, defaultFormat: v.defaultFormat, formats: v.formats, name: v.name }));
      // the allowed formats, the one a build takes without ROOTFS_FORMAT first and marked; none marked: ROOTFS_FORMAT must be given
      const formats = (v: (typeof vs)[number]) =>
        v.defaultFormat ? [`${v.defaultFormat} (default)`, ...v.formats.filter((f) => f !== v.defaultFormat)].join(", ") : `${v.formats.join(", ")} (set ROOTFS_FORMAT)`;
      const text = [table([["ZARCH", "HV", "PLATFORM", "FLAVOR", "ROOTFS_FORMAT", "OUTPUT"], ...vs.map((v) => [v.arch, v.hv, v.platform, v.flavor ?? "-", formats(v), `out/${v.arch}/${v.name}/`])]), `${vs.length} variants`].join("\n");
      return { data: vs, text };
    }),
  );
}
