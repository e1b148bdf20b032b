import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { sha256File, type Digest } from "../core/hash.js";
import { REF_ANNOTATION, type Store } from "./layout.js";
import { fsckDownloads } from "./downloads.js";
import { blobsOf } from "./walk.js";

export interface FsckProblem {
  code: "E_STORE_CORRUPT";
  message: string;
  digest?: string;
  ref?: string;
}

export interface FsckResult {
  blobs: number;
  images: number;
  problems: FsckProblem[];
  temps: number;
  /** Files in the download cache, all re-hashed. */
  downloads: number;
}

/** Re-hash every blob, then check that every image's blobs exist and are sound. */
export async function fsckStore(store: Store, opts: { repair: boolean }): Promise<FsckResult> {
  const problems: FsckProblem[] = [];
  const bad = new Set<string>();
  const hexes = await store.listBlobs();
  for (const hex of hexes) {
    const d = `sha256:${hex}` as Digest;
    const got = await sha256File(store.blobPath(d)).catch(() => "unreadable");
    if (got !== hex) {
      bad.add(d);
      problems.push({ code: "E_STORE_CORRUPT", digest: d, message: `blob ${d} is corrupt (its content hashes to ${got})` });
    }
  }
  const idx = await store.readIndex();
  const brokenRefs = new Set<string>();
  for (const m of idx.manifests) {
    const ref = m.annotations?.[REF_ANNOTATION] ?? m.digest;
    const needed = await blobsOf(store, m, (d, why) => {
      brokenRefs.add(ref);
      problems.push({ code: "E_STORE_CORRUPT", ref, digest: d, message: `image ${ref} needs ${d} (${why}), which is missing or unreadable` });
    });
    if ([...needed].some((d) => bad.has(d))) {
      brokenRefs.add(ref);
      problems.push({ code: "E_STORE_CORRUPT", ref, message: `image ${ref} uses a corrupt blob` });
    }
  }
  if (opts.repair && problems.length) {
    for (const d of bad) await rm(store.blobPath(d as Digest), { force: true });
    if (brokenRefs.size) await store.updateIndex((i) => ({ ...i, manifests: i.manifests.filter((m) => !brokenRefs.has(m.annotations?.[REF_ANNOTATION] ?? m.digest)) }));
  }
  const temps = (await readdir(join(store.kilnDir, "tmp")).catch(() => [])).length;
  // the download cache: builds trust a file once hashed (by its stat), so this is where rot is found
  const dl = await fsckDownloads(store, opts.repair);
  for (const f of dl.corrupt) problems.push({ code: "E_STORE_CORRUPT", message: `download ${f} does not hash to its name${opts.repair ? " (removed: the next build fetches it again)" : ""}` });
  return { blobs: hexes.length, images: idx.manifests.length, problems, temps, downloads: dl.files };
}
