import { lstat, readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import type { LayerEntry } from "./layer.js";

export interface WalkOptions {
  uid?: number;
  gid?: number;
  /** Mode for the top entry, when the recipe sets one. */
  topMode?: number;
}

/**
 * Host modes are not trusted as they are: a umask or a checkout can change
 * them. Files keep only the question "executable or not" (0755/0644),
 * directories are 0755; setuid and friends must be asked for in the recipe.
 */
export function normalMode(st: { mode: number; isDirectory(): boolean }): number {
  if (st.isDirectory()) return 0o755;
  return st.mode & 0o111 ? 0o755 : 0o644;
}

/** Walk a host tree into layer entries under `prefix` (in-image), sorted, hard links kept as links. */
export async function walkTree(root: string, prefix: string, opts: WalkOptions = {}): Promise<LayerEntry[]> {
  const out: LayerEntry[] = [];
  const seenInodes = new Map<string, string>();
  const uid = opts.uid ?? 0;
  const gid = opts.gid ?? 0;
  const visit = async (abs: string, imagePath: string, top: boolean) => {
    const st = await lstat(abs);
    const mode = top && opts.topMode !== undefined ? opts.topMode : normalMode(st);
    if (st.isSymbolicLink()) {
      out.push({ path: imagePath, type: "symlink", mode: 0o777, uid, gid, linkname: await readlink(abs) });
    } else if (st.isDirectory()) {
      if (imagePath) out.push({ path: imagePath, type: "directory", mode, uid, gid });
      for (const name of (await readdir(abs)).sort()) await visit(join(abs, name), imagePath ? `${imagePath}/${name}` : name, false);
    } else if (st.isFile()) {
      const ino = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1 ? seenInodes.get(ino) : undefined;
      if (first) out.push({ path: imagePath, type: "link", mode, uid, gid, linkname: first });
      else {
        if (st.nlink > 1) seenInodes.set(ino, imagePath);
        out.push({ path: imagePath, type: "file", mode, uid, gid, source: abs, size: st.size });
      }
    }
    // Sockets, fifos and device nodes on the host are not image content; devices come from recipes.
  };
  await visit(root, prefix.replace(/^\/+|\/+$/g, ""), true);
  return out;
}
