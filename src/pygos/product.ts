import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { SUBPACKAGES_LABEL, type SubPackageRecord } from "../build/builders/pygos.js";
import { type BuildOptions, runPlan, type TargetResult } from "../build/scheduler.js";
import { indexStoreBlob } from "../compose/tarindex.js";
import { Tree } from "../compose/tree.js";
import { writeTreeTar } from "../compose/write-tar.js";
import { tempPathFor, writeFileAtomic } from "../core/atomic.js";
import { formatLocation, KilnError } from "../core/errors.js";
import { sha256Hex, stableJson } from "../core/hash.js";
import type { Project } from "../config/project.js";
import { artifact } from "../formats/artifacts.js";
import { makeRootfsImg } from "../fs/rootfs-img.js";
import { closure, type Graph, pkgId, resolveTargets } from "../graph/graph.js";
import { KILN_FORMAT } from "../graph/inputs.js";
import { makePlan, type PlanNode } from "../graph/plan.js";
import type { Records } from "../graph/records.js";
import type { ImageConfig } from "../store/image.js";
import { readManifest } from "../store/image.js";
import type { Descriptor, Store } from "../store/layout.js";
import { toolVersions } from "../store/tools.js";
import { mergedList } from "./layers.js";
import type { PygosProject } from "./load.js";
import { osRelease } from "./load.js";
import { type GeneratedFile, generatedFiles } from "./rootfs.js";

export type ProductContext = BuildOptions & { arch: string };

export interface ProductOutput {
  name: string;
  path: string;
  size: number;
  cached: boolean;
  /** rootfs.img: its file system (squashfs, ext4, erofs) */
  format?: string;
}

const scalarVar = (ctx: { project: Project }, name: string) => {
  const v = ctx.project.pygos?.toolchainVars.get(name);
  return v && !v.array ? v.value.trim() || undefined : undefined;
};

/** The source packages a product build starts from: the providers of ROOTFS's binary packages and of LINUXPKG (unknown names are left to the build to report). */
function productRoots(ctx: { project: Project }, py: PygosProject): string[] {
  const linux = scalarVar(ctx, "LINUXPKG");
  const words = [...mergedList(py.layers!, "ROOTFS").map((r) => r.word), ...(linux ? [linux] : [])];
  return [...new Set(words.flatMap((w) => (py.providers.has(w) ? [py.providers.get(w)!] : [])))];
}

/** The product's RELEASEPKG source package, when TOOLCHAIN names one that a script provides. */
function releasePackage(ctx: { project: Project }) {
  const py = ctx.project.pygos!;
  const release = scalarVar(ctx, "RELEASEPKG");
  const src = release && py.providers.has(release) ? ctx.project.packages.get(py.providers.get(release)!) : undefined;
  return src?.recipe.kind === "pygos" ? src : undefined;
}

