import { readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../core/atomic.js";
import type { EventBus } from "../core/events.js";
import { background } from "../core/background.js";
import { sha256File, sha256FileOffThread } from "../core/hash.js";
import { provenancePath, type ProvenanceSpec, writeProvenance } from "../compose/sbom/provenance.js";

interface ArtifactRecord {
  key: string;
  size: number;
  mtimeMs: number;
  /** The output's sha256, hashed once when it was made (for its provenance). */
  sha256?: string;
}

export interface Artifact {
  path: string;
  /**
   * The content's identity: the key of its inputs (same key, same bytes: every
   * step is reproducible), or a digest where one is known for free. Hashing
   * every large output again would cost about a second per GiB.
   */
  id: string;
  size: number;
  cached: boolean;
  /** The file's sha256, when it has a provenance record (hashed once, when made). */
  sha256?: string;
  /** …or while it is being hashed on another thread. */
  sha256Pending?: Promise<string>;
}

/**
 * Make `out` unless the file there was made from the same key (checked by the
 * record's size and mtime, so an unchanged artifact costs two stats). The
 * producer writes `out` itself, atomically. With `provenance`, the output is
 * hashed once when it is made (the sha256 is kept in the record) and
 * `<out>.provenance.json` says what it was made from.
 */
export async function artifact(recordDir: string, id: string, out: string, key: string, bus: EventBus, produce: () => Promise<void>, provenance?: ProvenanceSpec): Promise<Artifact> {
  const recordFile = join(recordDir, `${id.replace(/[/]/g, "_")}.json`);
  const last = JSON.parse(await readFile(recordFile, "utf8").catch(() => "null")) as ArtifactRecord | null;
  const st = await stat(out).catch(() => undefined);
  if (last && st && last.key === key && last.size === st.size && last.mtimeMs === st.mtimeMs) {
    let sha256 = last.sha256;
    if (provenance && !sha256) {
      // made by a kiln that kept no digest: hash it once now
      sha256 = await sha256File(out, st.size);
      await writeFileAtomic(recordFile, JSON.stringify({ ...last, sha256 } satisfies ArtifactRecord), { sync: false });
    }
    if (provenance) await writeProvenance(out, provenance, sha256!, key);
    bus.emit({ type: "done", target: id, key, cached: true, ms: 0 });
    return { path: out, id: key, size: last.size, cached: true, sha256 };
  }
  const t0 = Date.now();
  bus.emit({ type: "start", target: id, key });
  await produce();
  const after = await stat(out);
  const record = { key, size: after.size, mtimeMs: after.mtimeMs } satisfies ArtifactRecord;
  await writeFileAtomic(recordFile, JSON.stringify(record), { sync: false });
  bus.emit({ type: "done", target: id, key, cached: false, ms: Date.now() - t0 });
  await rm(provenancePath(out), { force: true }); // one from an earlier build would describe other bytes
  if (!provenance) return { path: out, id: key, size: after.size, cached: false };
  // Hashed on another thread while the next stages run; settleBackground() waits for the provenance.
  // Until then the record has no digest: a crash in between only means hashing it once more.
  const sha256Pending = sha256FileOffThread(out, after.size);
  background(
    sha256Pending.then(async (sha256) => {
      await writeFileAtomic(recordFile, JSON.stringify({ ...record, sha256 } satisfies ArtifactRecord), { sync: false });
      await writeProvenance(out, provenance, sha256, key);
    }),
  );
  return { path: out, id: key, size: after.size, cached: false, sha256Pending };
}

/** An artifact's sha256, when it has one (waiting for an off-thread hash). */
export async function artifactSha256(a: Artifact | undefined): Promise<string | undefined> {
  return a?.sha256 ?? (await a?.sha256Pending);
}
