import { lstat, readFile, readlink } from "node:fs/promises";
import { join } from "node:path";
import type { LayerEntry } from "../build/layer.js";
import { normalMode } from "../build/tree.js";
import { KilnError, type Location } from "../core/errors.js";

/**
 * Sub packages from a deploy folder, as Pygos packages them: `NAME.files`
 * lists what goes in (one path per line, relative to PKGDEPLOYDIR, then
 * optionally the mode in octal, the owner's uid and gid; a directory line is
 * that directory alone), `NAME.desc` says what it needs (`requires A B …` or
 * `depends …` lines; other `key value` lines are kept as description).
 */
export interface SubPackage {
  name: string;
  entries: LayerEntry[];
  requires: string[];
  desc: Record<string, string>;
}

/** Where the listings are looked for: the deploy folder, then the build folder. */
async function listing(dirs: string[], file: string): Promise<{ path: string; text: string } | undefined> {
  for (const d of dirs) {
    const path = join(d, file);
    const text = await readFile(path, "utf8").catch(() => undefined);
    if (text !== undefined) return { path, text };
  }
  return undefined;
}

export async function readSubPackage(name: string, deployDir: string, buildDir: string, where: Location): Promise<SubPackage> {
  const files = await listing([deployDir, buildDir], `${name}.files`);
  if (!files) {
    throw new KilnError("E_PYGOS_PACKAGE", `deploy wrote no ${name}.files: kiln cannot package the sub package ${name}`, {
      location: where,
      hint: `write "$PKGDEPLOYDIR/${name}.files" (one path per line: PATH [MODE [UID [GID]]]) in deploy`,
    });
  }
  const entries: LayerEntry[] = [];
  for (const [i, raw] of files.text.split("\n").entries()) {
    const line = raw.replace(/#.*/, "").trim();
    if (!line) continue;
    const [path, mode, uid, gid, ...rest] = line.split(/\s+/);
    const bad = (why: string) =>
      new KilnError("E_PYGOS_PACKAGE", `${name}.files line ${i + 1}: ${why}`, { location: where, details: [`${files.path}:${i + 1}: ${raw}`], hint: "each line is PATH [MODE [UID [GID]]], PATH relative to PKGDEPLOYDIR" });
    if (rest.length || (mode !== undefined && !/^0?[0-7]{3,4}$/.test(mode)) || [uid, gid].some((n) => n !== undefined && !/^\d+$/.test(n))) throw bad("malformed");
    const rel = path!.replace(/^\/+/, "").replace(/\/+$/, "");
    if (!rel || rel.split("/").includes("..")) throw bad(`'${path}' is not a path inside the deploy folder`);
    const abs = join(deployDir, rel);
    const st = await lstat(abs).catch(() => undefined);
    if (!st) throw bad(`${rel} is not in PKGDEPLOYDIR (deploy did not install it)`);
    const owner = { uid: uid === undefined ? 0 : Number(uid), gid: gid === undefined ? 0 : Number(gid) };
    const m = mode === undefined ? normalMode(st) : parseInt(mode, 8);
    if (st.isSymbolicLink()) entries.push({ path: rel, type: "symlink", mode: 0o777, ...owner, linkname: await readlink(abs) });
    else if (st.isDirectory()) entries.push({ path: rel, type: "directory", mode: m, ...owner });
    else if (st.isFile()) entries.push({ path: rel, type: "file", mode: m, ...owner, source: abs, size: st.size });
    else throw bad(`${rel} is neither a file, a directory nor a symlink`);
  }
  const desc: Record<string, string> = {};
  const requires: string[] = [];
  const d = await listing([deployDir, buildDir], `${name}.desc`);
  for (const raw of d?.text.split("\n") ?? []) {
    const line = raw.replace(/#.*/, "").trim();
    if (!line) continue;
    const [key, ...value] = line.split(/\s+/);
    if (key === "requires" || key === "depends") requires.push(...value);
    else desc[key!] = value.join(" ");
  }
  return { name, entries, requires: [...new Set(requires)], desc };
}
