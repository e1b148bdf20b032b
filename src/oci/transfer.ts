import { KilnError } from "../core/errors.js";
import { asDigest, type Digest } from "../core/hash.js";
import { type Descriptor, MT, type Store } from "../store/layout.js";
import { isIndexType, type PulledManifest, type PushResult, type RegistryClient } from "./client.js";

interface ManifestJson {
  mediaType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: Descriptor[];
}

export interface PushSummary {
  digest: Digest;
  uploaded: number;
  existing: number;
  mounted: number;
  /** The registry had the manifest under the first tag already: nothing was sent. */
  upToDate: boolean;
}

/** Run fn over items with at most n at once. */
export async function eachLimit<T>(items: T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

/**
 * Push an image of the store (a manifest or an index and its manifests) to
 * `repo` under `tags`: blobs first (each HEADed first, so a re-run sends only
 * what is missing), then child manifests by digest, then the root under every
 * tag. The bytes are the store's, so the registry's digests equal the store's.
 */
export async function pushImage(client: RegistryClient, store: Store, repo: string, root: Descriptor, tags: string[], opts: { mountFrom?: string[]; jobs?: number } = {}): Promise<PushSummary> {
  const sum: PushSummary = { digest: root.digest, uploaded: 0, existing: 0, mounted: 0, upToDate: false };
  const first = tags[0];
  if (first) {
    const there = await client.headManifest(repo, first);
    if (there?.digest === root.digest) {
      sum.upToDate = true;
      for (const t of tags.slice(1)) await client.putManifest(repo, t, await store.readBlob(root.digest), root.mediaType);
      return sum;
    }
  }
  const count = (r: PushResult) => {
    if (r === "uploaded") sum.uploaded++;
    else if (r === "mounted") sum.mounted++;
    else sum.existing++;
  };
  const pushManifest = async (desc: Descriptor, refs: string[]) => {
    const bytes = await store.readBlob(desc.digest);
    const json = JSON.parse(bytes.toString("utf8")) as ManifestJson;
    if (isIndexType(desc.mediaType) || json.manifests) {
      for (const m of json.manifests ?? []) await pushManifest(m, [m.digest]);
    } else {
      const blobs = [json.config!, ...(json.layers ?? [])];
      await eachLimit(blobs, opts.jobs ?? 4, async (b) => count(await client.pushBlob(repo, b, store, opts.mountFrom)));
    }
    for (const r of refs) await client.putManifest(repo, r, bytes, json.mediaType ?? desc.mediaType);
  };
  await pushManifest(root, tags.length ? tags : [root.digest]);
  return sum;
}

/** Where manifests and blobs come from: a registry, or (offline) the store alone. */
export interface Source {
  manifest(ref: string): Promise<PulledManifest>;
  blob(desc: Descriptor): Promise<void>;
}

export function registrySource(client: RegistryClient, repo: string, store: Store): Source {
  return {
    manifest: (ref) => client.getManifest(repo, ref),
    blob: (desc) => client.pullBlob(repo, desc, store),
  };
}

export function storeSource(store: Store, what: string): Source {
  const absent = (d: string) => new KilnError("E_OFFLINE", `${what}: ${d} is not in the store and --offline forbids pulling it`, { hint: "run the command once without --offline (or `kiln pull` the image)" });
  return {
    async manifest(ref) {
      if (!ref.startsWith("sha256:")) throw absent(ref);
      const d = asDigest(ref);
      if (!(await store.hasBlob(d))) throw absent(ref);
      const bytes = await store.readBlob(d);
      const j = JSON.parse(bytes.toString("utf8")) as ManifestJson;
      return { bytes, digest: d, mediaType: j.mediaType ?? (j.manifests ? MT.index : MT.manifest) };
    },
    async blob(desc) {
      if (!(await store.hasBlob(desc.digest))) throw absent(desc.digest);
    },
  };
}

export interface PullResult {
  /** The root as pulled (manifest or index). */
  root: Descriptor;
  /** For `arch`: the platform's manifest (the root itself when it is a manifest). */
  manifest?: Descriptor;
}

/**
 * Pull an image into the store: blobs first (each verified while it streams),
 * then manifests, so a manifest in the store always has its blobs. For an
 * index, `arch` pulls only that platform's manifest; without it every one.
 */
export async function pullImage(src: Source, store: Store, ref: string, opts: { arch?: string; jobs?: number } = {}): Promise<PullResult> {
  const pullManifest = async (m: PulledManifest) => {
    const json = JSON.parse(m.bytes.toString("utf8")) as ManifestJson;
    await eachLimit([json.config!, ...(json.layers ?? [])], opts.jobs ?? 4, (b) => src.blob(b));
    return store.putBytes(m.bytes, m.mediaType);
  };
  const top = await src.manifest(ref);
  if (!isIndexType(top.mediaType)) {
    const root = await pullManifest(top);
    return { root, manifest: root };
  }
  const index = JSON.parse(top.bytes.toString("utf8")) as ManifestJson;
  const children = (index.manifests ?? []).filter((m) => !opts.arch || (m.platform?.architecture === opts.arch && (m.platform.os ?? "linux") === "linux"));
  if (opts.arch && !children.length) {
    const have = (index.manifests ?? []).map((m) => `${m.platform?.os ?? "?"}/${m.platform?.architecture ?? "?"}`).join(", ");
    throw new KilnError("E_REGISTRY_NOT_FOUND", `${ref} has no image for linux/${opts.arch} (it has: ${have || "none"})`);
  }
  let manifest: Descriptor | undefined;
  for (const c of children) {
    const got = await src.manifest(c.digest);
    const d = await pullManifest(got);
    if (opts.arch) manifest = { ...d, platform: c.platform };
  }
  const root = await store.putBytes(top.bytes, top.mediaType);
  return { root, manifest };
}
