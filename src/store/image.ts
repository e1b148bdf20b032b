import { stableJson } from "../core/hash.js";
import { type Descriptor, MT, type Store } from "./layout.js";

export interface ImageSpec {
  arch: string;
  layers: Descriptor[];
  /** Seconds since the epoch for the config's `created` (SOURCE_DATE_EPOCH). */
  created: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  workdir?: string;
}

export interface ImageConfig {
  architecture: string;
  os: string;
  created: string;
  config: { Labels?: Record<string, string>; Entrypoint?: string[]; Cmd?: string[]; Env?: string[]; WorkingDir?: string };
  rootfs: { type: "layers"; diff_ids: string[] };
  history?: unknown[];
}

export interface Manifest {
  schemaVersion: 2;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

/**
 * Write an image's config and manifest (its layers are already in the store).
 * Layers are stored uncompressed, so a layer's diff_id is its digest; the JSON
 * is canonical so the same inputs give the same manifest digest.
 */
export async function writeImage(store: Store, spec: ImageSpec): Promise<Descriptor> {
  const config: ImageConfig = {
    architecture: spec.arch,
    os: "linux",
    created: new Date(spec.created * 1000).toISOString(),
    config: {
      ...(spec.entrypoint ? { Entrypoint: spec.entrypoint } : {}),
      ...(spec.cmd ? { Cmd: spec.cmd } : {}),
      ...(spec.env ? { Env: spec.env } : {}),
      ...(spec.workdir ? { WorkingDir: spec.workdir } : {}),
      ...(spec.labels && Object.keys(spec.labels).length ? { Labels: spec.labels } : {}),
    },
    rootfs: { type: "layers", diff_ids: spec.layers.map((l) => l.digest) },
  };
  const configDesc = await store.putBytes(stableJson(config), MT.config);
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MT.manifest,
    config: configDesc,
    layers: spec.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    annotations: spec.annotations,
  };
  const desc = await store.putBytes(stableJson(manifest), MT.manifest);
  return { ...desc, platform: { architecture: spec.arch, os: "linux" } };
}

/** Manifests by digest: a blob never changes, and a build reads each dependency's manifest once per dependent. */
const manifests = new Map<string, Promise<Manifest>>();

export function readManifest(store: Store, desc: Descriptor): Promise<Manifest> {
  const key = `${store.root}\0${desc.digest}`;
  let m = manifests.get(key);
  if (!m) {
    m = store.readJson<Manifest>(desc.digest);
    manifests.set(key, m);
    m.catch(() => manifests.delete(key)); // a missing or unreadable blob is not remembered
  }
  return m;
}
