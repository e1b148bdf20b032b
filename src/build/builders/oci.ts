import { createWriteStream } from "node:fs";
import { rm, stat } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import type { OciRecipe } from "../../config/schema.js";
import { KilnError } from "../../core/errors.js";
import { asDigest, hashingTap, stableJson } from "../../core/hash.js";
import { RegistryClient } from "../../oci/client.js";
import { parseImageRef } from "../../oci/ref.js";
import { pullImage, registrySource, storeSource } from "../../oci/transfer.js";
import type { ImageConfig, Manifest } from "../../store/image.js";
import { type Descriptor, KEY_ANNOTATION, MT } from "../../store/layout.js";
import type { BuildStep } from "../step.js";

const GZIP_LAYERS = new Set([MT.layerGzip, "application/vnd.docker.image.rootfs.diff.tar.gzip"]);
const TAR_LAYERS = new Set<string>([MT.layer, "application/vnd.docker.image.rootfs.diff.tar"]);

/**
 * A third-party image pinned by digest (`kind: oci`, `ref: name@sha256:…`):
 * pulled through the same registry client, with the store as a pull-through
 * cache (with --offline only the store is used). kiln's layers are plain tars,
 * so gzip layers are unpacked here, each checked against the config's diff_id,
 * and the package image is a manifest over the original config and those
 * tars. Returns that manifest; the scheduler tags it like any package.
 */
export async function pullOciPackage(step: BuildStep): Promise<Descriptor> {
  const recipe = step.pkg.recipe as OciRecipe;
  const ref = parseImageRef(recipe.ref);
  const digest = ref.digest!;
  const src = step.offline
    ? storeSource(step.store, `package ${step.pkg.name} (${recipe.ref})`)
    : registrySource(
        new RegistryClient(ref.host, { insecure: step.project.config.registry?.insecure, log: (m) => step.log.line(`registry: ${m}`) }),
        ref.repository,
        step.store,
      );
  step.log.line(`kiln: pulling ${recipe.ref} for ${step.arch}${step.offline ? " (offline: from the store)" : ""}`);
  const { manifest } = await pullImage(src, step.store, digest, { arch: step.arch });
  const m = await step.store.readJson<Manifest>(manifest!.digest);
  const config = await step.store.readJson<ImageConfig>(m.config.digest);
  if (config.architecture && config.architecture !== step.arch) {
    throw new KilnError("E_BAD_VALUE", `${recipe.ref} is an image for ${config.architecture}, not ${step.arch}`, { hint: "pin the digest of a multi-arch index, or of the image for this architecture" });
  }
  const layers: Descriptor[] = [];
  for (const [i, l] of m.layers.entries()) {
    const diffId = config.rootfs.diff_ids[i];
    if (TAR_LAYERS.has(l.mediaType)) layers.push({ mediaType: MT.layer, digest: l.digest, size: l.size });
    else if (GZIP_LAYERS.has(l.mediaType) && diffId) layers.push(await gunzipLayer(step, l, diffId));
    else throw new KilnError("E_BAD_VALUE", `${recipe.ref}: layer ${l.digest} has media type ${l.mediaType}, which kiln cannot unpack`, { hint: "use an image with tar or tar+gzip layers" });
  }
  const out: Manifest = {
    schemaVersion: 2,
    mediaType: MT.manifest,
    config: { mediaType: MT.config, digest: m.config.digest, size: m.config.size },
    layers,
    annotations: { [KEY_ANNOTATION]: step.node.key, "org.opencontainers.image.base.name": recipe.ref, "org.opencontainers.image.base.digest": manifest!.digest },
  };
  const desc = await step.store.putBytes(stableJson(out), MT.manifest);
  step.log.line(`kiln: ${recipe.ref} → ${desc.digest} (${layers.length} layers)`);
  return { ...desc, platform: { architecture: step.arch, os: "linux" } };
}

/** Unpack one gzip layer into the store as a tar, verified against its diff_id while it streams. */
async function gunzipLayer(step: BuildStep, l: Descriptor, diffId: string): Promise<Descriptor> {
  const want = asDigest(diffId);
  if (await step.store.hasBlob(want)) {
    const { size } = await stat(step.store.blobPath(want));
    return { mediaType: MT.layer, digest: want, size };
  }
  const tmp = step.store.tempPath("gunzip");
  const tap = hashingTap();
  try {
    await pipeline(step.store.blobStream(l.digest), createGunzip(), tap.stream, createWriteStream(tmp, { flags: "wx", mode: 0o444 }));
  } catch (err) {
    await rm(tmp, { force: true });
    throw new KilnError("E_BAD_VALUE", `layer ${l.digest} does not unpack: ${(err as Error).message}`);
  }
  const got = tap.digest();
  if (got !== want) {
    await rm(tmp, { force: true });
    throw new KilnError("E_BLOB_DIGEST", `layer ${l.digest} unpacks to ${got}, but the image config says ${want}`);
  }
  return step.store.ingestFile(tmp, want, tap.size(), MT.layer);
}
