import type { Command } from "commander";
import { KilnError } from "../../../core/errors.js";
import { gcStore } from "../../../store/gc.js";
import { openStore } from "../../context.js";
import { action, type Invocation } from "../../main.js";
import { bytes } from "../../output.js";

export function registerStoreGc(store: Command): void {
  const cmd = store
    .command("gc")
    .description("remove blobs no image uses, temp files left by interrupted runs, and (with --older-than) images not used for a while")
    .option("--older-than <days>", "also drop images whose last use is more than this many days ago")
    .option("-n, --dry-run", "say what would be removed, remove nothing");
  cmd.action(
    action(cmd, async (inv: Invocation, opts: { olderThan?: string; dryRun?: boolean }) => {
      const days = opts.olderThan === undefined ? undefined : Number(opts.olderThan);
      if (days !== undefined && !(days >= 0)) throw new KilnError("E_USAGE", `--older-than takes a number of days, not '${opts.olderThan}'`);
      const s = await openStore(inv.globals);
      const r = await gcStore(s, { olderThanDays: days, dryRun: !!opts.dryRun });
      const verb = opts.dryRun ? "would remove" : "removed";
      return { data: r, text: `${verb} ${r.refs.length} images, ${r.blobs} blobs (${bytes(r.bytes)}), ${r.temps} temp files` };
    }),
  );
}
