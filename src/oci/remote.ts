import type { Project } from "../config/project.js";
import type { EventBus } from "../core/events.js";
import { KEY_ANNOTATION, type Descriptor, type Store } from "../store/layout.js";
import { RegistryClient } from "./client.js";
import { packageRepository, parseRegistry, type RegistrySpec } from "./ref.js";
import { pullImage, pushImage, registrySource, type PushSummary } from "./transfer.js";

/** One registry (with its namespace) and a client for it. */
export class Remote {
  readonly client: RegistryClient;

  constructor(readonly name: string, readonly spec: RegistrySpec, opts: { insecure?: boolean; bus?: EventBus; retries?: number } = {}) {
    this.client = new RegistryClient(spec.host, {
      insecure: opts.insecure,
      retries: opts.retries,
      log: opts.bus ? (message) => opts.bus!.emit({ type: "debug", message: `registry: ${message}` }) : undefined,
    });
  }

  static open(name: string, opts: { insecure?: boolean; bus?: EventBus; retries?: number } = {}): Remote {
    return new Remote(name.replace(/^[a-z]+:\/\//, "").replace(/\/+$/, ""), parseRegistry(name), opts);
  }

  /** The repository and tag of a store ref (ORG/NAME:TAG) in this registry. */
  locate(storeRef: string): { repository: string; tag: string } {
    return packageRepository(this.spec, storeRef);
  }

  /** Does the registry have this package image (one HEAD)? */
  async lookup(storeRef: string): Promise<Descriptor | undefined> {
    const { repository, tag } = this.locate(storeRef);
    return this.client.headManifest(repository, tag);
  }

  /** Pull a package image and tag it in the store under its ref, as if it had been built here. */
  async pullPackage(store: Store, storeRef: string, key: string, arch: string): Promise<Descriptor> {
    const { repository, tag } = this.locate(storeRef);
    const { manifest } = await pullImage(registrySource(this.client, repository, store), store, tag, { arch });
    const desc: Descriptor = { ...manifest!, platform: { architecture: arch, os: "linux" }, annotations: { [KEY_ANNOTATION]: key } };
    await store.setRef(storeRef, desc);
    return desc;
  }

  /** Push a package image of the store under its key tag (and extra tags). */
  async pushPackage(store: Store, storeRef: string, desc: Descriptor, extraTags: string[] = [], mountFrom: string[] = []): Promise<PushSummary & { repository: string; tags: string[] }> {
    const { repository, tag } = this.locate(storeRef);
    const tags = [tag, ...extraTags.filter((t) => t !== tag)];
    const root: Descriptor = { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
    return { ...(await pushImage(this.client, store, repository, root, tags, { mountFrom })), repository, tags };
  }
}

/** Where a build looks for and puts prebuilt packages. */
export interface RemoteCache {
  from: Remote[];
  to?: Remote;
}

const attached = new WeakMap<Store, RemoteCache>();

/** The remote cache a command set up for this store (context.ts), seen by makePlan and the scheduler. */
export function remoteCacheOf(store: Store): RemoteCache | undefined {
  return attached.get(store);
}

export function attachRemoteCache(store: Store, cache: RemoteCache | undefined): void {
  if (cache && (cache.from.length || cache.to)) attached.set(store, cache);
  else attached.delete(store);
}

/**
 * The remote cache from flags, else the environment (KILN_CACHE_FROM, comma
 * separated; KILN_CACHE_TO), else kiln.yml `registry.cacheFrom` / `cacheTo`.
 * None with --offline.
 */
export function resolveRemoteCache(project: Project, opts: { cacheFrom?: string[]; cacheTo?: string; offline?: boolean; bus?: EventBus }): RemoteCache | undefined {
  if (opts.offline) return undefined;
  const reg = project.config.registry;
  const env = process.env;
  const from = opts.cacheFrom?.length ? opts.cacheFrom : env.KILN_CACHE_FROM ? env.KILN_CACHE_FROM.split(",").filter(Boolean) : (reg?.cacheFrom ?? []);
  const to = opts.cacheTo ?? env.KILN_CACHE_TO ?? reg?.cacheTo;
  if (!from.length && !to) return undefined;
  const open = (n: string) => Remote.open(n, { insecure: reg?.insecure, bus: opts.bus });
  return { from: from.map(open), to: to ? open(to) : undefined };
}
