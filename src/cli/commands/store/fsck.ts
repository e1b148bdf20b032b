import type { Command } from "commander";
import { ExitCode } from "../../../core/codes.js";
import { fsckStore } from "../../../store/fsck.js";
import { openStore } from "../../context.js";
import { action, type Invocation } from "../../main.js";

export function registerStoreFsck(store: Command): void {
  const cmd = store
    .command("fsck")
    .description("re-hash every blob and check every image's references; exit 3 if anything is wrong")
    .option("--repair", "remove corrupt blobs and the images that need them (they rebuild on the next build)");
  cmd.action(
    action(cmd, async (inv: Invocation, opts: { repair?: boolean }) => {
      const s = await openStore(inv.globals);
      const r = await fsckStore(s, { repair: !!opts.repair });
      const lines = r.problems.map((p) => `${p.code}: ${p.message}`);
      lines.push(`${r.blobs} blobs and ${r.images} images checked: ${r.problems.length ? `${r.problems.length} problems${opts.repair ? " (repaired)" : " (run kiln store fsck --repair)"}` : "no problems"}`);
      if (r.temps) lines.push(`${r.temps} temp files from interrupted runs (harmless; kiln store gc removes them)`);
      return { data: r, text: lines.join("\n"), exit: r.problems.length && !opts.repair ? ExitCode.Environment : ExitCode.Ok };
    }),
  );
}
