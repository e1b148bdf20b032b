import type { Command } from "commander";
import { runPlan, type TargetResult } from "../../build/scheduler.js";
import { buildImageTar, type ComposedImage } from "../../compose/target.js";
import { formatLocation, KilnError } from "../../core/errors.js";
import { resolveTargets } from "../../graph/graph.js";
import { makePlan } from "../../graph/plan.js";
import { type Knobs, resolveVariant, splitKnobWords } from "../../variant/knobs.js";
import type { ImageKind } from "../../variant/template.js";
import { openContext } from "../context.js";
import { action, type Invocation } from "../main.js";
import type { CommandResult } from "../output.js";

/** EVE's target words: rootfs, rootfs-<hv>, rootfs.tar, installer; the rest are packages. */
function imageTarget(word: string): { kind: ImageKind; hv?: string } | undefined {
  if (word === "rootfs" || word === "rootfs.tar" || word === "rootfstar") return { kind: "rootfs" };
  if (word === "installer" || word === "installer.tar") return { kind: "installer" };
  const m = /^rootfs-([a-z0-9_-]+)$/.exec(word);
  if (m) return { kind: "rootfs", hv: m[1] };
  if (/^(live|installer)(-[a-z0-9]+)?$|\.(raw|qcow2|img|iso)$/.test(word)) {
    throw new KilnError("E_USAGE", `'${word}' (disk images) is not built by this version of kiln yet`, { hint: "build 'rootfs' for rootfs.tar; disk images come with the image stage" });
  }
  return undefined;
}

export async function buildTargets(inv: Invocation, words: string[], sets: string[] = []): Promise<CommandResult> {
  const { targets, knobs } = splitKnobWords(words, sets);
  if (knobs.ZARCH) inv.globals.arch = knobs.ZARCH;
  const images = targets.map((t) => ({ word: t, image: imageTarget(t) }));
  const ctx = await openContext(inv.globals, inv.bus);
  const pkgNames = images.filter((i) => !i.image).map((i) => i.word);
  const roots = pkgNames.length ? resolveTargets(ctx.graph, pkgNames) : [];
  const results: TargetResult[] = [];
  if (roots.length || !images.some((i) => i.image)) {
    const plan = await makePlan(ctx.project, ctx.graph, ctx.store, { arch: ctx.arch, outDir: ctx.outDir, records: ctx.records, roots });
    results.push(...(await runPlan(plan, ctx)));
    await ctx.store.touchRefs(results.filter((r) => r.status === "cached").map((r) => r.ref));
  }
  const failed = results.filter((r) => r.status === "failed");
  if (failed.length) throw buildFailed(failed, results.length);
  const composed: ComposedImage[] = [];
  for (const { image } of images) {
    if (!image) continue;
    const k: Knobs = { ...knobs, ZARCH: ctx.arch, ...(image.hv ? { HV: image.hv } : {}) };
    composed.push(await buildImageTar(ctx, resolveVariant(ctx.project, k), image.kind));
  }
  const data = {
    arch: ctx.arch,
    targets: results.map(summarize),
    images: composed.map((c) => ({ kind: c.kind, variant: c.variant, yml: c.yml, tar: c.tar, sha256: c.sha256, size: c.size, cached: c.cached })),
  };
  const text = composed.map((c) => `${c.kind}: ${c.tar} (${c.variant.arch} ${c.variant.name}, sha256 ${c.sha256.slice(0, 16)}…${c.cached ? ", cached" : ""})`).join("\n");
  return { data, text: text || undefined };
}

function buildFailed(failed: TargetResult[], total: number): KilnError {
  return new KilnError("E_BUILD_FAILED", `${failed.length} of ${total} targets failed`, {
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

function summarize(r: TargetResult) {
  return { target: r.id, ref: r.ref, key: r.key, status: r.status, digest: r.manifest?.digest, ms: r.ms, error: r.error?.code };
}

export function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

export function registerBuild(program: Command): void {
  const cmd = program
    .command("build")
    .description("build targets (default: all packages); only what changed is rebuilt")
    .argument("[targets...]", "packages (NAME or pkg/NAME), rootfs, rootfs-<hv>, installer; KNOB=VALUE words set knobs as with make")
    .option("-s, --set <KNOB=VALUE>", "set a knob: ZARCH, HV, PLATFORM, FLAVOR, ROOTFS_FORMAT, ROOTFS_VERSION (repeatable)", collect, [])
    .addHelpText(
      "after",
      "\nExamples:\n  kiln build                       build every package\n  kiln build pkg/hello             build hello and what it depends on\n  kiln build rootfs                compose out/<arch>/<hv>-<platform>/rootfs.tar\n  kiln build rootfs-xen ZARCH=arm64\n  kiln build rootfs --set PLATFORM=rt",
    );
  cmd.action(action(cmd, async (inv: Invocation, args: string[], opts: { set: string[] }) => buildTargets(inv, args, opts.set)));
}

