import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../core/atomic.js";
import type { EventBus } from "../core/events.js";

interface ArtifactRecord {
  key: string;
  size: number;
  mtimeMs: number;
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
    return { path: out, id: key, size: last.size, cached: true };
  }
  const t0 = Date.now();
  bus.emit({ type: "start", target: id, key });
  await produce();
  const after = await stat(out);
  await writeFileAtomic(recordFile, JSON.stringify({ key, size: after.size, mtimeMs: after.mtimeMs } satisfies ArtifactRecord), { sync: false });
  bus.emit({ type: "done", target: id, key, cached: false, ms: Date.now() - t0 });
  return { path: out, id: key, size: after.size, cached: false };
}
