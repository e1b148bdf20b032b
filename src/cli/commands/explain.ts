import type { Command } from "commander";
import { KilnError } from "../../core/errors.js";
import { describeChange, diffRecords } from "../../graph/explain.js";
import { resolveTargets } from "../../graph/graph.js";
import { makePlan } from "../../graph/plan.js";
import { openContext } from "../context.js";
import { action, type Invocation } from "../main.js";

export function registerExplain(program: Command): void {
  const cmd = program
    .command("explain")
    .description("say which inputs of a target changed since its last build, field by field")
    .argument("<target>", "package name or pkg/NAME")
    .option("--inputs", "also list every input of the target's key");
  cmd.action(
    action(cmd, async (inv: Invocation, name: string, opts: { inputs?: boolean }) => {
      const ctx = await openContext(inv.globals, inv.bus);
      const [id] = resolveTargets(ctx.graph, [name]);
      const plan = await makePlan(ctx.project, ctx.graph, ctx.store, { arch: ctx.arch, outDir: ctx.outDir, records: ctx.records, roots: [id!] });
      const node = plan.nodes.get(id!)!;
      const last = await ctx.records.get(id!);
      if (!last) {
        throw new KilnError("E_NOT_BUILT", `${id} has not been built for ${ctx.arch} in this project yet`, { hint: `its key would be ${node.key}; run kiln build ${id}` });
      }
      const changes = diffRecords(last, node.record);
      const lines = [`${id} (${ctx.arch})`, `  key now: ${node.key}${node.cached ? " (in the store)" : ""}`];
      if (!changes.length) lines.push("  no input changed since the last build");
      else {
        lines.push(`  ${changes.length} input${changes.length > 1 ? "s" : ""} changed since the last build:`);
        for (const c of changes) lines.push(`    ${describeChange(c)}`);
      }
      if (opts.inputs) {
        lines.push("  inputs:");
        for (const [f, d] of Object.entries(node.record.files)) lines.push(`    file ${f} ${d}`);
        for (const [n, k] of Object.entries(node.record.deps)) lines.push(`    dep ${n} ${k}`);
        for (const [u, s] of Object.entries(node.record.sources)) lines.push(`    source ${u} sha256:${s}`);
        for (const [t, v] of Object.entries(node.record.tools)) lines.push(`    tool ${t}: ${v}`);
      }
      return { data: { target: id, arch: ctx.arch, key: node.key, cached: node.cached, changes, record: opts.inputs ? node.record : undefined }, text: lines.join("\n") };
    }),
  );
}
