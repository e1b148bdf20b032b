import type { Command } from "commander";
import { lockProject } from "../../debian/locker.js";
import { splitKnobWords } from "../../variant/knobs.js";
import { openContext } from "../context.js";
import { action, type Invocation } from "../main.js";
import { renderLock } from "./lock.js";

export function registerCheckUpdate(program: Command): void {
  const cmd = program
    .command("check-update")
    .description("show what `kiln lock --update` would change in kiln.lock, without writing it")
    .argument("[packages...]", "debian packages of the project (default: all)");
  cmd.action(
    action(cmd, async (inv: Invocation, args: string[]) => {
      const { targets, knobs } = splitKnobWords(args);
      if (knobs.ZARCH) inv.globals.arch = knobs.ZARCH;
      const ctx = await openContext(inv.globals, inv.bus);
      const res = await lockProject(ctx.project, ctx.store, {
        update: true,
        dryRun: true,
        names: targets,
        archs: inv.globals.arch ? [ctx.arch] : undefined,
        offline: ctx.offline,
        log: (line) => inv.bus.emit(line.startsWith("warning: ") ? { type: "warn", message: line.slice(9) } : { type: "debug", message: line }),
      });
      const updates = res.changes.filter((c) => c.action !== "unchanged");
      return {
        data: { updates: updates.length, mirror: res.lock.mirror, suite: res.lock.suite, changes: res.changes },
        text: renderLock(res, { written: "", unchanged: updates.length ? `${updates.length} entries would change; run kiln lock --update` : "kiln.lock is current" }),
      };
    }),
  );
}
