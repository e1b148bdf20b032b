import { mkdir, readFile, rm, stat } from "node:fs/promises";
import { join, relative } from "node:path";
import { parseYaml } from "../config/yaml.js";
import { writeFileAtomic } from "../core/atomic.js";
import { KilnError } from "../core/errors.js";
import { background } from "../core/background.js";
import { sha256File, sha256Hex, stableJson } from "../core/hash.js";
import { type BuildOptions, runPlan } from "../build/scheduler.js";
import { pkgId } from "../graph/graph.js";
import { KILN_FORMAT } from "../graph/inputs.js";
import { makePlan } from "../graph/plan.js";
import type { Variant } from "../variant/knobs.js";
import { referencedPackages, substitute } from "../variant/placeholders.js";
import { type ComposedTemplate, composeTemplate, type ImageKind, modifiersFor, templatePath } from "../variant/template.js";
import type { ImageSpec } from "../config/image-spec.js";
import { composeRootfs } from "./compose.js";
import { imageSbomOptions, readSbomsBeside, sbomHook, sbomKeyFields, sbomsBeside, tarProvenance, writeSbomsBeside } from "./sbom/image.js";
import { provenancePath, writeProvenance } from "./sbom/provenance.js";

/** What the image targets need: the same as a package build (they build the packages they use first). */
export type ImageTargetContext = BuildOptions;

export interface ComposedImage {
  kind: ImageKind;
  variant: Variant;
  /** images/out/<kind>-<variant>.yml */
  yml: string;
  tar: string;
  /** The tar's identity: the key of its inputs (equal keys give equal bytes). */
  id: string;
  size: number;
  cached: boolean;
  key: string;
  /** The tar's sha256 (hashed once, when it is made; for its provenance), or its promise while it is hashed. */
  sha256?: string;
  sha256Pending?: Promise<string>;
}

/** What composing a template gave last time (out/.kiln/records/<arch>/<kind>-<variant>.yml.json). */
interface YmlMemo {
  /** Digest of the template, the modifiers (paths and bytes), the variant and kiln's format. */
  input: string;
  tpl: ComposedTemplate;
  /** The validated spec of the template's text, placeholders still in it (filled in per build). */
  tplSpec?: ImageSpec;
}

/** A copy of `v` with `f` applied to every string in it (placeholders → refs, in a parsed spec). */
function mapStrings<T>(v: T, f: (s: string) => string): T {
  if (typeof v === "string") return f(v) as T;
  if (Array.isArray(v)) return v.map((x) => mapStrings(x, f)) as T;
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [f(k), mapStrings(x, f)])) as T; // keys too (sysctl, annotations)
  return v;
}

async function templateInputs(ctx: ImageTargetContext, variant: Variant, kind: ImageKind): Promise<string> {
  const files = [templatePath(ctx.project, kind), ...(await modifiersFor(ctx.project, variant, kind))];
  const bytes = await Promise.all(files.map((f) => readFile(f).then((b) => sha256Hex(b), () => "absent")));
  return sha256Hex(stableJson({ f: KILN_FORMAT, kind, variant, modifiers: ctx.project.config.images?.modifiers ?? null, files: files.map((f, i) => [relative(ctx.project.root, f), bytes[i]]) }));
}

/** Write a derived file (images/out/…) only when its content changed: no rewrite, no fsync on a no-op build. */
async function writeIfChanged(path: string, text: string): Promise<void> {
  if ((await readFile(path, "utf8").catch(() => undefined)) === text) return;
  await writeFileAtomic(path, text, { sync: false });
}

/**
 * The resolved yml of a variant: template, modifiers, placeholders built and substituted, validated.
 * The template step (yq modifiers) and the validation are remembered by their inputs, so a no-op
 * build neither loads the YAML library nor runs a modifier.
 */
