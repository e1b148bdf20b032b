import { readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { type Digest } from "../core/hash.js";
import { REF_ANNOTATION, USED_ANNOTATION, type Store } from "./layout.js";
import { blobsOf } from "./walk.js";

export interface GcOptions {
  olderThanDays?: number;
  dryRun: boolean;
  /** Blobs younger than this are kept even if unreferenced: a running build may not have written its ref yet. */
  graceMs?: number;
}

export interface GcResult {
  refs: string[];
  blobs: number;
  bytes: number;
  temps: number;
}

function pidAlive(name: string): boolean {
  const m = /-(\d+)-[0-9a-f]+$/.exec(name);
  if (!m) return false;
  try {
    process.kill(Number(m[1]), 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Mark (from index.json refs) and sweep (blobs, temp files of dead processes). */
export async function gcStore(store: Store, opts: GcOptions): Promise<GcResult> {
  const grace = opts.graceMs ?? 3600_000;
  const dropped: string[] = [];
  if (opts.olderThanDays !== undefined) {
    const cutoff = new Date(Date.now() - opts.olderThanDays * 86400_000).toISOString().slice(0, 10);
    const idx = await store.readIndex();
    for (const m of idx.manifests) {
      const used = m.annotations?.[USED_ANNOTATION];
      if (!used || used < cutoff) dropped.push(m.annotations?.[REF_ANNOTATION] ?? m.digest);
    }
    if (!opts.dryRun && dropped.length) {
      const drop = new Set(dropped);
      await store.updateIndex((i) => ({ ...i, manifests: i.manifests.filter((m) => !drop.has(m.annotations?.[REF_ANNOTATION] ?? m.digest)) }));
    }
  }
  const live = new Set<Digest>();
  const idx = await store.readIndex();
  for (const m of idx.manifests) {
    if (dropped.includes(m.annotations?.[REF_ANNOTATION] ?? m.digest)) continue;
    for (const d of await blobsOf(store, m, () => undefined)) live.add(d);
  }
  let blobs = 0;
  let bytes = 0;
  const now = Date.now();
  const blobsLeft = new Set(await store.listBlobs());
  for (const hex of [...blobsLeft]) {
    const d = `sha256:${hex}` as Digest;
    if (live.has(d)) continue;
    const p = store.blobPath(d);
    const st = await stat(p).catch(() => undefined);
    if (!st || now - st.mtimeMs < grace) continue;
    blobs++;
    bytes += st.size;
    if (!opts.dryRun) {
      await rm(p, { force: true });
      blobsLeft.delete(hex);
    }
  }
  // caches kept per blob (SBOM file digests, tar headers) go with their blob
  for (const cache of ["file-hashes", "tar-index"]) {
    for (const name of opts.dryRun ? [] : await readdir(join(store.kilnDir, cache)).catch(() => [] as string[])) {
      const hex = /^([0-9a-f]{64})(-\d+-\d*)?\.json$/.exec(name)?.[1];
      if (hex && !blobsLeft.has(hex)) await rm(join(store.kilnDir, cache, name), { force: true });
    }
  }
  let temps = 0;
  for (const dir of [join(store.kilnDir, "tmp"), join(store.kilnDir, "locks")]) {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (dir.endsWith("locks")) continue; // locks are broken by their next taker when their owner is dead
      if (pidAlive(name)) continue;
      temps++;
      if (!opts.dryRun) await rm(join(dir, name), { recursive: true, force: true });
    }
  }
  return { refs: dropped, blobs, bytes, temps };
}
