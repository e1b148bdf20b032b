import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { ImageSpec } from "../../config/image-spec.js";
import type { Project } from "../../config/project.js";
import { writeFileAtomic } from "../../core/atomic.js";
import { sha256Hex } from "../../core/hash.js";
import type { PlanNode } from "../../graph/plan.js";
import type { Store } from "../../store/layout.js";
import type { Variant } from "../../variant/knobs.js";
import type { Tree } from "../tree.js";
import { ociPurl } from "./ids.js";
import { hashTreeFiles } from "./files.js";
import { collectInventory, specRefs } from "./inventory.js";
import { renderSboms, SBOM_VERSION, type SbomDoc, sbomOptions, type SbomOptions, sbomPlaces } from "./index.js";
import type { ProvenanceInput, ProvenanceSpec } from "./provenance.js";
import { toolVersion } from "./provenance.js";

/**
 * The SBOMs and the provenance of an image tar (rootfs.tar, installer.tar),
 * as small hooks for src/compose/target.ts: what goes into the tar's key,
 * the compose `finish` callback that renders the documents from the
 * finished tree, and writing them beside the tar.
 */
export interface ImageSbomInput {
  project: Project;
  store: Store;
  variant: Variant;
  kind: string;
  spec: ImageSpec;
  /** Plan nodes of the packages the spec uses and of everything they are built with. */
  nodes: PlanNode[];
}

export function imageSbomOptions(project: Project): SbomOptions | undefined {
  return sbomOptions(project.config.images?.sbom);
}

/**
 * What the documents add to the tar's key beyond the spec (whose refs carry
 * every package's key, hence recipes, sources, Debian pins): the options,
 * the document format version and the names they print.
 */
export function sbomKeyFields(project: Project, variant: Variant, kind: string, opts: SbomOptions | undefined): unknown {
  if (!opts) return false;
  return { v: SBOM_VERSION, opts, project: project.config.name, kind, arch: variant.arch, variant: variant.name, version: variant.version, tool: toolVersion() };
}

/** True when every document that should be beside the tar is there (else the tar is composed again). */
export async function sbomsBeside(dir: string, kind: string, opts: SbomOptions | undefined): Promise<boolean> {
  if (!opts) return true;
  const here = await Promise.all(sbomPlaces(kind, opts).map((p) => stat(join(dir, p.name)).then(() => true, () => false)));
  return here.every(Boolean);
}

/** The compose hook: hash the tree's files, gather the inventory, render; the documents are kept for writing beside the tar. */
export function sbomHook(input: ImageSbomInput, opts: SbomOptions): { paths: string[]; make: (tree: Tree) => Promise<{ path: string; data: Buffer }[]>; docs: () => SbomDoc[] } {
  let docs: SbomDoc[] = [];
  const paths = sbomPlaces(input.kind, opts).flatMap((p) => (p.inImage ? [p.inImage] : []));
  const make = async (tree: Tree) => {
    const places = new Set(paths);
    const files = opts.files ? await hashTreeFiles(tree, (p) => places.has(p), join(input.store.kilnDir, "file-hashes")) : [];
    const v = input.variant;
    const inv = await collectInventory({
      store: input.store,
      spec: input.spec,
      nodes: input.nodes,
      files,
      image: { project: input.project.config.name, kind: input.kind, arch: v.arch, variant: v.name, version: v.version, epoch: input.project.sourceDateEpoch, tool: toolVersion() },
    });
    docs = renderSboms(inv, opts);
    return docs.flatMap((d) => (d.inImage ? [{ path: d.inImage, data: d.data }] : []));
  };
  return { paths, make, docs: () => docs };
}

/** The documents beside a cached tar (for its provenance's byproducts). */
export async function readSbomsBeside(dir: string, kind: string, opts: SbomOptions | undefined): Promise<SbomDoc[]> {
  if (!opts) return [];
  return Promise.all(sbomPlaces(kind, opts).map(async (p) => ({ ...p, data: await readFile(join(dir, p.name)) })));
}

export async function writeSbomsBeside(dir: string, docs: SbomDoc[]): Promise<void> {
  for (const d of docs) await writeFileAtomic(join(dir, d.name), d.data, { sync: false });
}

/** The knobs of a variant, as provenance's externalParameters. */
export function variantParams(project: Project, v: Variant): Record<string, unknown> {
  return { project: project.config.name, ZARCH: v.arch, HV: v.hv, PLATFORM: v.platform, ...(v.flavor ? { FLAVOR: v.flavor } : {}), ROOTFS_FORMAT: v.format, ROOTFS_VERSION: v.version };
}

/** What an image tar is made of, for its provenance: the resolved spec, template files, package images, extra files; its SBOMs as byproducts. */
export async function tarProvenance(
  input: ImageSbomInput & { specName: string; specText: string; sources: readonly (readonly [string, string])[]; extra: { path: string; id: string; sha256?: string }[]; sboms: SbomDoc[] },
): Promise<ProvenanceSpec> {
  const byRef = new Map(input.nodes.map((n) => [n.ref, n]));
  const images: ProvenanceInput[] = [];
  for (const ref of specRefs(input.spec)) {
    const desc = await input.store.resolveRef(ref);
    const repo = ref.replace(/:[^:/]+$/, "");
    images.push({ name: ref, ...(desc ? { uri: ociPurl(repo, desc.digest, { arch: input.variant.arch }), sha256: desc.digest } : {}), key: byRef.get(ref)?.key });
  }
  return {
    target: `${input.kind}.tar`,
    params: variantParams(input.project, input.variant),
    internal: { sourceDateEpoch: input.project.sourceDateEpoch, sbom: imageSbomOptions(input.project) ?? false },
    deps: [
      { name: input.specName, sha256: sha256Hex(input.specText) },
      ...input.sources.map(([name, sha]) => ({ name, sha256: sha })),
      ...images,
      ...input.extra.map((x) => ({ name: x.path, sha256: x.sha256, key: x.id })),
    ],
    byproducts: input.sboms.map((d) => ({ name: d.name, sha256: sha256Hex(d.data) })),
  };
}
