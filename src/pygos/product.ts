import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { SUBPACKAGES_LABEL, type SubPackageRecord } from "../build/builders/pygos.js";
import { type BuildOptions, runPlan, type TargetResult } from "../build/scheduler.js";
import { indexTar } from "../compose/tarindex.js";
import { Tree } from "../compose/tree.js";
import { writeTreeTar } from "../compose/write-tar.js";
import { tempPathFor, writeFileAtomic } from "../core/atomic.js";
import { formatLocation, KilnError } from "../core/errors.js";
import { sha256Hex, stableJson } from "../core/hash.js";
import { findTool, probeVersion } from "../core/tools.js";
import { artifact } from "../formats/artifacts.js";
import { makeRootfsImg } from "../fs/rootfs-img.js";
import { pkgId, resolveTargets } from "../graph/graph.js";
import { KILN_FORMAT } from "../graph/inputs.js";
import { makePlan } from "../graph/plan.js";
import type { ImageConfig } from "../store/image.js";
import { readManifest } from "../store/image.js";
import { mergedList } from "./layers.js";
import { osRelease } from "./load.js";
import { generatedFiles } from "./rootfs.js";

export type ProductContext = BuildOptions & { arch: string };

export interface ProductOutput {
  name: string;
  path: string;
  size: number;
  cached: boolean;
}

const scalarVar = (ctx: ProductContext, name: string) => {
  const v = ctx.project.pygos?.toolchainVars.get(name);
  return v && !v.array ? v.value.trim() || undefined : undefined;
};

/**
 * `kiln build --product NAME`: build what the product's ROOTFS names (and
 * LINUXPKG), with their dependencies, then the product's root file system
 * (rootfs.tar → rootfs.img) with the INIT configuration and the layers'
 * system files, list the binary packages in BUILDROOT/repo, and build
 * RELEASEPKG over the image (BUILDROOT/release.tar.gz). With package names,
 * only those packages are built.
 */
export async function buildProduct(ctx: ProductContext, words: string[]): Promise<{ data: unknown; text: string }> {
  const py = ctx.project.pygos;
  if (!py?.product || !py.layers) throw new KilnError("E_PYGOS_PRODUCT", "no product selected", { hint: `pass --product NAME${py?.products.length ? ` (${py.products.join(", ")})` : ""}` });
  const results = new Map<string, TargetResult>();
  const build = async (roots: string[]) => {
    const plan = await makePlan(ctx.project, ctx.graph, ctx.store, { arch: ctx.arch, outDir: ctx.outDir, records: ctx.records, roots });
    const list = await runPlan(plan, ctx);
    for (const r of list) results.set(r.id, r);
    await ctx.store.touchRefs(list.filter((r) => r.status === "cached").map((r) => r.ref));
    const failed = list.filter((r) => r.status === "failed");
    if (failed.length) throw buildFailed(failed, list.length);
  };
  if (words.length) {
    await build(resolveTargets(ctx.graph, words));
    return { data: summary(ctx, results, []), text: "" };
  }
  const rootfs = mergedList(py.layers, "ROOTFS");
  const unknown = rootfs.filter((r) => !py.providers.has(r.word));
  if (unknown.length) {
    throw KilnError.fromDiagnostics(unknown.map((u) => ({ code: "E_PYGOS_ROOTFS" as const, message: `ROOTFS names '${u.word}', which no build script provides`, location: { file: u.file, line: u.line } })));
  }
  const linux = scalarVar(ctx, "LINUXPKG");
  const roots = [...new Set([...rootfs.map((r) => py.providers.get(r.word)!), ...(linux && py.providers.has(linux) ? [py.providers.get(linux)!] : [])])];
  await build(roots.map(pkgId));

  // Binary packages to install: ROOTFS and, transitively, what their .desc requires (built on demand).
  const order = await installOrder(ctx, results, rootfs.map((r) => r.word), build);
  await writeRepo(ctx, results);
  const outputs = await rootfsImage(ctx, order);

  const release = scalarVar(ctx, "RELEASEPKG");
  if (release && py.providers.has(release)) {
    const src = ctx.project.packages.get(py.providers.get(release)!)!;
    if (src.recipe.kind === "pygos") {
      // The release package packages the image: its key includes the image's, and its steps see ROOTFSIMG.
      src.recipe.reads = { ...src.recipe.reads, KILN_ROOTFS: outputs[1]!.key };
      await build([pkgId(src.name)]);
      const r = results.get(pkgId(src.name))!;
      const layer = (await readManifest(ctx.store, r.manifest!)).layers[0]!;
      const out = join(ctx.outDir, "release.tar.gz");
      const tmp = tempPathFor(out);
      await pipeline(createReadStream(ctx.store.blobPath(layer.digest)), createGzip({ level: 9 }), createWriteStream(tmp));
      const { rename, stat } = await import("node:fs/promises");
      await rename(tmp, out);
      outputs.push({ name: "release.tar.gz", path: out, size: (await stat(out)).size, cached: r.status === "cached", key: r.key });
    }
  }
  const text = outputs.map((o) => `${o.name.padEnd(16)} ${o.path}  ${o.size} bytes${o.cached ? " (unchanged)" : ""}`).join("\n");
  return { data: summary(ctx, results, outputs), text };
}

