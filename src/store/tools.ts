import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../core/atomic.js";
import { probeVersion, whichTool } from "../core/tools.js";
import type { Store } from "./layout.js";

type Cache = Record<string, { size: number; mtimeMs: number; version: string }>;

/**
 * Host tool versions for cache keys. Spawning `tool --version` for every plan
 * would cost a no-op build most of its budget, so answers are cached in the
 * store by the binary's path, size and mtime: an upgraded tool is re-asked.
 * A tool that is absent is recorded as "absent" (and then the build says so).
 */
export async function toolVersions(store: Store, tools: string[]): Promise<Record<string, string>> {
  const file = join(store.kilnDir, "tools.json");
  const cache: Cache = JSON.parse(await readFile(file, "utf8").catch(() => "{}")) as Cache;
  let dirty = false;
  const out: Record<string, string> = {};
  for (const tool of [...new Set(tools)].sort()) {
    const path = await whichTool(tool);
    if (!path) {
      out[tool] = "absent";
      continue;
    }
    const st = await stat(path);
    const hit = cache[path];
    if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs) {
      out[tool] = hit.version;
      continue;
    }
    const version = await probeVersion(path);
    cache[path] = { size: st.size, mtimeMs: st.mtimeMs, version };
    out[tool] = version;
    dirty = true;
  }
  if (dirty) await writeFileAtomic(file, JSON.stringify(cache, null, 1), { sync: false });
  return out;
}
