import type { Command } from "commander";
import { resolveTargets } from "../../graph/graph.js";
import { makePlan } from "../../graph/plan.js";
import { openContext } from "../context.js";
import { action, type Invocation } from "../main.js";
import { table } from "../output.js";
import { splitKnobWords } from "../../variant/knobs.js";

export function registerPlan(program: Command): void {
  const cmd = program
    .command("plan")
    .description("show what `kiln build` would do and why, without building anything")
    .argument("[targets...]", "package names or pkg/NAME (default: all)");
  cmd.action(
    action(cmd, async (inv: Invocation, args: string[]) => {
      const { targets: names, knobs } = splitKnobWords(args);
      if (knobs.ZARCH) inv.globals.arch = knobs.ZARCH;
      const ctx = await openContext(inv.globals, inv.bus);
      const plan = await makePlan(ctx.project, ctx.graph, ctx.store, { arch: ctx.arch, outDir: ctx.outDir, records: ctx.records, roots: names.length ? resolveTargets(ctx.graph, names) : [] });
      const rows = plan.order.map((id) => {
        const n = plan.nodes.get(id)!;
        return { target: id, action: n.cached ? "cached" : "build", ref: n.ref, key: n.key, reason: n.reason, deps: n.target.deps };
      });
      const toBuild = rows.filter((r) => r.action === "build").length;
      const text = [
        table([["TARGET", "ACTION", "REASON"], ...rows.map((r) => [r.target, r.action, r.action === "cached" ? r.ref : r.reason])]),
        "",
        `${rows.length} targets for ${ctx.arch}: ${toBuild} to build, ${rows.length - toBuild} cached`,
      ].join("\n");
      return { data: { arch: ctx.arch, targets: rows }, text };
    }),
  );
}