function summary(ctx: ProductContext, results: Map<string, TargetResult>, outputs: (ProductOutput & { key: string })[]) {
  return {
    product: ctx.project.pygos!.product,
    arch: ctx.arch,
    buildRoot: ctx.outDir,
    targets: [...results.values()].map((r) => ({ target: r.id, ref: r.ref, key: r.key, status: r.status, digest: r.manifest?.digest, ms: r.ms, error: r.error?.code })),
    outputs,
  };
}

function buildFailed(failed: TargetResult[], total: number): KilnError {
  return new KilnError("E_BUILD_FAILED", `${failed.length} of ${total} targets failed`, {
    details: failed.flatMap((r) => {
      const e = r.error!;
      return [`${r.id}: ${e.code} ${e.message}${e.location ? `  (${formatLocation(e.location)})` : ""}`, ...e.details.map((l) => `    ${l}`), ...(e.hint ? [`    hint: ${e.hint}`] : [])];
    }),
  });
}

async function subpackagesOf(ctx: ProductContext, r: TargetResult): Promise<Record<string, SubPackageRecord>> {
  const m = await readManifest(ctx.store, r.manifest!);
  const config = await ctx.store.readJson<ImageConfig>(m.config.digest);
  return JSON.parse(config.config.Labels?.[SUBPACKAGES_LABEL] ?? "{}") as Record<string, SubPackageRecord>;
}

