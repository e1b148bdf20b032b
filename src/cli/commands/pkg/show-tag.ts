import type { Command } from "commander";
import { resolveTargets } from "../../../graph/graph.js";
import { makePlan } from "../../../graph/plan.js";
import { openContext } from "../../context.js";
import { action, type Invocation } from "../../main.js";

export function registerPkgShowTag(pkg: Command): void {
  const cmd = pkg
    .command("show-tag")
    .description("print a package's image tag: its content key, covering its files, recipe and (unlike linuxkit) its dependencies; no git needed")
    .argument("<packages...>", "pkg/NAME or NAME")
    .option("--key", "print the full 64-digit key instead of the image reference");
  cmd.action(
    action(cmd, async (inv: Invocation, names: string[], opts: { key?: boolean }) => {
      const ctx = await openContext(inv.globals, inv.bus);
      const ids = resolveTargets(ctx.graph, names);
      const plan = await makePlan(ctx.project, ctx.graph, ctx.store, { arch: ctx.arch, outDir: ctx.outDir, records: ctx.records, roots: ids });
      const rows = ids.map((id) => ({ target: id, ref: plan.nodes.get(id)!.ref, key: plan.nodes.get(id)!.key }));
      return { data: rows.length === 1 ? rows[0] : rows, text: rows.map((r) => (opts.key ? r.key : r.ref)).join("\n") };
    }),
  );
}