/** The release package's key input for the image (\`recipe.reads.KILN_ROOTFS\`): the image's key, or why it is not known yet. */
function setReleaseImage(ctx: { project: Project }, value: string): void {
  const src = releasePackage(ctx);
  if (src?.recipe.kind === "pygos") src.recipe.reads = { ...src.recipe.reads, KILN_ROOTFS: value };
}

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
  await build(productRoots(ctx, py).map(pkgId));

  // Binary packages to install: ROOTFS and, transitively, what their .desc requires (built on demand).
  const order = await installOrder(py, rootfs.map((r) => r.word), async (src) => {
    if (!results.has(pkgId(src))) await build([pkgId(src)]);
    return results.get(pkgId(src))!.manifest!;
  }, ctx.store);
  const image = await imageKeys(ctx, order);
  const outputs = await rootfsImage(ctx, order, image);

  const src = releasePackage(ctx);
  if (src) {
    // The release package packages the image: its key includes the image's (as \`kiln plan\` computes it), and its steps see ROOTFSIMG.
    setReleaseImage(ctx, image.imgKey);
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
  await writeRepo(ctx, results);
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

async function subpackagesIn(store: Store, manifest: Descriptor): Promise<Record<string, SubPackageRecord>> {
  const m = await readManifest(store, manifest);
  const config = await store.readJson<ImageConfig>(m.config.digest);
  return JSON.parse(config.config.Labels?.[SUBPACKAGES_LABEL] ?? "{}") as Record<string, SubPackageRecord>;
}

/**
 * The binary packages to install, dependencies before dependents, ties in
 * ROOTFS order; a requirement nobody provides is an error. \`manifestOf\`
 * gives a source package's image (building it, or at plan time looking it up).
 */
async function installOrder(py: PygosProject, wanted: string[], manifestOf: (src: string) => Promise<Descriptor>, store: Store): Promise<{ name: string; source: string; record: SubPackageRecord }[]> {
  const out: { name: string; source: string; record: SubPackageRecord }[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = async (name: string, from: string) => {
    if (state.get(name)) return;
    state.set(name, "visiting");
    const src = py.providers.get(name);
    if (!src) throw new KilnError("E_PYGOS_ROOTFS", `${from} requires '${name}', which no build script provides`, { location: { file: from.startsWith("pkg/") ? `${from}/build` : from } });
    const subs = await subpackagesIn(store, await manifestOf(src));
    const record = subs[name];
    if (!record) throw new KilnError("E_PYGOS_ROOTFS", `pkg/${src} did not produce the binary package '${name}'`, { location: { file: `pkg/${src}/build` } });
    for (const req of record.requires) await visit(req, `pkg/${src}`);
    out.push({ name, source: src, record });
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
    for (const [name, rec] of Object.entries(await subpackagesIn(ctx.store, r.manifest))) {
      await writeFileAtomic(join(dir, `${name}.json`), JSON.stringify({ name, source: pkg.name, ...rec }, null, 1) + "\n", { sync: false });
    }
  }
}

interface ImageKeys {
  files: GeneratedFile[];
  tarKey: string;
  imgKey: string;
  format: string;
}

/**
 * The keys of the product's rootfs.tar and rootfs.img: the installed binary
 * packages' layers, the generated files, the format and its tools. The same
 * at plan time (from the store) as at build time, so that RELEASEPKG, keyed
 * by the image's key, is planned as it will be built.
 */
async function imageKeys(ctx: { project: Project; store: Store }, order: { name: string; record: SubPackageRecord }[]): Promise<ImageKeys> {
  const py = ctx.project.pygos!;
  const epoch = ctx.project.sourceDateEpoch;
  const osName = scalarVar(ctx, "OS_NAME") ?? "Pygos";
  const files = generatedFiles(py, osName, osRelease(ctx.project.root));
  const tarKey = sha256Hex(stableJson({ f: KILN_FORMAT, product: py.product, layers: order.map((o) => [o.name, o.record.layer.digest]), files: files.map((f) => [f.path, f.mode, sha256Hex(f.data)]), epoch }));
  const format = scalarVar(ctx, "ROOTFS_FORMAT") ?? "squashfs";
  const fsTools = format === "squashfs" ? ["mksquashfs"] : format === "ext4" ? ["mkfs.ext4", "fakeroot", "debugfs"] : ["mkfs.erofs", "fakeroot"];
  const tools = await toolVersions(ctx.store, fsTools);
  const imgKey = sha256Hex(stableJson({ f: KILN_FORMAT, tar: tarKey, format, epoch, tools }));
  return { files, tarKey, imgKey, format };
}

async function rootfsImage(ctx: ProductContext, order: { name: string; record: SubPackageRecord }[], keys: ImageKeys): Promise<(ProductOutput & { key: string })[]> {
  const py = ctx.project.pygos!;
  const epoch = ctx.project.sourceDateEpoch;
  const { files, tarKey, imgKey, format } = keys;
  const recordDir = join(ctx.outDir, ".kiln", "records", "product");
  const tarPath = join(ctx.outDir, "rootfs.tar");
  const tar = await artifact(recordDir, `rootfs.tar/${py.product}`, tarPath, tarKey, ctx.bus, async () => {
    const tree = new Tree();
    const blobs = order.map((o) => ctx.store.blobPath(o.record.layer.digest));
    const indexes = await Promise.all(blobs.map((blob) => indexStoreBlob(ctx.store, blob)));
    blobs.forEach((blob, i) => tree.applyLayer("", blob, indexes[i]!));
    tree.nextLayer();
    for (const f of files) tree.set(f.path, { type: "file", mode: f.mode, uid: 0, gid: 0, content: { data: f.data } });
    await writeTreeTar(tree, tarPath, epoch);
  });
  const imgPath = join(ctx.outDir, "rootfs.img");
  const workDir = join(ctx.outDir, ".work", "rootfs");
  const img = await artifact(recordDir, `rootfs.img/${py.product}`, imgPath, imgKey, ctx.bus, async () => {
    await makeRootfsImg(tarPath, imgPath, { format, tarSha256: tarKey, mtime: epoch, jobs: ctx.jobs, workDir });
    await rm(workDir, { recursive: true, force: true });
  });
  return [
    { name: "rootfs.tar", path: tar.path, size: tar.size, cached: tar.cached, key: tarKey },
    { name: "rootfs.img", path: img.path, size: img.size, cached: img.cached, key: imgKey, format },
  ];
}

export interface PlanContext {
  project: Project;
  graph: Graph;
  store: Store;
  arch: string;
  outDir: string;
  records: Records;
}

/**
 * Plan time, for every command that works on a product (plan, explain, pkg
 * list …): the product's packages become the default targets (ROOTFS's and
 * LINUXPKG's providers, what their binary packages require, RELEASEPKG), and
 * RELEASEPKG gets the key it will be built with. Its key includes the image's,
 * which the store answers when every package of the image is built; when one
 * is not, the release will be rebuilt after it, and its key says so.
 */
export async function planProduct(ctx: PlanContext): Promise<void> {
  const py = ctx.project.pygos;
  if (!py?.product || !py.layers) return;
  const nodes = new Map<string, PlanNode>();
  const planned = async (ids: string[]) => {
    const plan = await makePlan(ctx.project, ctx.graph, ctx.store, { arch: ctx.arch, outDir: ctx.outDir, records: ctx.records, roots: ids, remote: false });
    for (const [id, n] of plan.nodes) nodes.set(id, n);
  };
  const roots = productRoots(ctx, py).map(pkgId);
  if (roots.length) await planned(roots);
  const want = new Set(roots);
  const release = releasePackage(ctx);
  if (release) {
    let value: string;
    const pending = [...nodes.values()].filter((n) => !n.cached).map((n) => n.target.id);
    if (pending.length) value = `after building ${pending.join(" ")}`;
    else {
      try {
        const words = mergedList(py.layers, "ROOTFS").map((r) => r.word);
        const order = await installOrder(py, words, async (src) => {
          const id = pkgId(src);
          if (!nodes.has(id)) await planned([id]);
          want.add(id);
          const n = nodes.get(id)!;
          const desc = n.cached ? await ctx.store.resolveRef(n.ref) : undefined;
          if (!desc) throw new KilnError("E_NOT_BUILT", `after building ${id}`);
          return desc;
        }, ctx.store);
        value = (await imageKeys(ctx, order)).imgKey;
      } catch (err) {
        value = err instanceof KilnError && err.code === "E_NOT_BUILT" ? err.message : `unknown until the image is built (${(err as Error).message})`;
      }
    }
    setReleaseImage(ctx, value);
    want.add(pkgId(release.name));
  }
  // Commands that default to every package (plan, pkg list, build without --product) take the product's.
  const keep = new Set(closure(ctx.graph, [...want].filter((id) => ctx.graph.targets.has(id))));
  ctx.graph.order = ctx.graph.order.filter((id) => keep.has(id) || ctx.graph.targets.get(id)!.pkg.recipe.kind !== "pygos");
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