export async function resolveImageYml(ctx: ImageTargetContext, variant: Variant, kind: ImageKind) {
  const memoFile = join(ctx.outDir, ".kiln", "records", variant.arch, `${kind}-${variant.name}.yml.json`);
  const [input, last] = await Promise.all([templateInputs(ctx, variant, kind), readFile(memoFile, "utf8").then((t) => JSON.parse(t) as YmlMemo, () => undefined)]);
  const tpl = last?.input === input ? last.tpl : await composeTemplate(ctx.project, variant, kind);
  await writeIfChanged(tpl.outIn, tpl.text);
  const display = relative(ctx.project.root, tpl.outIn);
  const pkgs = referencedPackages(ctx.project, tpl.text, display);
  const missing = pkgs.filter((p) => !ctx.graph.targets.has(pkgId(p)));
  if (missing.length) throw new KilnError("E_BAD_VARIANT", `${display} uses ${missing.join(", ")}, which ${missing.length > 1 ? "are" : "is"} not built for ${variant.arch}`);
  const plan = await makePlan(ctx.project, ctx.graph, ctx.store, { arch: variant.arch, outDir: ctx.outDir, records: ctx.records, roots: pkgs.map(pkgId) });
  const results = await runPlan(plan, { ...ctx, keepWork: ctx.keepWork });
  const failed = results.filter((r) => r.status === "failed" || r.status === "skipped");
  if (failed.length) {
    const first = failed.find((r) => r.status === "failed") ?? failed[0]!;
    throw new KilnError("E_BUILD_FAILED", `${failed.length} package${failed.length > 1 ? "s" : ""} of the ${kind} image failed`, {
      details: failed.map((r) => `${r.id}: ${r.error?.code} ${r.error?.message}`),
      hint: first.error?.hint,
    });
  }
  const refs = new Map(pkgs.map((p) => [p, plan.nodes.get(pkgId(p))!.ref]));
  const text = substitute(ctx.project, tpl.text, refs);
  await writeIfChanged(tpl.out, text);
  // The template's text is parsed and validated once; a build with other package refs fills them
  // into the parsed spec (placeholders are whole words inside strings, so this equals parsing the
  // substituted text, whose lines are the template's: errors name the .yml users read).
  let tplSpec = last?.input === input ? last.tplSpec : undefined;
  if (!tplSpec) {
    const outDisplay = relative(ctx.project.root, tpl.out);
    const parsed = parseYaml(tpl.text, tpl.out, outDisplay);
    if (!parsed.file) throw KilnError.fromDiagnostics(parsed.diagnostics);
    const [{ validate }, { imageSpecSchema }] = await Promise.all([import("../config/diagnose.js"), import("../config/image-spec.js")]);
    const v = validate(imageSpecSchema, parsed.file);
    if (!v.value) throw KilnError.fromDiagnostics(v.diagnostics);
    tplSpec = v.value;
    await writeFileAtomic(memoFile, JSON.stringify({ input, tpl, tplSpec } satisfies YmlMemo), { sync: false });
  }
  const spec = mapStrings(tplSpec, (s) => substitute(ctx.project, s, refs));
  return { spec, text, tpl, refs, plan };
}

/**
 * Compose (or reuse) out/<arch>/<variant>/<kind>.tar; `extra` files (with their digests) are added at the end.
 * Its SBOMs go into it and beside it (<kind>.spdx.json, <kind>.cdx.json), and <kind>.tar.provenance.json says what it is made of.
 */
