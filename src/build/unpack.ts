import { createWriteStream } from "node:fs";
import { link, lstat, mkdir, rm, symlink } from "node:fs/promises";
import { dirname, join, normalize } from "node:path";
import { pipeline } from "node:stream/promises";
import type { Descriptor, Store } from "../store/layout.js";

/**
 * Unpack a layer into a folder for use as a build sysroot. Ownership is not
 * applied (no root needed); device nodes are skipped; whiteouts remove. Every
 * path is checked so that neither ".." nor a symlink planted by an earlier
 * entry can make a write land outside the folder.
 */
export async function unpackLayer(store: Store, layer: Descriptor, dest: string): Promise<void> {
  const realDirs = new Set<string>([dest]);
  const safeParent = async (abs: string) => {
    const parent = dirname(abs);
    if (realDirs.has(parent)) return;
    const rel = parent.slice(dest.length + 1).split("/");
    let cur = dest;
    for (const part of rel) {
      cur = join(cur, part);
      if (realDirs.has(cur)) continue;
      const st = await lstat(cur).catch(() => undefined);
      if (!st) await mkdir(cur, { mode: 0o755 });
      else if (!st.isDirectory()) throw new Error(`layer entry goes through non-directory ${cur}`);
      realDirs.add(cur);
    }
  };
  const { default: tarStream } = await import("tar-stream");
  const extract = tarStream.extract();
  const done = pipeline(store.blobStream(layer.digest), extract);
  for await (const entry of extract) {
    const h = entry.header;
    const rel = normalize(h.name).replace(/^\/+/, "").replace(/\/+$/, "");
    if (!rel || rel === "." || rel.split("/").includes("..")) {
      entry.resume();
      continue;
    }
    const abs = join(dest, rel);
    await safeParent(abs);
    const base = rel.split("/").pop()!;
    if (base.startsWith(".wh.")) {
      await rm(join(dirname(abs), base.slice(4)), { recursive: true, force: true });
      entry.resume();
      continue;
    }
    if (h.type === "directory") {
      const st = await lstat(abs).catch(() => undefined);
      if (st && !st.isDirectory()) await rm(abs, { force: true });
      if (!st?.isDirectory()) await mkdir(abs, { mode: (h.mode ?? 0o755) | 0o700 });
      realDirs.add(abs);
      entry.resume();
      continue;
    }
    await rm(abs, { recursive: true, force: true });
    if (h.type === "file") {
      await pipeline(entry, createWriteStream(abs, { mode: (h.mode ?? 0o644) | 0o200 }));
      continue;
    }
    if (h.type === "symlink") await symlink(h.linkname ?? "", abs);
    else if (h.type === "link") {
      const target = normalize(h.linkname ?? "").replace(/^\/+/, "");
      if (!target.split("/").includes("..")) await link(join(dest, target), abs);
    }
    entry.resume();
  }
  await done;
}
