import { lstat } from "node:fs/promises";
import { join } from "node:path";
import { parseMode } from "../../config/mode.js";
import type { FilesRecipe } from "../../config/schema.js";
import type { LayerEntry } from "../layer.js";
import type { BuildStep } from "../step.js";
import { walkTree } from "../tree.js";

/** A `files` package: entries straight from the recipe; ownership and modes from the recipe, never the host. */
export async function buildFiles(step: BuildStep): Promise<LayerEntry[]> {
  const recipe = step.pkg.recipe as FilesRecipe;
  const out: LayerEntry[] = [];
  for (const f of recipe.files) {
    const uid = f.uid ?? 0;
    const gid = f.gid ?? 0;
    const mode = f.mode === undefined ? undefined : parseMode(f.mode);
    if (f.contents !== undefined) {
      out.push({ path: f.path, type: "file", mode: mode ?? 0o644, uid, gid, source: Buffer.from(f.contents) });
    } else if (f.directory) {
      out.push({ path: f.path, type: "directory", mode: mode ?? 0o755, uid, gid });
    } else if (f.device) {
      const type = f.device.type === "char" ? "character-device" : f.device.type === "block" ? "block-device" : "fifo";
      out.push({ path: f.path, type, mode: mode ?? 0o600, uid, gid, devmajor: f.device.major ?? 0, devminor: f.device.minor ?? 0 });
    } else if (f.symlink !== undefined) {
      out.push({ path: f.path, type: "symlink", mode: 0o777, uid, gid, linkname: f.symlink });
    } else if (f.source !== undefined) {
      const abs = join(step.pkg.dir, f.source);
      if (f.optional && !(await lstat(abs).catch(() => undefined))) {
        step.log.line(`skip optional ${f.source} (absent)`);
        continue;
      }
      out.push(...(await walkTree(abs, f.path, { uid, gid, topMode: mode })));
    }
  }
  step.log.line(`${out.length} entries`);
  return out;
}
