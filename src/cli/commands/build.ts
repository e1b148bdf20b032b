import type { Command } from "commander";
import { runPlan, type TargetResult } from "../../build/scheduler.js";
import { relative, resolve } from "node:path";
import { buildProduct } from "../../pygos/product.js";
import { selectedProduct } from "../../pygos/select.js";
import { buildDisks, type DiskRequest } from "../../formats/targets.js";
import { formatLocation, KilnError } from "../../core/errors.js";
import { resolveTargets } from "../../graph/graph.js";
import { makePlan } from "../../graph/plan.js";
import { defaultVersionSoon, resolveVariant, splitKnobWords, type Variant } from "../../variant/knobs.js";
import { openContext } from "../context.js";
import { renderTimings, Timings } from "../../report/timings.js";
import { action, type Invocation } from "../main.js";
import { bytes, type CommandResult } from "../output.js";

/**
 * EVE's target words → what to make: rootfs, rootfs-<hv>, rootfs.tar,
 * rootfs.img, config.img, live, live-<format>, installer, installer-raw,
 * installer-iso. Anything else is a package.
 */
export function imageTarget(word: string): { req: DiskRequest; hv?: string } | undefined {
  const formats = ["raw", "qcow2", "vdi", "parallels", "vhdx", "gcp"];
  switch (word) {
    case "rootfs.tar":
    case "rootfstar":
      return { req: {} };
    case "rootfs":
    case "rootfs.img":
      return { req: { rootfsImg: true } };
    case "config":
    case "config.img":
      return { req: { configImg: true } };
    case "live":
    case "live.img":
      return { req: { live: ["qcow2"] } };
    case "installer":
    case "installer-raw":
    case "installer.raw":
      return { req: { installer: true } };
    case "installer-iso":
    case "installer.iso":
      return { req: { iso: true } };
  }
  const live = /^live[-.]([a-z0-9]+)$/.exec(word);
  if (live) {
    if (!formats.includes(live[1]!)) throw new KilnError("E_USAGE", `unknown live format '${live[1]}'`, { hint: `one of: ${formats.map((f) => `live-${f}`).join(", ")}` });
    return { req: { live: [live[1]!] } };
  }
  const m = /^rootfs-([a-z0-9_]+)$/.exec(word);
  if (m) return { req: { rootfsImg: true }, hv: m[1] };
  return undefined;
}

export interface BuildFlags {
  /** --profile: images.profiles (release, dev, …) */
  profile?: string;
  /** --timings: print where the time went, and emit a `timings` event */
  timings?: boolean;
}

export async function buildTargets(inv: Invocation, words: string[], sets: string[] = [], flags: BuildFlags = {}): Promise<CommandResult> {
  const timings = flags.timings ? new Timings(inv.bus) : undefined;
  const { targets, knobs } = splitKnobWords(words, sets);
  if (knobs.ZARCH) inv.globals.arch = knobs.ZARCH;
  const images = targets.map((t) => ({ word: t, image: imageTarget(t) }));
  // ROOTFS_VERSION's default (git describe) asked now, answered while the project loads
  const version = images.some((i) => i.image) && !knobs.ROOTFS_VERSION ? defaultVersionSoon(resolve(inv.globals.dir ?? ".")) : undefined;
  const ctx = await openContext(inv.globals, inv.bus);
  timings?.mark("load project");
  // every image target's variant first: a bad combination is refused before any work, packages included
  const rootfsVersion = version ? await version : undefined;
  const variants = images.map(({ image }) =>
    image ? resolveVariant(ctx.project, { ...knobs, ...(rootfsVersion ? { ROOTFS_VERSION: rootfsVersion } : {}), ZARCH: ctx.arch, ...(image.hv ? { HV: image.hv } : {}) }) : undefined,
  );
  const pkgNames = images.filter((i) => !i.image).map((i) => i.word);
  const roots = pkgNames.length ? resolveTargets(ctx.graph, pkgNames) : [];
  const results: TargetResult[] = [];
  if (roots.length || !images.some((i) => i.image)) {
    const plan = await makePlan(ctx.project, ctx.graph, ctx.store, { arch: ctx.arch, outDir: ctx.outDir, records: ctx.records, roots });
    timings?.mark("plan");
    results.push(...(await runPlan(plan, ctx)));
    await ctx.store.touchRefs(results.filter((r) => r.status === "cached").map((r) => r.ref));
    timings?.mark("packages");
  }
  const failed = results.filter((r) => r.status === "failed");
  if (failed.length) throw buildFailed(failed, results.length);
  const outputs: { variant: Variant; name: string; path: string; id: string; size: number; cached: boolean }[] = [];
  for (const [i, { image }] of images.entries()) {
    const variant = variants[i];
    if (!image || !variant) continue;
    const made = await buildDisks(ctx, variant, { ...image.req, ...(flags.profile ? { profile: flags.profile } : {}) });
    for (const [name, a] of Object.entries(made)) outputs.push({ variant, name, path: a.path, id: a.id, size: a.size, cached: a.cached });
  }
  if (images.some((i) => i.image)) timings?.mark("images");
  const report = timings?.finish();
  if (report) inv.bus.emit({ type: "timings", ...report });
  const data = { arch: ctx.arch, targets: results.map(summarize), outputs, ...(report ? { timings: report } : {}) };
  const listing = outputs.map((o) => `${o.name.padEnd(22)} ${relative(process.cwd(), o.path) || o.path}  ${bytes(o.size)}${o.cached ? " (unchanged)" : ""}`).join("\n");
  const text = [listing, report ? renderTimings(report) : ""].filter(Boolean).join("\n");
  return { data, text: text || undefined };
}

