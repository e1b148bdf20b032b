import type { Command } from "commander";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { cp, mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join, relative } from "node:path";
import { downloadDir } from "../../store/downloads.js";
import { KilnError } from "../../core/errors.js";
import { resolveVariant, splitKnobWords } from "../../variant/knobs.js";
import { openContext } from "../context.js";
import { action, type Invocation } from "../main.js";
import { collect, imageTarget } from "./build.js";
import { KILN_ROOT } from "../../core/paths.js";

/**
 * `kiln verify-reproducible [TARGET…] [KNOB=V…]`: build the targets twice, in
 * isolation, and compare every output by sha256. Each build gets its own copy
 * of the project (in differently named temp folders), an empty store and out
 * folder; they differ in time zone, umask, locale, parallelism and (where user
 * namespaces allow) host name. They share only the download cache, so a
 * project whose downloads are cached verifies offline. The first difference
 * is shown by kiln diff.
 */
const BIN = `${KILN_ROOT}bin/kiln.js`;

interface Side {
  label: "a" | "b";
  root: string;
  project: string;
  store: string;
  env: Record<string, string>;
  wrap: (argv: string[]) => string[];
}

interface Flags {
  set: string[];
  keep?: boolean;
}

/** Can this user get a user and UTS namespace (to build under another host name)? */
async function canUnshare(): Promise<boolean> {
  const { execa } = await import("execa");
  const r = await execa("unshare", ["-Ur", "--uts", "sh", "-c", "hostname kiln-verify-probe"], { reject: false });
  return r.exitCode === 0;
}

/** The project without what builds write into it (out/, images/out/) or version control. */
async function copyProject(from: string, to: string, outDir: string): Promise<void> {
  const skip = new Set([join(from, "out"), join(from, "images", "out"), join(from, ".git"), outDir]);
  await cp(from, to, { recursive: true, verbatimSymlinks: true, filter: (src) => !skip.has(src) });
}

async function sha256Of(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

/** Every regular file under the out folder's variant folders (outputs, SBOMs, provenance), but console logs and records. */
async function outputs(outDir: string): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for (const e of (await readdir(dir, { withFileTypes: true }).catch(() => [])).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(dir, e.name);
      const rel = relative(outDir, p);
      if (e.isDirectory() && !["log", ".kiln", ".work", "repo"].includes(e.name)) await walk(p);
      else if (e.isFile() && !/(^|\.)console\.log$/.test(e.name)) found.set(rel, await sha256Of(p));
    }
  };
  await walk(outDir);
  return found;
}

/** ref name → manifest digest, from a store's index. */
async function storeRefs(store: string): Promise<Map<string, string>> {
  const idx = JSON.parse(await readFile(join(store, "index.json"), "utf8").catch(() => "{}")) as { manifests?: { digest: string; annotations?: Record<string, string> }[] };
  return new Map((idx.manifests ?? []).flatMap((m) => (m.annotations?.["org.opencontainers.image.ref.name"] ? [[m.annotations["org.opencontainers.image.ref.name"], m.digest] as [string, string]] : [])));
}

async function build(side: Side, words: string[], onLine: (m: string) => void): Promise<void> {
  const { execa } = await import("execa");
  const argv = side.wrap([process.execPath, BIN, "-C", side.project, "build", ...words]);
  onLine(`build ${side.label}: ${argv.join(" ")}`);
  const r = await execa(argv[0]!, argv.slice(1), { reject: false, env: { ...process.env, ...side.env, NO_COLOR: "1", CI: "1" }, extendEnv: false });
  if (r.exitCode !== 0) {
    const tail = `${r.stderr}`.trim().split("\n").slice(-15);
    throw new KilnError("E_BUILD_FAILED", `build ${side.label} of verify-reproducible failed (exit ${r.exitCode})`, { details: tail, command: argv.join(" ") });
  }
}

/** The first difference, in kiln diff's words (for images it can read), else the two digests. */
async function explainFirst(a: string, b: string): Promise<string[]> {
  try {
    const { diffImages, differs } = await import("../../diff/index.js");
    const { renderDiff } = await import("../../diff/render.js");
    const res = await diffImages(a, b, { ignore: [] });
    if (differs(res)) return renderDiff(res).split("\n").slice(0, 20);
  } catch (err) {
    if (!(err instanceof KilnError && err.code === "E_DIFF_INPUT")) throw err;
  }
  return [];
}

