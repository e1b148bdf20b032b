import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../core/atomic.js";
import { sha256Hex } from "../core/hash.js";

/**
 * Validated-config cache: file path → (sha256 of its text, the validated
 * value). A file whose text is unchanged is neither parsed nor validated
 * again, which keeps the YAML parser and zod out of a no-op build. The cache
 * is keyed by kiln's version and schema, and only ever holds values that
 * passed validation.
 */
export interface ConfigCache {
  get(path: string, text: string): unknown;
  set(path: string, text: string, value: unknown): void;
  save(): Promise<void>;
}

interface CacheFile {
  stamp: string;
  files: Record<string, { hash: string; value: unknown }>;
}

export async function openConfigCache(dir: string | undefined, stamp: string, root: string): Promise<ConfigCache> {
  const file = dir ? join(dir, `${sha256Hex(root).slice(0, 16)}.json`) : undefined;
  let data: CacheFile = { stamp, files: {} };
  if (file) {
    try {
      const loaded = JSON.parse(await readFile(file, "utf8")) as CacheFile;
      if (loaded.stamp === stamp) data = loaded;
    } catch {
      // no cache yet, or an unreadable one: start afresh
    }
  }
  let dirty = false;
  const seen = new Set<string>();
  return {
    get(path, text) {
      seen.add(path);
      const hit = data.files[path];
      return hit && hit.hash === sha256Hex(text) ? hit.value : undefined;
    },
    set(path, text, value) {
      seen.add(path);
      data.files[path] = { hash: sha256Hex(text), value };
      dirty = true;
    },
    async save() {
      for (const p of Object.keys(data.files)) {
        if (!seen.has(p)) {
          delete data.files[p];
          dirty = true;
        }
      }
      if (file && dirty) await writeFileAtomic(file, JSON.stringify(data), { sync: false });
    },
  };
}
