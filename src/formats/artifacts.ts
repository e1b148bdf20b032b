import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../core/atomic.js";
import type { EventBus } from "../core/events.js";
import { sha256File } from "../core/hash.js";

interface ArtifactRecord {
  key: string;
  size: number;
  mtimeMs: number;
  sha256: string;
}

export interface Artifact {
  path: string;
  sha256: string;
  size: number;
  cached: boolean;
}

/**
 * Make `out` unless the file there was made from the same key (checked by the
 * record's size and mtime, so an unchanged artifact costs two stats). The
 * producer writes `out` itself, atomically.
 */
export async function artifact(recordDir: string, id: string, out: string, key: string, bus: EventBus, produce: () => Promise<void>): Promise<Artifact> {
  const recordFile = join(recordDir, `${id.replace(/[/]/g, "_")}.json`);
  const last = JSON.parse(await readFile(recordFile, "utf8").catch(() => "null")) as ArtifactRecord | null;
  const st = await stat(out).catch(() => undefined);
  if (last && st && last.key === key && last.size === st.size && last.mtimeMs === st.mtimeMs) {
    bus.emit({ type: "done", target: id, key, cached: true, ms: 0 });
    return { path: out, sha256: last.sha256, size: last.size, cached: true };
  }
  const t0 = Date.now();
  bus.emit({ type: "start", target: id, key });
  await produce();
  const after = await stat(out);
  const sha256 = await sha256File(out, after.size);
  await writeFileAtomic(recordFile, JSON.stringify({ key, size: after.size, mtimeMs: after.mtimeMs, sha256 } satisfies ArtifactRecord), { sync: false });
  bus.emit({ type: "done", target: id, key, cached: false, ms: Date.now() - t0 });
  return { path: out, sha256, size: after.size, cached: false };
}
