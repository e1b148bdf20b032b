import type { Command } from "commander";
import { lockProject } from "../../debian/locker.js";
import { checkPygosUpdates } from "../../pygos/check.js";
import { splitKnobWords } from "../../variant/knobs.js";
import { openContext } from "../context.js";
import { action, type Invocation } from "../main.js";
import { table } from "../output.js";
import { renderLock } from "./lock.js";

export function registerCheckUpdate(program: Command): void {
  const cmd = program
    .command("check-update")
    .description("show newer upstream versions: each Pygos build script's check_update, and what `kiln lock --update` would change in kiln.lock (without writing it)")
    .argument("[packages...]", "packages of the project (default: all)")
    .addHelpText("after", "\nPygos trees: the scripts see the TOOLCHAIN of the product given with the global --product NAME (default: $KILN_PRODUCT, or the only product).");
  cmd.action(
    action(cmd, async (inv: Invocation, args: string[]) => {
      const { targets, knobs } = splitKnobWords(args);
      if (knobs.ZARCH) inv.globals.arch = knobs.ZARCH;
      const ctx = await openContext(inv.globals, inv.bus, { planProduct: false });
      const pkgs = [...ctx.project.packages.values()];
      const texts: string[] = [];
      const data: Record<string, unknown> = {};
      if (pkgs.some((p) => p.recipe.kind === "pygos")) {
        const checks = await checkPygosUpdates(ctx.project, targets);
        data.pygos = checks;
        texts.push(table([["PACKAGE", "VERSION", "NEWEST", "STATUS"], ...checks.map((c) => [c.package, c.version, c.newest || "-", c.message ? `${c.status}: ${c.message}` : c.status])]));
        const updates = checks.filter((c) => c.status === "update").length;
        texts.push(updates ? `${updates} package${updates > 1 ? "s have" : " has"} a newer version upstream` : "every build script is at the newest version its check_update reports");
      }
      const debianNames = targets.filter((t) => ctx.project.packages.get(t)?.recipe.kind !== "pygos");
      if (pkgs.some((p) => p.recipe.kind === "debian") && (!targets.length || debianNames.length)) {
        const res = await lockProject(ctx.project, ctx.store, {
          update: true,
          dryRun: true,
          names: debianNames,
          archs: inv.globals.arch ? [ctx.arch] : undefined,
          offline: ctx.offline,
          log: (line) => inv.bus.emit(line.startsWith("warning: ") ? { type: "warn", message: line.slice(9) } : { type: "debug", message: line }),
        });
        const updates = res.changes.filter((c) => c.action !== "unchanged");
        Object.assign(data, { updates: updates.length, mirror: res.lock.mirror, suite: res.lock.suite, changes: res.changes });
        texts.push(renderLock(res, { written: "", unchanged: updates.length ? `${updates.length} entries would change; run kiln lock --update` : "kiln.lock is current" }));
      }
      return { data, text: texts.join("\n") || "no packages with an upstream to check" };
    }),
  );
}
