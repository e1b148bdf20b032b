import type { ImageSpec } from "../../config/image-spec.js";
import { type InstalledPackage, PACKAGES_LABEL, sortPackages } from "../../debian/manifest.js";
import type { PlanNode } from "../../graph/plan.js";
import { type ImageConfig, type Manifest, readManifest } from "../../store/image.js";
import type { Store } from "../../store/layout.js";
import { debPurl, ociPurl } from "./ids.js";

/**
 * What an image is made of, gathered from the inputs its key already covers:
 * the resolved spec (whose refs carry the packages' keys), the plan's key
 * records (recipes, sources, dependencies) and the store images (digests, the
 * Debian package list label). The SPDX and CycloneDX writers render this.
 */
export interface Inventory {
  image: ImageInfo;
  /** kiln packages: those the spec names and everything they are built with, by name. */
  packages: KilnPackage[];
  /** Debian binary packages of the debian packages above, each once, by purl. */
  debs: DebPackage[];
  /** Images the spec names that are not packages of the project (already in the store), by digest. */
  foreign: { ref: string; digest: string }[];
  /** Regular files of the composed image, by path (empty when file listing is off). */
  files: ImageFile[];
}

export interface ImageInfo {
  /** The project's name (kiln.yml `name`). */
  project: string;
  /** rootfs | installer */
  kind: string;
  arch: string;
  /** The variant's folder name: kvm-generic[-flavor]. */
  variant: string;
  version: string;
  /** SOURCE_DATE_EPOCH: the documents' creation time. */
  epoch: number;
  /** kiln's version, named as the creating tool. */
  tool: string;
}

export interface KilnPackage {
  name: string;
  kind: string;
  version?: string;
  description?: string;
  /** The store reference (ORG/NAME:TAG) and the image's manifest digest. */
  ref: string;
  digest: string;
  key: string;
  /** Downloaded sources: url and sha256 (script recipes). */
  sources: { url: string; sha256: string }[];
  /** A third-party image (kind: oci): the reference and digest it was pulled by. */
  base?: { name: string; digest: string };
  /** Build dependencies (package names). */
  deps: string[];
  /** purls of the Debian packages it holds. */
  debs: string[];
  /** Named by the image spec (else only a build dependency). */
  direct: boolean;
  purl: string;
}

export interface DebPackage extends InstalledPackage {
  purl: string;
  /** The .deb's sha256, as kiln.lock pins it (absent when the lock entry is not in the key record). */
  debSha256?: string;
}

export interface ImageFile {
  /** In-image path without a leading slash. */
  path: string;
  size: number;
  sha1: string;
  sha256: string;
}

/** Every image reference of a spec, in spec order, each once. */
export function specRefs(spec: ImageSpec): string[] {
  const refs = [
    spec.kernel?.image,
    ...(spec.init ?? []),
    ...(spec.onboot ?? []).map((c) => c.image),
    ...(spec.onshutdown ?? []).map((c) => c.image),
    ...(spec.services ?? []).map((c) => c.image),
    ...(spec.volumes ?? []).map((v) => v.image),
  ];
  return [...new Set(refs.filter((r): r is string => !!r))];
}

async function imageOf(store: Store, ref: string): Promise<{ digest: string; manifest: Manifest; config: ImageConfig } | undefined> {
  const desc = await store.resolveRef(ref);
  if (!desc) return undefined;
  const manifest = await readManifest(store, desc);
  return { digest: desc.digest, manifest, config: await store.readJson<ImageConfig>(manifest.config.digest) };
}

function debianList(config: ImageConfig): InstalledPackage[] {
  const raw = config.config?.Labels?.[PACKAGES_LABEL];
  return raw ? sortPackages(JSON.parse(raw) as InstalledPackage[]) : [];
}

export interface InventoryInput {
  store: Store;
  spec: ImageSpec;
  /** Plan nodes of the packages the spec uses and of everything they are built with. */
  nodes: Iterable<PlanNode>;
  image: ImageInfo;
  files: ImageFile[];
}

/** Gather the inventory of a composed image (reads small JSON blobs of the store only). */
export async function collectInventory(input: InventoryInput): Promise<Inventory> {
  const named = new Set(specRefs(input.spec));
  const packages: KilnPackage[] = [];
  const debs = new Map<string, DebPackage>();
  const known = new Set<string>();
  for (const node of input.nodes) {
    const img = await imageOf(input.store, node.ref);
    if (!img) continue;
    known.add(node.ref);
    const recipe = node.target.pkg.recipe as { kind: string; version?: string; description?: string };
    const sources = Object.entries(node.record.sources)
      .filter(([k]) => !k.startsWith("debian:"))
      .map(([url, sha256]) => ({ url, sha256 }));
    const ann = img.manifest.annotations ?? {};
    const baseName = ann["org.opencontainers.image.base.name"];
    const baseDigest = ann["org.opencontainers.image.base.digest"];
    const base = baseName && baseDigest ? { name: baseName.replace(/@sha256:[0-9a-f]{64}$/, ""), digest: baseDigest } : undefined;
    const own: string[] = [];
    for (const d of debianList(img.config)) {
      const p = debPurl(d.name, d.version, d.architecture);
      own.push(p);
      if (!debs.has(p)) debs.set(p, { ...d, purl: p, debSha256: node.record.sources[`debian:${d.name}_${d.version}_${d.architecture}`] });
    }
    const repo = node.ref.replace(/:[^:/]+$/, "");
    packages.push({
      name: node.target.pkg.name,
      kind: recipe.kind,
      version: recipe.version,
      description: recipe.description?.trim().split("\n")[0],
      ref: node.ref,
      digest: img.digest,
      key: node.key,
      sources,
      base,
      deps: node.target.deps.map((d) => d.replace(/^pkg\//, "")).sort(),
      debs: own.sort(),
      direct: named.has(node.ref),
      purl: base ? ociPurl(base.name, base.digest, { arch: node.record.arch, repository_url: base.name }) : ociPurl(repo, img.digest, { arch: node.record.arch, tag: node.ref.slice(repo.length + 1) }),
    });
  }
  const foreign: Inventory["foreign"] = [];
  for (const ref of named) {
    if (known.has(ref)) continue;
    const img = await imageOf(input.store, ref);
    if (img) foreign.push({ ref, digest: img.digest });
  }
  packages.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const debList = [...debs.values()].sort((a, b) => (a.purl < b.purl ? -1 : a.purl > b.purl ? 1 : 0));
  return { image: input.image, packages, debs: debList, foreign, files: input.files };
}