export async function buildImageTar(
  ctx: ImageTargetContext,
  variant: Variant,
  kind: ImageKind,
  extra: { path: string; file: string; size: number; id: string; sha256?: string }[] = [],
  /** Hash the tar and write <kind>.tar.provenance.json (the build profile's `provenance`; dev: no). */
  opts: { provenance?: boolean } = {},
): Promise<ComposedImage> {
  const withProvenance = opts.provenance ?? true;
  const { spec, text, tpl, plan } = await resolveImageYml(ctx, variant, kind);
  // timed from here: the packages it needs report their own times
  const t0 = Date.now();
  const dir = join(ctx.outDir, variant.arch, variant.name);
  const tar = join(dir, `${kind}.tar`);
  const sources = await Promise.all(
    (spec.files ?? []).filter((f) => f.source).map(async (f) => [f.source!, sha256Hex(await readFile(join(tpl.templateDir, f.source!)).catch(() => Buffer.from("absent")))] as const),
  );
  const sbom = imageSbomOptions(ctx.project);
  const key = sha256Hex(stableJson({ format: KILN_FORMAT, kind, spec: text, sources, mtime: ctx.project.sourceDateEpoch, extra: extra.map((x) => [x.path, x.id]), sbom: sbomKeyFields(ctx.project, variant, kind, sbom) }));
  const recordFile = join(ctx.outDir, ".kiln", "records", variant.arch, `${kind}-${variant.name}.json`);
  const last = JSON.parse(await readFile(recordFile, "utf8").catch(() => "null")) as { key: string; size: number; mtimeMs: number; sha256?: string } | null;
  const st = await stat(tar).catch(() => undefined);
  const id = `${kind}/${variant.arch}/${variant.name}`;
  const sbomInput = { project: ctx.project, store: ctx.store, variant, kind, spec, nodes: [...plan.nodes.values()] };
  const provenance = async (sha256: string, sboms: Parameters<typeof tarProvenance>[0]["sboms"]) =>
    writeProvenance(tar, await tarProvenance({ ...sbomInput, specName: relative(ctx.project.root, tpl.out), specText: text, sources, extra, sboms }), sha256, key);
  if (last && st && last.key === key && last.size === st.size && last.mtimeMs === st.mtimeMs && (await sbomsBeside(dir, kind, sbom))) {
    let sha256 = last.sha256;
    // without provenance, one beside it from an earlier build describes these same bytes (same key): left as it is
    if (withProvenance) {
      sha256 ??= await sha256File(tar, st.size);
      if (!last.sha256) await writeFileAtomic(recordFile, JSON.stringify({ ...last, sha256 }), { sync: false });
      await provenance(sha256, await readSbomsBeside(dir, kind, sbom));
    }
    ctx.bus.emit({ type: "done", target: id, key, cached: true, ms: Date.now() - t0 });
    return { kind, variant, yml: tpl.out, tar, id: key, size: last.size, cached: true, key, sha256 };
  }
  ctx.bus.emit({ type: "start", target: id, key });
  await mkdir(dir, { recursive: true });
  const hook = sbom ? sbomHook(sbomInput, sbom) : undefined;
  const res = await composeRootfs({ spec, specText: text, specDir: tpl.templateDir, store: ctx.store, mtime: ctx.project.sourceDateEpoch, specName: relative(ctx.project.root, tpl.out), extraFiles: extra, late: hook, sha256: withProvenance }, tar);
  const after = await stat(tar);
  const sboms = hook?.docs() ?? [];
  await writeSbomsBeside(dir, sboms);
  const record = { key, size: res.size, mtimeMs: after.mtimeMs };
  await writeFileAtomic(recordFile, JSON.stringify(record), { sync: false });
  // hashed on another thread as it was written, finishing while the next stage (mksquashfs) starts; the record gets the digest then
  const sha256Pending = res.sha256;
  if (sha256Pending) {
    background(
      sha256Pending.then(async (sha256) => {
        await writeFileAtomic(recordFile, JSON.stringify({ ...record, sha256 }), { sync: false });
        await provenance(sha256, sboms);
      }),
    );
  } else await rm(provenancePath(tar), { force: true }); // not hashed (no provenance): one from an earlier build would describe other bytes
  const parts = [
    { name: "layers", ms: Math.round(res.layersMs) },
    { name: "tar", ms: Math.round(res.ms), bytes: res.size },
  ];
  ctx.bus.emit({ type: "done", target: id, key, cached: false, ms: Date.now() - t0, parts });
  return { kind, variant, yml: tpl.out, tar, id: key, size: res.size, cached: false, key, sha256Pending };
}
