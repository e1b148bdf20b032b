import { asDigest, type Digest } from "../core/hash.js";
import { type Descriptor, MT, REF_ANNOTATION, type Store } from "./layout.js";

/** Every blob an image needs (manifest or index, config, layers), found by following descriptors. */
export async function blobsOf(store: Store, root: Descriptor, missing: (d: Digest, why: string) => void): Promise<Set<Digest>> {
  const out = new Set<Digest>();
  const visit = async (desc: Descriptor, why: string) => {
    const d = asDigest(desc.digest);
    if (out.has(d)) return;
    out.add(d);
    if (!(await store.hasBlob(d))) {
      missing(d, why);
      return;
    }
    if (desc.mediaType !== MT.manifest && desc.mediaType !== MT.index) return;
    let json: { config?: Descriptor; layers?: Descriptor[]; manifests?: Descriptor[] };
    try {
      json = await store.readJson(d);
    } catch {
      missing(d, `${why}: not valid JSON`);
      return;
    }
    if (json.config) await visit(json.config, `config of ${why}`);
    for (const l of json.layers ?? []) await visit(l, `layer of ${why}`);
    for (const m of json.manifests ?? []) await visit(m, `manifest in ${why}`);
  };
  await visit(root, root.annotations?.[REF_ANNOTATION] ?? root.digest);
  return out;
}