/** `kiln build --product NAME` (the global option, or KILN_PRODUCT): a Pygos product, in its build root (docs/pygos.md). */
async function buildPygosProduct(inv: Invocation, words: string[], flags: BuildFlags = {}): Promise<CommandResult> {
  const { targets } = splitKnobWords(words);
  const parsed = targets.map((t) => ({ t, image: imageTarget(t) }));
  const images = parsed.flatMap((w) => (w.image ? [w.image] : []));
  const ctx = await openContext(inv.globals, inv.bus, { planProduct: false });
  const made = await buildProduct(ctx, parsed.filter((w) => !w.image).map((w) => w.t));
  if (!images.length) return made;
  // The product's root file system into the same disks as an image spec's (live.raw, live.qcow2 …), in its build root.
  const data = made.data as { outputs: { name: string; path: string; size: number; cached: boolean; key: string; format?: string }[] };
  const out = (name: string) => {
    const o = data.outputs.find((x) => x.name === name);
    if (!o) throw new KilnError("E_USAGE", `the product has no ${name} to make disks from`, { hint: "build the whole product: kiln build --product NAME live (no package names)" });
    return { path: o.path, id: o.key, size: o.size, cached: o.cached };
  };
  const product = ctx.project.pygos!.product!;
  const img = data.outputs.find((x) => x.name === "rootfs.img");
  const variant: Variant = { arch: ctx.arch, hv: "none", platform: product, format: img?.format ?? "squashfs", version: "product", name: product };
  const lines = [made.text];
  for (const i of images) {
    if (i.req.installer || i.req.iso) throw new KilnError("E_USAGE", "a Pygos product has no installer image spec", { hint: "build live, live-raw, live-qcow2 … for a product" });
    const disks = await buildDisks(ctx, variant, { ...i.req, ...(flags.profile ? { profile: flags.profile } : {}), from: { tar: out("rootfs.tar"), img: out("rootfs.img"), dir: ctx.outDir } });
    for (const [name, a] of Object.entries(disks)) if (!data.outputs.some((o) => o.name === name)) {
      data.outputs.push({ name, path: a.path, size: a.size, cached: a.cached, key: a.id });
      lines.push(`${name.padEnd(16)} ${a.path}  ${a.size} bytes${a.cached ? " (unchanged)" : ""}`);
    }
  }
  return { data, text: lines.filter(Boolean).join("\n") };
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
    .argument("[targets...]", "packages (NAME or pkg/NAME); rootfs, rootfs-<hv>, rootfs.tar, config.img, live, live-<raw|qcow2|vdi|parallels|vhdx|gcp>, installer, installer-iso; KNOB=VALUE words set knobs as with make")
    .option("-s, --set <KNOB=VALUE>", "set a knob: ZARCH, HV, PLATFORM, FLAVOR, ROOTFS_FORMAT, ROOTFS_VERSION (repeatable)", collect, [])
    .option("--cache-from <registry>", "look each package's key up in this registry and pull instead of building (repeatable; kiln.yml registry.cacheFrom)", collect, [])
    .option("--cache-to <registry>", "push the packages of the build to this registry (kiln.yml registry.cacheTo)")
    .option("--profile <name>", "build profile: release (default) or dev (fast squashfs compression, lz4), or one of kiln.yml images.profiles (KILN_PROFILE)")
    .option("--timings", "print where the time went: start-up, load, plan, every stage built or reused (the --json events carry the same figures)")
    .addHelpText(
      "after",
      "\nExamples:\n  kiln build                       build every package\n  kiln build pkg/hello             build hello and what it depends on\n  kiln build rootfs                out/<arch>/<hv>-<platform>/rootfs.tar and rootfs.img\n  kiln build live                  … and config.img, live.raw, live.qcow2 (live.img → it)\n  kiln build live-gcp installer-iso\n  kiln build rootfs-xen ZARCH=arm64\n  kiln build rootfs --set PLATFORM=rt\n  kiln build live --profile dev --timings   fast compression; where the time went\n  kiln build --product router      a Pygos product: its packages, rootfs.tar, rootfs.img (and RELEASEPKG) in router/ (docs/pygos.md)",
    );
  cmd.action(action(cmd, async (inv: Invocation, args: string[], opts: { set: string[]; profile?: string; timings?: boolean }) =>
    selectedProduct() ? buildPygosProduct(inv, args, { profile: opts.profile }) : buildTargets(inv, args, opts.set, { profile: opts.profile, timings: opts.timings }),
  ));
}

