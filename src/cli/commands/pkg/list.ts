import type { Command } from "commander";
import { makePlan } from "../../../graph/plan.js";
import { openContext } from "../../context.js";
import { action, type Invocation } from "../../main.js";
import { table } from "../../output.js";

export function registerPkgList(pkg: Command): void {
  const cmd = pkg.command("list").description("list the project's packages with their kind, dependencies and tag");
  cmd.action(
    action(cmd, async (inv: Invocation) => {
      const ctx = await openContext(inv.globals, inv.bus);
      const plan = await makePlan(ctx.project, ctx.graph, ctx.store, { arch: ctx.arch, outDir: ctx.outDir, records: ctx.records });
      const rows = plan.order.map((id) => {
        const n = plan.nodes.get(id)!;
        const r = n.target.pkg.recipe;
        return { name: n.target.pkg.name, kind: r.kind, version: r.version, depends: r.depends ?? [], ref: n.ref, built: n.cached };
      });
      const text = table([["NAME", "KIND", "BUILT", "DEPENDS", "TAG"], ...rows.map((r) => [r.name, r.kind, r.built ? "yes" : "no", r.depends.join(",") || "-", r.ref])]);
      return { data: rows, text };
    }),
  );
}