/** The first layer two package images differ in, in kiln diff's words. */
async function explainLayers(storeA: string, a: string, storeB: string, b: string): Promise<string[]> {
  const blob = (store: string, d: string) => join(store, "blobs", ...d.split(":"));
  const layers = async (store: string, d: string) => (JSON.parse(await readFile(blob(store, d), "utf8")) as { layers: { digest: string }[] }).layers.map((l) => l.digest);
  const [la, lb] = await Promise.all([layers(storeA, a), layers(storeB, b)]);
  const i = la.findIndex((d, n) => d !== lb[n]);
  return i === -1 || !lb[i] ? [] : explainFirst(blob(storeA, la[i]!), blob(storeB, lb[i]!));
}

/** Outputs in the order the pipeline makes them, so the first difference is the earliest. */
const ORDER = ["rootfs.tar", "installer.tar", "rootfs.img", "rootfs_installer.img", "config.img", "efi.img", "installer-efi.img", "live.raw", "installer.raw", "installer.iso"];
const rank = (rel: string) => {
  const base = rel.split("/").pop()!;
  const i = ORDER.findIndex((n) => base === n || base.startsWith(`${n}.`));
  return i === -1 ? ORDER.length : i;
};

export function registerVerifyReproducible(program: Command): void {
  const cmd = program
    .command("verify-reproducible")
    .description("build twice in isolation (other folders, stores, time zone, umask, host name) and compare every output by sha256")
    .argument("[targets...]", "what to build, as for kiln build (default: live); KNOB=VALUE words set knobs")
    .option("-s, --set <KNOB=VALUE>", "set a knob (repeatable)", collect, [])
    .option("--keep", "keep both build trees (their paths are printed)")
    .addHelpText("after", "\nExit codes: 0 identical, 1 a difference (the first one is shown by kiln diff) or a failed build. See docs/reproducible.md.");
  cmd.action(
    action(cmd, async (inv: Invocation, words: string[]) => {
      const flags = cmd.opts<Flags>();
      const { targets, knobs } = splitKnobWords(words, flags.set);
      const ctx = await openContext(inv.globals, inv.bus);
      const wanted = targets.length ? targets : ["live"];
      const knobWords = Object.entries(knobs).map(([k, v]) => `${k}=${v}`);
      // Both builds get the version this project would get (a copy has no git history to describe).
      if (wanted.some((t) => imageTarget(t)) && !knobs.ROOTFS_VERSION) knobWords.push(`ROOTFS_VERSION=${resolveVariant(ctx.project, { ...knobs, ZARCH: ctx.arch }).version}`);
      const args = [...(inv.globals.arch ? ["--arch", inv.globals.arch] : []), ...(inv.globals.offline ? ["--offline"] : []), ...wanted, ...knobWords];
      const base = await mkdtemp(join(tmpdir(), "kiln-verify-"));
      const uts = await canUnshare();
      const jobs = String(Math.max(1, Math.floor(availableParallelism() / 2)));
      const shared = { KILN_DOWNLOADS: downloadDir(ctx.store) };
      const sides: Side[] = [
        { label: "a", root: join(base, "a"), project: join(base, "a", ctx.project.config.name), store: join(base, "a", "store"), env: { ...shared, TZ: "UTC", LANG: "C", LC_ALL: "C" }, wrap: (argv) => ["sh", "-c", 'umask 022 && exec "$@"', "sh", ...argv] },
        {
          label: "b",
          root: join(base, "b"),
          project: join(base, "b", "elsewhere", "deeper", `${ctx.project.config.name}-copy`),
          store: join(base, "b", "other-store"),
          env: { ...shared, TZ: "Pacific/Chatham", LANG: "C.UTF-8", LC_ALL: "C.UTF-8" },
          wrap: (argv) => {
            const inner = ["-j", jobs];
            const withJobs = [...argv.slice(0, 2), ...inner, ...argv.slice(2)];
            if (!uts) return ["sh", "-c", 'umask 077 && exec "$@"', "sh", ...withJobs];
            // a user + UTS namespace for another host name, then back to this user's ids for the build itself
            const ids = `--map-user=${process.getuid?.() ?? 0} --map-group=${process.getgid?.() ?? 0}`;
            return ["unshare", "-Ur", "--uts", "sh", "-c", `hostname kiln-verify-b && umask 077 && exec unshare ${ids} -- "$@"`, "sh", ...withJobs];
          },
        },
      ];
      const say = (message: string) => inv.bus.emit({ type: "info", message });
      try {
        for (const s of sides) {
          await mkdir(s.root, { recursive: true });
          await copyProject(ctx.project.root, s.project, ctx.outDir);
          await build({ ...s, env: { ...s.env, KILN_STORE: s.store } }, args, say);
        }
        const [oa, ob] = await Promise.all(sides.map((s) => outputs(join(s.project, "out"))));
        const [ra, rb] = await Promise.all(sides.map((s) => storeRefs(s.store)));
        const files = [...new Set([...oa!.keys(), ...ob!.keys()])].sort((x, y) => rank(x) - rank(y) || (x < y ? -1 : 1));
        const differing = files.filter((f) => oa!.get(f) !== ob!.get(f));
        const packages = [...new Set([...ra!.keys(), ...rb!.keys()])].sort().filter((r) => ra!.get(r) !== rb!.get(r));
        const data = {
          identical: !differing.length && !packages.length,
          hostname: uts,
          outputs: files.map((f) => ({ path: f, a: oa!.get(f) ?? null, b: ob!.get(f) ?? null })),
          differing,
          packages: packages.map((r) => ({ ref: r, a: ra!.get(r) ?? null, b: rb!.get(r) ?? null })),
          kept: flags.keep ? sides.map((s) => s.root) : undefined,
        };
        if (data.identical) {
          const text = [`reproducible: ${files.length} outputs identical in two builds (${uts ? "other host name, " : ""}time zone, umask, folders, stores, -j)`, ...files.map((f) => `  ${oa!.get(f)!.slice(0, 16)}  ${f}`)];
          if (flags.keep) text.push(`kept: ${sides.map((s) => s.root).join(" ")}`);
          return { data, text: text.join("\n") };
        }
        const details: string[] = [];
        for (const r of packages) details.push(`package ${r}: ${ra!.get(r) ?? "absent"} ≠ ${rb!.get(r) ?? "absent"}`);
        for (const f of differing) details.push(`output ${f}: ${oa!.get(f) ? `sha256:${oa!.get(f)!.slice(0, 16)}` : "absent"} ≠ ${ob!.get(f) ? `sha256:${ob!.get(f)!.slice(0, 16)}` : "absent"}`);
        if (packages[0] && ra!.get(packages[0]) && rb!.get(packages[0])) {
          const lines = await explainLayers(sides[0]!.store, ra!.get(packages[0])!, sides[1]!.store, rb!.get(packages[0])!);
          if (lines.length) details.push(`kiln diff of package ${packages[0]}:`, ...lines.map((l) => `  ${l}`));
        }
        const first = differing.find((f) => oa!.has(f) && ob!.has(f));
        if (first) {
          const lines = await explainFirst(join(sides[0]!.project, "out", first), join(sides[1]!.project, "out", first));
          if (lines.length) details.push(`kiln diff of ${first}:`, ...lines.map((l) => `  ${l}`));
        }
        throw new KilnError("E_NOT_REPRODUCIBLE", `${differing.length} of ${files.length} outputs${packages.length ? ` and ${packages.length} package image${packages.length > 1 ? "s" : ""}` : ""} differ between two builds of the same inputs${first ? `; first: ${first}` : ""}`, {
          details,
          hint: flags.keep
            ? `both trees are kept: ${sides.map((s) => s.project).join(" and ")}; compare with kiln diff`
            : "run again with --keep to keep both trees, then compare them with kiln diff; a script that writes the time, a random value or the host name is the usual cause",
        });
      } finally {
        if (!flags.keep) await rm(base, { recursive: true, force: true });
      }
    }),
  );
}
