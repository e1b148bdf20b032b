import type { Command } from "commander";
import { runPlan, type TargetResult } from "../../build/scheduler.js";
import { formatLocation, KilnError } from "../../core/errors.js";
import { resolveTargets } from "../../graph/graph.js";
import { makePlan } from "../../graph/plan.js";
import { openContext } from "../context.js";
import { action, type Invocation } from "../main.js";
import type { CommandResult } from "../output.js";

/** Accept EVE's `make ZARCH=arm64 …` spelling as arguments: KNOB=VALUE pairs set knobs. */
export function splitKnobs(args: string[], inv: Invocation): string[] {
  const targets: string[] = [];
  for (const a of args) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(a);
    if (!m) targets.push(a);
    else if (m[1] === "ZARCH") inv.globals.arch = m[2];
    else throw new KilnError("E_USAGE", `unknown knob ${m[1]}`, { hint: "knobs known in this version: ZARCH" });
  }
  return targets;
}

export async function buildTargets(inv: Invocation, names: string[]): Promise<CommandResult> {
  const ctx = await openContext(inv.globals, inv.bus);
  const roots = names.length ? resolveTargets(ctx.graph, names) : [];
  const plan = await makePlan(ctx.project, ctx.graph, ctx.store, { arch: ctx.arch, outDir: ctx.outDir, roots });
  const results = await runPlan(plan, { ...ctx, outDir: ctx.outDir });
  await ctx.store.touchRefs(results.filter((r) => r.status === "cached").map((r) => r.ref));
  const failed = results.filter((r) => r.status === "failed");
  const data = { arch: ctx.arch, targets: results.map(summarize) };
  if (failed.length) {
    throw new KilnError("E_BUILD_FAILED", `${failed.length} of ${results.length} targets failed`, {
      details: failed.flatMap((r) => {
        const e = r.error!;
        return [
          `${r.id}: ${e.code} ${e.message}${e.location ? `  (${formatLocation(e.location)})` : ""}`,
          ...(e.command ? [`    command: ${e.command}`] : []),
          ...e.details.map((l) => `    ${l}`),
          ...(e.hint ? [`    hint: ${e.hint}`] : []),
        ];
      }),
    });
  }
  return { data };
}

function summarize(r: TargetResult) {
  return { target: r.id, ref: r.ref, key: r.key, status: r.status, digest: r.manifest?.digest, ms: r.ms, error: r.error?.code };
}

export function registerBuild(program: Command): void {
  const cmd = program
    .command("build")
    .description("build targets (default: all packages) into the store; only what changed is rebuilt")
    .argument("[targets...]", "package names or pkg/NAME; KNOB=VALUE sets a knob (ZARCH=arm64)")
    .addHelpText("after", "\nExamples:\n  kiln build                 build every package\n  kiln build pkg/hello       build hello and what it depends on\n  kiln build ZARCH=arm64     build for arm64");
  cmd.action(action(cmd, async (inv: Invocation, args: string[]) => buildTargets(inv, splitKnobs(args, inv))));
}
