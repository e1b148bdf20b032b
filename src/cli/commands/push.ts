import type { Command } from "commander";
import { runPlan } from "../../build/scheduler.js";
import { KilnError } from "../../core/errors.js";
import { resolveTargets } from "../../graph/graph.js";
import { makePlan } from "../../graph/plan.js";
import { Remote } from "../../oci/remote.js";
import { eachLimit } from "../../oci/transfer.js";
import { openContext } from "../context.js";
import { action, type Invocation } from "../main.js";
import { type CommandResult, table } from "../output.js";
import { collect } from "./build.js";

export interface PushOptions {
  registry?: string;
  tag: string[];
  insecure?: boolean;
}

/**
 * Build what is missing, then push packages to a registry: each to
 * `<namespace>/<name>` (or the store's `<org>/<name>` when the registry names
 * no namespace), tagged with its key tag and any --tag. Blobs the registry has
 * are not sent again; blobs in a --cache-from repository of the same registry
 * are mounted instead of uploaded.
 */
export async function pushPackages(inv: Invocation, names: string[], opts: PushOptions): Promise<CommandResult> {
  const ctx = await openContext(inv.globals, inv.bus);
  const registry = opts.registry ?? process.env.KILN_REGISTRY ?? ctx.project.config.registry?.url;
  if (!registry) throw new KilnError("E_USAGE", "no registry to push to", { hint: "pass --registry HOST[:PORT]/NAMESPACE, set KILN_REGISTRY, or set registry.url in kiln.yml" });
  if (ctx.offline) throw new KilnError("E_USAGE", "--offline: nothing can be pushed");
  const roots = names.length ? resolveTargets(ctx.graph, names) : [];
  const plan = await makePlan(ctx.project, ctx.graph, ctx.store, { arch: ctx.arch, outDir: ctx.outDir, records: ctx.records, roots });
  const results = await runPlan(plan, ctx);
  const failed = results.filter((r) => r.status === "failed" || r.status === "skipped");
  if (failed.length) throw new KilnError("E_BUILD_FAILED", `${failed.length} of ${results.length} targets failed; nothing was pushed`, { details: failed.map((r) => `${r.id}: ${r.error?.code} ${r.error?.message}`) });
  const remote = Remote.open(registry, { insecure: opts.insecure ?? ctx.project.config.registry?.insecure, bus: inv.bus });
  const push = roots.length ? results.filter((r) => roots.includes(r.id)) : results;
  const rows: { target: string; repository: string; tags: string[]; digest: string; uploaded: number; existing: number; mounted: number; upToDate: boolean }[] = [];
  await eachLimit(push, 4, async (r) => {
    const mountFrom = (ctx.remote?.from ?? []).filter((f) => f.spec.host === remote.spec.host).map((f) => f.locate(r.ref).repository);
    const s = await remote.pushPackage(ctx.store, r.ref, r.manifest!, opts.tag, mountFrom);
    rows.push({ target: r.id, repository: `${remote.spec.host}/${s.repository}`, tags: s.tags, digest: s.digest, uploaded: s.uploaded, existing: s.existing, mounted: s.mounted, upToDate: s.upToDate });
    inv.bus.emit({ type: "info", message: `pushed ${r.id} → ${remote.spec.host}/${s.repository}:${s.tags.join(",")}${s.upToDate ? " (up to date)" : ` (${s.uploaded} uploaded, ${s.mounted} mounted, ${s.existing} there)`}` });
  });
  rows.sort((a, b) => a.target.localeCompare(b.target));
  const text = table([["TARGET", "PUSHED TO", "UPLOADED"], ...rows.map((r) => [r.target, `${r.repository}:${r.tags[0]}`, r.upToDate ? "up to date" : `${r.uploaded} blobs, ${r.mounted} mounted, ${r.existing} there`])]);
  return { data: { registry, arch: ctx.arch, pushed: rows }, text };
}

export function pushCommandOptions(cmd: Command): Command {
  return cmd
    .option("--registry <registry>", "where to push: HOST[:PORT][/NAMESPACE], e.g. localhost:5001/lfedge (default: $KILN_REGISTRY, kiln.yml registry.url)")
    .option("-t, --tag <tag>", "also tag each image with this (repeatable; the key tag is always pushed)", collect, [])
    .option("--insecure", "plain HTTP (default only for localhost and 127.0.0.1)");
}

export function registerPush(program: Command): void {
  const cmd = pushCommandOptions(program.command("push").description("build (if needed) and push every package of the project for the arch to a registry").argument("[targets...]", "packages (default: all)"));
  cmd.action(action(cmd, async (inv: Invocation, names: string[], opts: PushOptions) => pushPackages(inv, names, opts)));
}