/** Dependencies before dependents, ties in ROOTFS order; a requirement nobody provides is an error. */
async function installOrder(ctx: ProductContext, results: Map<string, TargetResult>, wanted: string[], build: (roots: string[]) => Promise<void>): Promise<{ name: string; record: SubPackageRecord }[]> {
  const py = ctx.project.pygos!;
  const out: { name: string; record: SubPackageRecord }[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = async (name: string, from: string) => {
    if (state.get(name)) return;
    state.set(name, "visiting");
    const src = py.providers.get(name);
    if (!src) throw new KilnError("E_PYGOS_ROOTFS", `${from} requires '${name}', which no build script provides`, { location: { file: from.startsWith("pkg/") ? `${from}/build` : from } });
    if (!results.has(pkgId(src))) await build([pkgId(src)]);
    const subs = await subpackagesOf(ctx, results.get(pkgId(src))!);
    const record = subs[name];
    if (!record) throw new KilnError("E_PYGOS_ROOTFS", `pkg/${src} did not produce the binary package '${name}'`, { location: { file: `pkg/${src}/build` } });
    for (const req of record.requires) await visit(req, `pkg/${src}`);
    out.push({ name, record });
    state.set(name, "done");
  };
  for (const w of wanted) await visit(w, `layer ROOTFS`);
  return out;
}

/** BUILDROOT/repo: one JSON file per binary package of the product's packages (name, version, image, layer, requires). */
async function writeRepo(ctx: ProductContext, results: Map<string, TargetResult>): Promise<void> {
  const dir = join(ctx.outDir, "repo");
  await mkdir(dir, { recursive: true });
  for (const r of results.values()) {
    const pkg = ctx.project.packages.get(r.id.slice("pkg/".length));
    if (pkg?.recipe.kind !== "pygos" || !r.manifest) continue;
    for (const [name, rec] of Object.entries(await subpackagesOf(ctx, r))) {
      await writeFileAtomic(join(dir, `${name}.json`), JSON.stringify({ name, source: pkg.name, ...rec }, null, 1) + "\n", { sync: false });
    }
  }
}

async function rootfsImage(ctx: ProductContext, order: { name: string; record: SubPackageRecord }[]): Promise<(ProductOutput & { key: string })[]> {
  const py = ctx.project.pygos!;
  const epoch = ctx.project.sourceDateEpoch;
  const osName = scalarVar(ctx, "OS_NAME") ?? "Pygos";
  const files = generatedFiles(py, osName, osRelease(ctx.project.root));
  const recordDir = join(ctx.outDir, ".kiln", "records", "product");
  const tarKey = sha256Hex(stableJson({ f: KILN_FORMAT, product: py.product, layers: order.map((o) => [o.name, o.record.layer.digest]), files: files.map((f) => [f.path, f.mode, sha256Hex(f.data)]), epoch }));
  const tarPath = join(ctx.outDir, "rootfs.tar");
  const tar = await artifact(recordDir, `rootfs.tar/${py.product}`, tarPath, tarKey, ctx.bus, async () => {
    const tree = new Tree();
    for (const o of order) {
      const blob = ctx.store.blobPath(o.record.layer.digest);
      tree.applyLayer("", blob, await indexTar(blob));
    }
    tree.nextLayer();
    for (const f of files) tree.set(f.path, { type: "file", mode: f.mode, uid: 0, gid: 0, content: { data: f.data } });
    await writeTreeTar(tree, tarPath, epoch);
  });
  const format = scalarVar(ctx, "ROOTFS_FORMAT") ?? "squashfs";
  const fsTools = format === "squashfs" ? ["mksquashfs"] : format === "ext4" ? ["mkfs.ext4", "fakeroot", "debugfs"] : ["mkfs.erofs", "fakeroot"];
  const tools: Record<string, string> = {};
  for (const t of fsTools) tools[t] = await probeVersion(await findTool(t));
  const imgKey = sha256Hex(stableJson({ f: KILN_FORMAT, tar: tarKey, format, epoch, tools }));
  const imgPath = join(ctx.outDir, "rootfs.img");
  const workDir = join(ctx.outDir, ".work", "rootfs");
  const img = await artifact(recordDir, `rootfs.img/${py.product}`, imgPath, imgKey, ctx.bus, async () => {
    await makeRootfsImg(tarPath, imgPath, { format, tarSha256: tarKey, mtime: epoch, jobs: ctx.jobs, workDir });
    await rm(workDir, { recursive: true, force: true });
  });
  return [
    { name: "rootfs.tar", path: tar.path, size: tar.size, cached: tar.cached, key: tarKey },
    { name: "rootfs.img", path: img.path, size: img.size, cached: img.cached, key: imgKey },
  ];
}

/**
 * Where a product's build root goes, like mk.sh: a folder named after the
 * product in the current folder when kiln runs outside the tree (Pygos's
 * advice: keep generated files out of the git tree), in the tree's out/ when
 * it runs inside, or under --out DIR. download/ and src/ sit beside it, shared
 * by the products.
 */
export function productBuildRoot(tree: string, cwd: string, out: string | undefined, product: string): string {
  if (out) return join(out, product);
  const inside = cwd === tree || cwd.startsWith(`${tree}/`);
  return join(inside ? join(tree, "out") : cwd, product);
}
